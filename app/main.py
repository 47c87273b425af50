"""CardioScope app entry point: `streamlit run app/main.py` (or `cardio app`).

Reads the workspace named by CARDIO_WORKSPACE (default ./workspace). Every page is a thin
script in pages/ that reads through cardio_core.queries; nothing here trains or projects.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `streamlit run app/main.py` puts only app/ on the path
    sys.path.insert(0, str(REPO))

import streamlit as st  # noqa: E402

from app import auth, common  # noqa: E402
from cardio_core.errors import CardioError  # noqa: E402

# No page icons: a material-symbol icon becomes the favicon, which the browser fetches from the internet.
st.set_page_config(page_title="CardioScope", layout="wide")
auth.gate()
try:
    common.ensure_scheduler()
except CardioError as exc:  # e.g. a read-only workspace without a store: say so instead of a traceback
    st.error(str(exc))
    st.stop()
if common.read_only():
    st.warning(common.READ_ONLY_BANNER, icon=":material/lock:")

PAGE_DIR = REPO / "pages"
pages = {
    "overview": st.Page(PAGE_DIR / "overview.py", title="Overview", default=True),
    "explore": st.Page(PAGE_DIR / "explore.py", title="Explore"),
    "compare": st.Page(PAGE_DIR / "compare.py", title="Compare"),
    "subclusters": st.Page(PAGE_DIR / "subclusters.py", title="Sub-clusters"),
    "metrics": st.Page(PAGE_DIR / "metrics.py", title="Metrics"),
    "multimodal": st.Page(PAGE_DIR / "multimodal.py", title="Multimodal"),
    "phenotypes": st.Page(PAGE_DIR / "phenotypes.py", title="Phenotypes"),
    "jobs": st.Page(PAGE_DIR / "jobs.py", title="Jobs"),
    "methods": st.Page(PAGE_DIR / "methods.py", title="Methods"),
}
common.PAGES.update(pages)
nav = st.navigation(list(pages.values()))
st.sidebar.caption(f"Workspace: `{common.workspace().root}`")
common.review_toggle()
common.figure_format_picker()
nav.run()
