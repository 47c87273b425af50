"""Where the model looks in a record. ECG: the encoder's attention as heat bands under the leads of its own
input, read from the maps the analysis pass cached (cardio_core.analysis.attention); for any other record it
queues an `attention` job and shows its state, never computing in the page's request. CMR: the fine-tuned
classifier's Grad-CAM (cardio_core.analysis.cmr_maps), stored for every validation patient when its fold's
checkpoint was analysed, drawn over the ED, mid and ES frames.
"""
from __future__ import annotations

import streamlit as st

from app import common, state
from cardio_core import queries

HEAD_CHOICES = ["mean"] + [str(h) for h in range(1, 17)]


def _runner():
    from jobs.runner import LocalRunner
    return LocalRunner(common.workspace(), common.store())


def _submit(weights_id: str, dataset_id: str, record_id: str) -> str:
    from jobs.spec import JobSpec
    spec = JobSpec(kind="attention", weights=weights_id, dataset=dataset_id, device="auto",
                   params={"record_ids": [record_id]}, name=f"attention of one {dataset_id} record")
    return _runner().submit(spec)


def attention_view(dataset_id: str, record_id: str, weights_id: str, *, key: str) -> None:
    """The attention section under a record's preview, for ECG weights."""
    st.markdown("**Where the model looks**")
    job_key = f"att-job-{weights_id}-{dataset_id}-{record_id}"
    pending = st.session_state.get(job_key)

    def render() -> None:
        maps = queries.record_attention(common.store(), weights_id, dataset_id, record_id)
        if not maps:
            _not_cached(dataset_id, record_id, weights_id, job_key, key=key)
            return
        st.session_state.pop(job_key, None)
        _draw(maps, dataset_id, record_id, weights_id, key=key)

    # while a job computes this record's maps, the section looks again every 2 s and draws them when they land
    st.fragment(run_every=2.0 if pending else None)(render)()


def _not_cached(dataset_id, record_id, weights_id, job_key, *, key) -> None:
    job_id = st.session_state.get(job_key)
    if job_id:
        row = _runner().show(job_id)
        if row["status"] in ("failed", "cancelled"):
            st.warning(f"The attention job {job_id} {row['status']}: {common.redact(row.get('error') or '')}")
            st.session_state.pop(job_key, None)
        else:
            st.info(f"Computing this record's attention maps in job {job_id} ({row['status']}); "
                    "they appear here when it finishes.")
            return
    st.caption("Not computed for this record and these weights yet (the analysis caches the first "
               "records of each evaluation set). An attention job computes them in the background.")
    if st.button("Compute where the model looks", key=f"att-compute-{key}"):
        st.session_state[job_key] = _submit(weights_id, dataset_id, record_id)
        st.rerun()


def _draw(maps, dataset_id, record_id, weights_id, *, key) -> None:
    from app.ecg_paper import ecg_attention_figure

    sources = list(maps)
    n_heads = next(iter(maps.values())).shape[0]
    heads = HEAD_CHOICES[: n_heads + 1]
    state.init_widget(f"att_src_{key}", "att", sources[0], choices=sources)
    state.init_widget(f"att_head_{key}", "head", "mean", choices=heads)
    c1, c2 = st.columns([2, 3])
    source = c1.selectbox("Map", sources, key=f"att_src_{key}", format_func=queries.source_label,
                          help="block k: how much attention each patch receives in block k (class token left "
                               "out, averaged over all queries). Attention pool: the weights the fine-tuned "
                               "pool gives each patch when it forms the embedding.")
    head = c2.segmented_control("Heads", heads, key=f"att_head_{key}",
                                format_func=lambda h: "mean of heads" if h == "mean" else f"head {h}") or "mean"
    state.sync(att=None if source == sources[0] else source, head=None if head == "mean" else head)
    grid = queries.heads_view(maps[source], None if head == "mean" else int(head) - 1)
    info = queries.record_info(common.store(), dataset_id, record_id)
    roots = [common.workspace().root] + ([info["source_dir"]] if info and info.get("source_dir") else [])
    try:
        signal, fs = queries.load_record_signal(common.store(), info, "preprocessed", roots)
    except Exception as exc:  # a bad file must not break the page: say which file and why
        st.warning(f"Cannot show this record's input: {common.redact(exc)}")
        return
    patch = queries.patch_samples(common.store(), weights_id, dataset_id, record_id) or 100
    length = grid.shape[1] * patch
    fig = ecg_attention_figure(signal[:, :length], grid, fs, colour_label=queries.source_label(source))
    st.plotly_chart(fig, key=f"att-fig-{key}", config=common.chart_config(f"attention-{dataset_id}"),
                    width="stretch")
    st.caption(f"The model's input (preprocessed, the first {length / fs:g} s) with "
               f"{queries.source_label(source)} per lead and {1000 * patch / fs:g} ms patch "
               f"({'mean of ' + str(n_heads) + ' heads' if head == 'mean' else 'head ' + head}) as the band under "
               "each trace; one colour scale over all leads, from the map's minimum to its maximum.")
    common.explain("ecg_attention")


def gradcam_overlay(dataset_id: str, record_id: str, weights_id: str | None, shape) -> tuple:
    """(the Grad-CAM map upsampled to the frames' shape, or None; the line saying what it shows)."""
    from cardio_core.analysis.cmr_maps import upsample_map
    if not weights_id:
        return None, ""
    found = queries.cmr_map(common.store(), weights_id, dataset_id, record_id)
    if found is None:
        return None, ("No Grad-CAM for these weights: it is computed for the fine-tuned ACDC classifiers "
                      "(each patient by its own fold's model).")
    fold = f" (fold {found['fold']}'s model)" if found.get("fold") is not None else ""
    note = (f"Grad-CAM{fold} of the predicted group {found['class']} (probability {found['probability']:.2f}) "
            f"on ResNet {found['layer']}'s {found['grid'].shape[0]} x {found['grid'].shape[1]} grid, upsampled "
            "bilinearly and scaled to its maximum; one map over the three frames, which the model sees together "
            "as the channels of one image.")
    return upsample_map(found["grid"], tuple(shape)), note


def patch_similarity_section(pair_id: str, *, review: bool) -> None:
    """A paired test subject's CMR frames with MMCL's patch-similarity heatmap (the paper's Fig. 6)."""
    from app.ecg_paper import cmr_frames_figure
    from cardio_core.analysis.cmr_maps import upsample_map
    from cardio_core.vocabulary import PAIRED_DATASETS

    store = common.store()
    dataset_id = PAIRED_DATASETS["cmr"]
    subjects = queries.cmr_map_records(store, pair_id, dataset_id, "patch_similarity")
    if not subjects:
        st.caption("No patch-similarity maps for this pair: they need the pair's contrastive projectors (the "
                   "released files do not include them) and a finished analysis.")
        return
    labels = {s: f"subject {i + 1}" for i, s in enumerate(subjects)} if review else {s: s for s in subjects}
    state.init_widget("mm_heat_subject", "heat", subjects[0], choices=subjects)
    subject = st.selectbox("Test subject", subjects, key="mm_heat_subject", format_func=lambda s: labels[s])
    state.sync(heat=None if review or subject == subjects[0] else subject)
    found = queries.cmr_map(store, pair_id, dataset_id, subject, kind="patch_similarity")
    info = queries.record_info(store, dataset_id, subject)
    roots = [common.workspace().root] + ([info["source_dir"]] if info and info.get("source_dir") else [])
    try:
        frames, _ = queries.load_record_signal(store, info, "preprocessed", roots)
    except Exception as exc:  # a bad file must not break the page: say which file and why
        st.warning(f"Cannot show this subject's CMR: {common.redact(exc)}")
        return
    grid = found["grid"]
    overlay = upsample_map(grid, frames.shape[-2:], scale="minmax")
    st.plotly_chart(cmr_frames_figure(frames, overlay=overlay, overlay_label="similarity"),
                    key=f"mm-heat-{pair_id}", config=common.chart_config(f"patch-similarity-{pair_id}"))
    st.caption(f"Cosine similarity of each location of the CMR encoder's layer4 grid ({grid.shape[0]} x "
               f"{grid.shape[1]}), through the image projector, with this subject's own ECG projection: "
               f"{grid.min():.2f} to {grid.max():.2f}, drawn from its minimum (transparent) to its maximum (red), "
               "upsampled bilinearly, over the ED, mid and ES frames.")
