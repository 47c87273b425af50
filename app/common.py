"""Shared pieces of the pages: the cached store, cached queries, review mode, downloads, previews.

The Store is a cached resource (one per workspace database); it opens a short-lived
connection per query, so the app never holds the database. Query results are cached with a
short TTL keyed by the database path and the query's arguments.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from cardio_core import queries
from cardio_core.queries import paired as paired_queries
from cardio_core.queries import phenotypes as phenotype_queries
from cardio_core.config import Workspace
from cardio_core.store.store import Store
from cardio_core.store import bookmarks as saved_views
from jobs.runner import start_background_scheduler

from app import state
from app.tables import for_display

TTL_S = 15


def workspace() -> Workspace:
    return Workspace.from_env()


@st.cache_resource(show_spinner=False)
def _store(db_path: str) -> Store:
    return Store(db_path, lock_timeout=20.0)


def store() -> Store:
    ws = workspace().ensure()
    return _store(str(ws.db_path))


@st.cache_resource(show_spinner=False)
def _scheduler(root: str) -> bool:
    """One background thread per app process that starts queued jobs and reaps dead ones."""
    start_background_scheduler(Workspace(Path(root)))
    return True


def read_only() -> bool:
    """The workspace cannot be written (a read-only mount): pages read, nothing that writes is offered."""
    return store().read_only


READ_ONLY_BANNER = ("This workspace is read-only: the pages show what it holds, and launching, cancelling or "
                    "resuming jobs and saving bookmarks are turned off.")


def ensure_scheduler() -> None:
    # CARDIO_APP_SCHEDULER=0 turns it off (the test suite does: AppTest runs pages in-process).
    if read_only():
        return  # a scheduler writes job rows
    if os.environ.get("CARDIO_APP_SCHEDULER", "1") != "0":
        _scheduler(str(workspace().ensure().root))


def db() -> str:
    return str(workspace().db_path)


# -- cached queries: the first argument is the database path, so workspaces never share entries -----------
@st.cache_data(ttl=TTL_S, show_spinner=False)
def summary(db_path: str) -> dict[str, pd.DataFrame]:
    return queries.workspace_summary(_store(db_path))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def weights(db_path: str, modality: str | None = None) -> pd.DataFrame:
    return queries.list_weights(_store(db_path), modality)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def runs_of(db_path: str, modality: str) -> list[str]:
    return queries.runs_of(_store(db_path), modality)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def continuation_order(db_path: str, weights_ids: tuple, run_id: str) -> list[str]:
    return queries.continuation_order(_store(db_path), weights_ids, run_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def best_checkpoint(db_path: str, run_id: str) -> dict:
    return queries.best_checkpoint(_store(db_path), run_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def best_checkpoint_of(db_path: str, weights_id: str) -> dict | None:
    return queries.best_checkpoint_of(_store(db_path), weights_id)


def best_checkpoint_caption(db_path: str, weights_id: str) -> None:
    """Which checkpoint of its run is the best (model selection, method.md §4), under a picker."""
    best = best_checkpoint_of(db_path, weights_id)
    if best and best["weights_id"]:
        mark = "this is the run's best checkpoint" if best["weights_id"] == weights_id else \
            f"the run's best checkpoint is {best['weights_id']}"
        st.caption(f"{mark} (epoch {best['epoch']}, {best['metric']} = {best['value']:.3f})")


@st.cache_data(ttl=TTL_S, show_spinner=False)
def available_views(db_path: str, weights_id: str) -> list[str]:
    return queries.available_views(_store(db_path), weights_id)


def weights_with_view(db_path: str, view: str) -> set[str]:
    return queries.weights_with_view(_store(db_path), view)


@st.cache_data(ttl=300, show_spinner=False, max_entries=32)
def points(db_path: str, weights_id: str, view: str, aligned: bool = False) -> pd.DataFrame:
    return queries.projection_points(_store(db_path), weights_id, view, aligned=aligned)


# Figures a rerun would otherwise rebuild unchanged (a selection elsewhere on the page reruns it all): the same
# object is returned, never a copy, so callers only draw them and never modify them.
@st.cache_resource(ttl=300, show_spinner=False, max_entries=16)
def evolution(db_path: str, frames: tuple, view: str, colours: tuple, review: bool, title: str):
    """The epoch-evolution animation of (epoch, weights_id) frames in a view (figures.evolution_figure)."""
    from app.figures import evolution_figure
    loaded = [(e, points(db_path, w, view, aligned=True)) for e, w in frames]
    return evolution_figure(loaded, colours=dict(colours), review=review, title=title)


@st.cache_resource(ttl=300, show_spinner=False, max_entries=16)
def rhythm_scatter(db_path: str, weights_id: str, view: str, colours: tuple, review: bool, height: int):
    """A view's scatter coloured by rhythm label, without rings (figures.scatter_figure)."""
    from app.figures import scatter_figure
    return scatter_figure(points(db_path, weights_id, view), "rhythm", review=review, colours=dict(colours),
                          height=height)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def pairs(db_path: str) -> pd.DataFrame:
    return paired_queries.list_pairs(_store(db_path))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def retrieval(db_path: str, pair_id: str) -> tuple[pd.DataFrame, str]:
    store = _store(db_path)
    return paired_queries.retrieval_table(store, pair_id), paired_queries.retrieval_note(store, pair_id)


@st.cache_data(ttl=300, show_spinner=False, max_entries=16)
def joint_points(db_path: str, pair_id: str) -> pd.DataFrame:
    return paired_queries.joint_points(_store(db_path), pair_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def paired_cohort_size(db_path: str) -> int:
    return paired_queries.cohort_size(_store(db_path))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def mmcl_defaults(db_path: str) -> tuple[str, str]:
    """The encoders contrastive pre-training starts from by default (MDM ECG, SimCLR or random CMR)."""
    from cardio_core.catalog import default_mmcl_parent
    store = _store(db_path)
    return (default_mmcl_parent(store, "ecg", register_random=False),
            default_mmcl_parent(store, "cmr", register_random=False))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def families(db_path: str) -> pd.DataFrame:
    return paired_queries.family_table(_store(db_path))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def silhouettes(db_path: str, a: str, b: str, scope: str) -> pd.DataFrame:
    return queries.silhouette_comparison(_store(db_path), a, b, scope)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def training_set_size(db_path: str, modality: str) -> int:
    """Records a fine-tune trains on: the Chapman train split (ECG); the ACDC patients (CMR: 4/5 per fold)."""
    if modality == "ecg":
        return int(_store(db_path).scalar("SELECT count(*) FROM records WHERE dataset_id = 'chapman' AND NOT excluded "
                                          "AND split = 'train'") or 0)
    return int(_store(db_path).scalar("SELECT count(*) FROM records WHERE dataset_id = 'acdc' AND NOT excluded")
               or 0) * 4 // 5


@st.cache_data(ttl=TTL_S, show_spinner=False)
def paired_train_size(db_path: str) -> int:
    """Subjects a phenotype fine-tune trains on: the paired cohort's train split."""
    return paired_queries.cohort_size(_store(db_path), "train")


@st.cache_data(ttl=TTL_S, show_spinner=False)
def scope_size(db_path: str, scope: str) -> int:
    return queries.scope_size(_store(db_path), scope)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def centroids(db_path: str, ids: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    return queries.centroid_tables(_store(db_path), ids)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def probes(db_path: str, run_id: str, baseline_id: str | None) -> pd.DataFrame:
    return queries.probe_trend(_store(db_path), run_id, baseline_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def label_baseline(db_path: str, weights_id: str | None, dataset_id: str) -> dict:
    return queries.label_baseline(_store(db_path), weights_id, dataset_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def run_checkpoints(db_path: str, run_id: str) -> pd.DataFrame:
    return queries.run_checkpoints(_store(db_path), run_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def per_class(db_path: str, weights_id: str) -> pd.DataFrame:
    return queries.per_class_table(_store(db_path), weights_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def acdc(db_path: str, weights_id: str) -> dict:
    return queries.acdc_folds(_store(db_path), weights_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def thesis(db_path: str, baseline_id: str | None, finetuned_id: str | None) -> pd.DataFrame:
    return queries.thesis_side_by_side(_store(db_path), baseline_id, finetuned_id)


@st.cache_data(ttl=5, show_spinner=False)
def bookmarks(db_path: str) -> pd.DataFrame:
    return saved_views.list_bookmarks(_store(db_path))


@st.cache_data(ttl=60, show_spinner=False)
def identifiers(db_path: str) -> frozenset[str]:
    return queries.identifiers(_store(db_path))


def redact(text) -> str:
    """Free text from jobs (log tails, errors, stages) as this viewer may see it: de-identified in review mode."""
    text = "" if text is None or (isinstance(text, float) and text != text) else str(text)
    return queries.redact_text(text, identifiers(db())) if review_mode() else text


_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:=\"'&^")


def escape_markdown(text) -> str:
    """User text (bookmark titles, notes) shown literally: every Markdown / Streamlit directive character
    backslash-escaped, so no viewer gets a planted link, image or coloured directive."""
    text = " ".join(str(text or "").split())
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


def bookmark_params(view_params: dict, review: bool) -> dict:
    """A bookmark's query parameters for a link: never a record id in review mode (whenever it was saved)."""
    params = {str(k): str(v) for k, v in (view_params or {}).items()}
    if review:
        params.pop("rec", None)
        params["review"] = "1"
    return params


# -- review mode ----------------------------------------------------------------------------------------------
def review_mode() -> bool:
    return bool(st.session_state.get("review", False))


def review_toggle() -> bool:
    """The sidebar toggle; its value lives in the URL (?review=1) like every other piece of view state."""
    state.init_widget("review", "review", False, parse=lambda v: v == "1")
    on = st.sidebar.toggle("Review mode", key="review",
                           help="De-identify (no record ids, ages in bands) and enlarge fonts and markers "
                                "for screen sharing.")
    state.sync(review=on)
    if on:
        st.html("<style>[data-testid='stMain'] p, [data-testid='stMain'] li, [data-testid='stWidgetLabel'] p,"
                " [data-testid='stCaptionContainer'] {font-size: 1.2rem !important;}"
                " [data-testid='stMain'] h1 {font-size: 3rem !important;}"
                " [data-testid='stMain'] h2, [data-testid='stMain'] h3 {font-size: 2rem !important;}</style>")
    return on


MAX_TABLE_ROWS = 1000


def show_table(df: pd.DataFrame, name: str, *, key: str, review: bool | None = None, **kwargs) -> None:
    """A table with a CSV download; de-identified in review mode."""
    review = review_mode() if review is None else review
    if review:
        df = queries.deidentify(df)
    shown = df
    if len(df) > MAX_TABLE_ROWS:   # a large selection: the page shows the first rows, the download has all
        st.caption(f"The first {MAX_TABLE_ROWS:,} of {len(df):,} rows; the CSV below has every row.")
        shown = df.head(MAX_TABLE_ROWS)
    st.dataframe(for_display(shown), hide_index=True, width="stretch", **kwargs)
    # built only when clicked: writing a 25k-row CSV on every rerun cost seconds
    st.download_button(f"Download {name} (CSV)", data=lambda: df.to_csv(index=False).encode(), file_name=f"{name}.csv",
                       mime="text/csv", key=f"csv-{key}", on_click="ignore")


def chart_config(name: str) -> dict:
    """Plotly modebar config: the camera button downloads PNG or SVG in the browser (no kaleido needed)."""
    fmt = st.session_state.get("figure_format", "png")
    return {"displaylogo": False, "toImageButtonOptions": {"format": fmt, "filename": name, "scale": 2}}


def show_figure(fig, name: str, *, key: str, **kwargs):
    """A plotly chart plus downloads: PNG/SVG from the camera button, HTML (and PNG/SVG if kaleido) below."""
    event = st.plotly_chart(fig, key=key, config=chart_config(name), **kwargs)
    cols = st.columns(3)
    cols[0].download_button("Download figure (HTML)", data=lambda: fig.to_html(include_plotlyjs=True),
                            file_name=f"{name}.html", mime="text/html", key=f"html-{key}", on_click="ignore")
    if kaleido_available():
        cols[1].download_button("PNG", data=lambda: fig.to_image(format="png", scale=2), file_name=f"{name}.png",
                                mime="image/png", key=f"png-{key}", on_click="ignore")
        cols[2].download_button("SVG", data=lambda: fig.to_image(format="svg"), file_name=f"{name}.svg",
                                mime="image/svg+xml", key=f"svg-{key}", on_click="ignore")
    return event


@st.cache_resource(show_spinner=False)
def kaleido_available() -> bool:
    try:
        import kaleido  # noqa: F401
        return True
    except ImportError:
        return False


def figure_format_picker() -> None:
    st.sidebar.radio("Figure download format", ["png", "svg"], key="figure_format", horizontal=True,
                     help="What the camera button on every chart saves.")


# -- weights pickers ------------------------------------------------------------------------------------------
def weights_picker(label: str, key: str, param: str, table: pd.DataFrame, default: str | None,
                   container=st) -> str | None:
    if table.empty:
        return None
    ids = table["weights_id"].tolist()
    names = dict(zip(table["weights_id"], table["display"]))
    if param == "w" and st.session_state.get("_last_w") in ids:
        default = st.session_state["_last_w"]  # the checkpoint chosen on another page carries over
    state.init_widget(key, param, default if default in ids else ids[0], choices=ids)
    value = container.selectbox(label, ids, key=key, format_func=lambda w: names.get(w, w))
    if param == "w":
        st.session_state["_last_w"] = value
    return value


@st.cache_data(ttl=TTL_S, show_spinner=False)
def runs(db_path: str, modality: str | None = None) -> pd.DataFrame:
    return queries.runs_overview(_store(db_path), modality)


def run_picker(label: str, key: str, modality: str, container=st) -> tuple[str | None, str | None]:
    """Choose a run (default: the most recent one whose job succeeded); returns (run_id, its best checkpoint).

    The choice is in the URL (?run_<modality>=...), so a shared link compares the same run."""
    table = runs(db(), modality)
    if table.empty:
        return None, None
    ids = table["run_id"].tolist()
    state.init_widget(key, f"run_{modality}", queries.default_run(table) or ids[0], choices=ids)
    info = table.set_index("run_id")

    def name(r):
        row = info.loc[r]
        return f"{r} ({row['recipe']}, {int(row['n_checkpoints'])} checkpoint(s), {row['status']})"
    run = container.selectbox(label, ids, key=key, format_func=name)
    state.sync(**{f"run_{modality}": run})
    best = info.loc[run, "best_weights_id"]
    return run, (str(best) if isinstance(best, str) else None)


def run_choice_caption(run: str, modality: str) -> str:
    """Which run and checkpoint stand for "fine-tuned" on the page, named."""
    row = runs(db(), modality).set_index("run_id").loc[run]
    if row["best_value"] is not None and pd.notna(row["best_value"]):
        return (f"Fine-tuned = run {run}, its best checkpoint: epoch {int(row['best_epoch'])} "
                f"({row['selected_by']} {row['best_value']:.3f}).")
    return f"Fine-tuned = run {run}, epoch {row['best_epoch']} ({row['selected_by']})."


def acdc_chance_level() -> float:
    """Accuracy of a constant guess over the 5 balanced ACDC groups."""
    from cardio_core.labels import ACDC_GROUPS
    return 1.0 / len(ACDC_GROUPS)


def cmr_weights_picker(cmr: pd.DataFrame) -> str:
    """CMR weights grouped as run -> fold -> epoch; opens on the newest run's 5-fold summary (all folds, last epoch).

    The choice is the URL's ?cmr=<weights id>."""
    baselines = cmr[cmr["kind"] != "checkpoint"]
    ckpts = cmr[cmr["kind"] == "checkpoint"]
    run_ids = list(dict.fromkeys(ckpts.sort_values("weights_id")["run_id"].dropna()))
    newest = runs(db(), "cmr")
    run_ids = sorted(run_ids, key=lambda r: newest["run_id"].tolist().index(r) if r in set(newest["run_id"]) else 99)
    groups = run_ids + (["baselines"] if not baselines.empty else [])
    by_id = cmr.set_index("weights_id")
    wanted = state.param("cmr")
    default_group = groups[0]
    if wanted in by_id.index:
        default_group = by_id.loc[wanted, "run_id"] if by_id.loc[wanted, "kind"] == "checkpoint" else "baselines"
    state.init_widget("mx_cmr_run", "cmr_run", default_group, choices=groups)
    c1, c2 = st.columns(2)
    group = c1.selectbox("Run", groups, key="mx_cmr_run",
                         format_func=lambda g: "baselines (no fine-tuning)" if g == "baselines" else g)
    entries = baselines if group == "baselines" else ckpts[ckpts["run_id"] == group]
    if group != "baselines":   # the all-folds summary of the last epoch first, then each fold's models
        entries = entries.assign(_all=entries["fold"].isna()).sort_values(["_all", "epoch"], ascending=[False, False])
    ids = entries["weights_id"].tolist()
    names = dict(zip(cmr["weights_id"], cmr["display"]))
    state.init_widget("mx_cmr_entry", "cmr", wanted if wanted in ids else ids[0], choices=ids)
    if st.session_state["mx_cmr_entry"] not in ids:
        st.session_state["mx_cmr_entry"] = ids[0]
    cid = c2.selectbox("Summary or fold", ids, key="mx_cmr_entry", format_func=lambda w: names.get(w, w))
    state.sync(cmr_run=group, cmr=cid)
    return cid


def default_finetuned(table: pd.DataFrame) -> str | None:
    """The newest checkpoint that has a projection, else any weights with one."""
    with_proj = table[table["has_projection"]]
    ck = with_proj[with_proj["kind"] == "checkpoint"]
    if not ck.empty:
        return str(ck.sort_values(["run_id", "epoch"]).iloc[-1]["weights_id"])
    return str(with_proj.iloc[0]["weights_id"]) if not with_proj.empty else None


# -- selection ------------------------------------------------------------------------------------------------
def event_selection(event) -> dict | None:
    """The box / lasso regions (and clicked points) of a plotly_chart selection event, or None."""
    if not event:
        return None
    sel = event.get("selection") if isinstance(event, dict) else getattr(event, "selection", None)
    if not sel:
        return None
    regions = {"box": list(sel.get("box") or []), "lasso": list(sel.get("lasso") or [])}
    clicked = [p.get("customdata") for p in (sel.get("points") or [])]
    regions["positions"] = [int(c[0] if isinstance(c, (list, tuple)) else c) for c in clicked if c is not None]
    return regions if (regions["box"] or regions["lasso"] or regions["positions"]) else None


_NO_CHANGE = object()


def new_chart_selection(chart_key: str):
    """The regions of the chart's selection if the user changed it since the last rerun, else NO_CHANGE.

    Only a change of the chart's own selection counts: its first, empty state (a fresh
    page, a shared link) must not erase a selection that came from the URL or the other chart.
    """
    event = st.session_state.get(chart_key)
    if event is None:
        return _NO_CHANGE
    regions = event_selection(event)
    changed = regions != st.session_state.get(f"{chart_key}_last")
    st.session_state[f"{chart_key}_last"] = regions
    return regions if changed else _NO_CHANGE


def selection_changed(result) -> bool:
    return result is not _NO_CHANGE


def selection_mask(pts: pd.DataFrame, regions: dict | None) -> np.ndarray:
    mask = queries.selection_mask(pts, regions)
    if regions and not (regions.get("box") or regions.get("lasso")):
        for p in regions.get("positions", []):  # a plain click: the points themselves
            if 0 <= p < len(mask):
                mask[p] = True
    return mask


SELECT_HINT = ("Draw a box or lasso on the scatter to select records (the selection covers every filtered "
               "record inside it, not only those drawn).")


def selection_summary_block(pts: pd.DataFrame, mask: np.ndarray, *, key: str, hint: str = SELECT_HINT) -> None:
    if not mask.any():
        st.info(hint)
        return
    review = review_mode()
    n_selected = int(mask.sum())
    st.markdown(f"**{n_selected} selected** of {len(pts)} shown records.")
    summary = queries.selection_summary(pts, mask)
    c1, c2 = st.columns([3, 2])
    with c1:
        st.caption("Label enrichment: share in the selection / share in the rest (— where the rest has none)")
        labels = summary["labels"].copy()
        for col in ("share_selected", "share_rest"):
            labels[col] = [f"{v:.1%}" if pd.notna(v) else None for v in labels[col]]
        labels["enrichment"] = [f"{v:.2f}" if np.isfinite(v) else None for v in labels["enrichment"]]
        st.dataframe(for_display(labels, digits=None), hide_index=True, height=260, width="stretch")
    with c2:
        st.caption("Selection vs rest")
        if review and n_selected < queries.MIN_SUMMARY_RECORDS:
            st.caption(f"Demographics hidden (< {queries.MIN_SUMMARY_RECORDS}): review mode shows none for "
                       f"fewer than {queries.MIN_SUMMARY_RECORDS} records, which would describe individuals.")
        else:
            demo = summary["demographics"]
            if review:
                demo = queries.review_demographics(demo)
            st.dataframe(for_display(demo.reset_index(names=""), digits=2), hide_index=True, height=120,
                         width="stretch")
    show_table(queries.selection_table(pts, mask), "selection", key=f"sel-{key}", review=review, height=260)


# -- record preview -------------------------------------------------------------------------------------------
def record_preview(dataset_id: str, record_id: str, *, key: str, weights_id: str | None = None) -> None:
    """The record on ECG paper (or its CMR frames); with ECG `weights_id`, where that encoder looks in it."""
    from app.ecg_paper import cmr_frames_figure, ecg_paper_figure

    ws = workspace()
    info = queries.record_info(store(), dataset_id, record_id)
    review = review_mode()
    if info is None:
        st.warning(f"No such record in {dataset_id}." if review else f"No record {record_id!r} in {dataset_id}.")
        return
    name = dataset_id if review else f"{dataset_id} {record_id}"
    roots = [ws.root] + ([info["source_dir"]] if info.get("source_dir") else [])
    if info["modality"] == "cmr":
        which = "preprocessed"
        st.caption(f"{name}: {', '.join(info['classes'])}")
    else:
        which = st.segmented_control("Signal", ["raw", "preprocessed"], default="raw", key=f"which-{key}",
                                     help="raw: the recording in mV as stored; preprocessed: what the model "
                                          "sees (filtered, baseline removed, z-scored per lead)") or "raw"
        st.caption(f"{name}: {', '.join(info['classes'])}")
    try:
        array, fs = queries.load_record_signal(store(), info, which, roots)
    except Exception as exc:  # a bad file must not break the page: say which file and why
        # review mode: the file name carries the record id, so the message is de-identified
        st.warning(f"Cannot show this record: {redact(exc)}")
        array = None
    if array is None:
        pass
    elif info["modality"] == "cmr":
        from app.model_maps import gradcam_overlay
        overlay, note = gradcam_overlay(dataset_id, record_id, weights_id, array.shape[-2:])
        st.plotly_chart(cmr_frames_figure(array, overlay=overlay), key=f"cmr-{key}",
                        config=chart_config(f"cmr-{dataset_id}"))
        if note:
            st.caption(note)
    else:
        fig = ecg_paper_figure(array, fs, units="mV" if which == "raw" else "SD", review=review)
        # the page's full width (the figure's height leaves the width to bind the 1:1 paper)
        st.plotly_chart(fig, key=f"ecg-{key}", config=chart_config(f"ecg-{dataset_id}"), width="stretch")
    # the model's view reads the preprocessed input, so a missing raw file does not hide it
    if weights_id and info["modality"] == "ecg":
        from app.model_maps import attention_view
        attention_view(dataset_id, record_id, weights_id, key=key)


def explain(name: str, *, n: int | float | None = None, of: int | None = None, records: str = "records") -> None:
    """The metric's one-line meaning next to its number, with 'how it is computed' one click away."""
    from cardio_core.metrics.definitions import DEFINITIONS
    if name not in DEFINITIONS:
        return
    _, what, how = DEFINITIONS[name]
    count = ""
    if n is not None and pd.notna(n):
        count = f" · n = {int(n)}" + (f" of {of}" if of else "") + f" {records}"
    st.caption(what + count)
    with st.expander("How it is computed", expanded=False):
        st.caption(how + " All definitions: the Methods page.")


def label_baseline_caption(db_path: str, weights_id: str | None, dataset_id: str) -> None:
    """One line setting these weights' label score beside what demographics alone reach (queries.label_baseline)."""
    b = label_baseline(db_path, weights_id, dataset_id)
    if not b:
        return
    features = " and ".join(b["features"]) or "demographics"
    if b["baseline"] is None or pd.isna(b["baseline"]):
        st.caption(f"Demographics alone ({features}): not computed" + (f": {b['note']}" if b.get("note") else "."))
        return
    if dataset_id == "acdc":
        base = f"accuracy {b['baseline']:.3f}" + (f" ± {b['se']:.3f} SE" if b.get("se") is not None else "")
        mine = f"this encoder {b['weights']:.3f}" if b.get("weights") is not None and pd.notna(b["weights"]) else ""
    else:
        base = f"linear-probe macro F1 {b['baseline']:.3f}" + (
            f" (macro AUROC {b['macro_auroc']:.3f})" if b.get("macro_auroc") is not None else "")
        mine = (f"this embedding's linear probe {b['weights']:.3f}"
                if b.get("weights") is not None and pd.notna(b["weights"]) else "")
    st.caption(f"Demographics alone ({features}): {base}" + (f"; {mine}." if mine else "."))
    explain("label_baseline")


def empty_state(message: str) -> None:
    st.info(message)
    st.page_link(PAGES["overview"], label="Go to the Overview", icon=":material/home:")


# Filled by app/main.py before the page runs; pages use it for links.
PAGES: dict = {}


@st.cache_data(ttl=TTL_S, show_spinner=False)
def probed_weights(db_path: str) -> pd.DataFrame:
    return phenotype_queries.probed_weights(_store(db_path))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def table_iv(db_path: str, weights_ids: tuple[str, ...], displays: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    return phenotype_queries.table_iv(_store(db_path), weights_ids, dict(displays))


@st.cache_data(ttl=300, show_spinner=False, max_entries=32)
def phenotype_scatter(db_path: str, model_id: str, phenotype: str) -> dict:
    return phenotype_queries.phenotype_scatter(_store(db_path), model_id, phenotype)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def phenotype_note(db_path: str, model_id: str) -> str:
    return phenotype_queries.phenotype_note(_store(db_path), model_id)
