"""Overview: what the workspace holds, next steps, headline numbers beside the thesis's, bookmarks."""
import json

import streamlit as st

from app import common
from app.tables import for_display
from cardio_core import queries
from cardio_core.catalog import weights_files
from cardio_core.vocabulary import ACTIVE_STATUSES
from jobs.table import jobs_table

st.title("CardioScope")
db = common.db()
summary = common.summary(db)
weights = common.weights(db)
files_dropped_in = [p.name for p in weights_files(common.workspace())]

st.subheader("Next steps")
for step in queries.next_steps(summary, files_dropped_in):
    st.markdown(f"- {step}")


@st.fragment(run_every=5)
def in_progress():
    """Jobs in progress (e.g. the demo filling the workspace), refreshed while the page is open."""
    jobs = jobs_table(common.store(), common.workspace().runs_dir, limit=20)
    active = jobs[jobs["status"].isin(ACTIVE_STATUSES)]
    if active.empty:
        return
    st.subheader("In progress")
    for row in active.itertuples():
        message = f" · {common.redact(row.stage)}" if row.stage else ""
        st.progress(float(row.progress), text=f"{row.job_id} ({row.kind}, {row.status}): {row.progress_text}{message}")


in_progress()

c1, c2, c3, c4 = st.columns(4)
c1.metric("Datasets", len(summary["datasets"]))
c2.metric("Records", int(summary["datasets"]["usable"].sum()) if len(summary["datasets"]) else 0)
c3.metric("Weights / checkpoints", len(weights))
jobs = dict(zip(summary["jobs"]["status"], summary["jobs"]["n"]))
c4.metric("Jobs running", int(jobs.get("running", 0)), help=f"queued: {int(jobs.get('queued', 0))}")

left, right = st.columns(2)
with left:
    st.subheader("Datasets")
    if summary["datasets"].empty and queries.demo_job_active(summary):
        st.info("The demo job is generating and ingesting the demo datasets; they are listed here when ingested.")
    elif summary["datasets"].empty:
        st.info("No dataset ingested yet. Run `cardio setup` for the demo, or `cardio ingest chapman PATH`.")
    else:
        st.dataframe(for_display(summary["datasets"]), hide_index=True, width="stretch")
    st.subheader("Runs")
    if summary["runs"].empty:
        st.caption("No fine-tuning run yet.")
    else:
        st.dataframe(for_display(summary["runs"]), hide_index=True, width="stretch")
    quality = summary["datasets"][["dataset_id", "excluded", "with_warnings"]] if len(summary["datasets"]) else None
    if quality is not None and (quality["excluded"].sum() or quality["with_warnings"].sum()):
        st.caption("Excluded records are left out of every analysis (unreadable, or no mapped label); records with "
                   "warnings are used (e.g. a flat lead or an unknown extra code). `cardio problems` lists each "
                   "file and reason.")
        st.dataframe(for_display(quality.rename(columns={"excluded": "excluded records",
                                                          "with_warnings": "records used with warnings"})),
                     hide_index=True, width="stretch")
    if len(summary["problems"]):
        st.caption("Problems logged, by stage (one record can have several):")
        st.dataframe(for_display(summary["problems"]), hide_index=True, width="stretch")
with right:
    st.subheader("Weights")
    if weights.empty:
        st.caption("No weights registered. Drop released encoders into weights/ (e.g. signal_encoder_mmcl.pth).")
    else:
        st.dataframe(for_display(weights[["display", "kind", "modality", "has_projection"]]), hide_index=True,
                     width="stretch")
    st.subheader("This workspace vs the thesis")
    run, ft = common.run_picker("Fine-tuned run", "ov_run", "ecg")
    if run is None:
        st.caption("Numbers appear here once an ECG fine-tuning run has metrics.")
    else:
        base = queries.baseline_for(weights, ft or "")
        st.caption(common.run_choice_caption(run, "ecg") + f" Baseline: {base or '—'}.")
        st.dataframe(for_display(common.thesis(db, base, ft)), hide_index=True, width="stretch")
        common.explain("silhouette")
        common.explain("f1")

st.subheader("Bookmarks")
marks = common.bookmarks(db)
if marks.empty:
    st.caption("No bookmarks yet. Save one from Explore.")
review = common.review_mode()
for row in marks.itertuples():
    try:
        params = json.loads(row.view_params or "{}")
    except ValueError:
        params = {}
    params = common.bookmark_params(params if isinstance(params, dict) else {}, review)
    page = common.PAGES.get(row.page, common.PAGES.get("explore"))
    with st.container(border=True):
        # titles and notes are user text: shown literally, never as Markdown
        st.page_link(page, label=common.escape_markdown(row.title) or "(untitled)", query_params=params,
                     icon=":material/bookmark:")
        if row.note:
            st.caption(common.escape_markdown(row.note))
