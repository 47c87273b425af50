"""Compare: two checkpoints side by side (same colours, shared selection), a run's epoch evolution,
silhouettes with CIs, centroid tables and the demographic-probe trend."""
import numpy as np
import streamlit as st

from app import common, state
from app.figures import category_colours, probe_figure, scatter_figure, silhouette_bars
from cardio_core import queries

st.title("Compare")
db = common.db()
review = common.review_mode()
weights = common.weights(db)
projected = weights[weights["has_projection"]] if not weights.empty else weights
if projected.empty:
    common.empty_state("Nothing to compare yet: no projections in this workspace.")
    st.stop()

finetuned = common.default_finetuned(projected)
c1, c2, c3 = st.columns(3)
a = common.weights_picker("Left (A)", "cmp_a", "base", projected, queries.baseline_for(projected, finetuned),
                          container=c1)
b = common.weights_picker("Right (B)", "cmp_b", "w", projected, finetuned, container=c2)
with c2:
    common.best_checkpoint_caption(db, b)
# what each side's label score adds over age, sex and body size alone (queries.label_baseline)
modality_of = dict(zip(projected["weights_id"], projected["modality"]))
for column, wid in ((c1, a), (c2, b)):
    with column:
        common.label_baseline_caption(db, wid, "acdc" if modality_of.get(wid) == "cmr" else "chapman")
shared_views = [v for v in common.available_views(db, a) if v in common.available_views(db, b)]
if not shared_views:
    st.warning("These two weights have no projection view in common; pick another pair.")
    st.stop()
state.init_widget("cmp_view", "view", shared_views[0], choices=shared_views)
if st.session_state["cmp_view"] not in shared_views:
    st.session_state["cmp_view"] = shared_views[0]
view = c3.selectbox("View", shared_views, key="cmp_view")
state.sync(base=a, w=b, view=view)

pa, pb = common.points(db, a, view), common.points(db, b, view)
colours = category_colours(np.union1d(pa["rhythm"].unique(), pb["rhythm"].unique()))

# Shared selection: records selected in either chart are ringed in the other (matched by "dataset:record" key;
# vectorised, since a box over a 50k-point view selects tens of thousands of records).
def record_keys(pts) -> np.ndarray:
    return (pts["dataset_id"].astype(str) + ":" + pts["record_id"].astype(str)).to_numpy(dtype=object)


def drawn_on(key) -> str:
    """Which chart, as drawn now, a selection was made on."""
    return f"{key}_{a}_{b}_{view}:{review}"


picked = st.session_state.setdefault("cmp_selected", set())
for key, pts in (("cmp_chart_a", pa), ("cmp_chart_b", pb)):
    regions = common.new_chart_selection(f"{key}_{a}_{b}_{view}")
    if common.selection_changed(regions):
        mask = common.selection_mask(pts, regions)
        picked = set(record_keys(pts)[mask])
        st.session_state["cmp_selected"] = picked
        st.session_state["cmp_selected_on"] = drawn_on(key)


def in_picked(pts) -> np.ndarray:
    return np.fromiter((k in picked for k in record_keys(pts)), dtype=bool, count=len(pts))


def ringed(pts, key):
    # The chart the selection was drawn on shows it itself (plotly dims the rest); rings there would change its
    # figure and make the browser redraw it. The other chart gets rings.
    if not picked or st.session_state.get("cmp_selected_on") == drawn_on(key):
        return None
    return in_picked(pts)


left, right = st.columns(2)
names = dict(zip(weights["weights_id"], weights["display"]))
for col, wid, pts, key in ((left, a, pa, "cmp_chart_a"), (right, b, pb, "cmp_chart_b")):
    with col:
        st.markdown(f"**{names.get(wid, wid)}**")  # above the chart: a plot title would sit under the toolbar
        rings = ringed(pts, key)
        fig = (scatter_figure(pts, "rhythm", review=review, highlight=rings, colours=colours, height=480)
               if rings is not None and rings.any() else
               common.rhythm_scatter(db, wid, view, tuple(sorted(colours.items())), review, 480))
        common.show_figure(fig, f"compare-{wid}", key=f"{key}_{a}_{b}_{view}", on_select="rerun",
                           selection_mode=("box", "lasso"))
if picked:
    st.caption(f"{len(picked)} records selected; ringed in the other view.")
    sel_b = in_picked(pb)
    with st.expander("Selection summary (right view)"):
        common.selection_summary_block(pb, sel_b, key="compare")

st.subheader("Epoch evolution")
# Runs with a checkpoint projected in this view (an ECG view lists no CMR run); B's own run first.
in_view = projected[projected["weights_id"].isin(common.weights_with_view(db, view))]
runs = in_view["run_id"].dropna().unique().tolist()
run_of_b = projected.loc[projected["weights_id"] == b, "run_id"].dropna().tolist()
runs = sorted(runs, key=lambda r: r not in run_of_b)  # stable: B's run first, the rest in order
if not runs:
    st.caption("No run has a checkpoint projected in this view yet.")
else:
    state.init_widget("cmp_run", "run", runs[0], choices=runs)
    if st.session_state["cmp_run"] not in runs:
        st.session_state["cmp_run"] = runs[0]
    run = st.selectbox("Run", runs, key="cmp_run")
    ckpts = common.run_checkpoints(db, run)
    ckpts = ckpts[ckpts["weights_id"].isin(projected["weights_id"])]
    base = queries.baseline_for(projected, ckpts["weights_id"].iloc[0]) if len(ckpts) else None
    frames = ([(0, base)] if base else []) + list(zip(ckpts["epoch"].astype(int), ckpts["weights_id"]))
    frames = [(e, w) for e, w in frames if view in common.available_views(db, w)]
    if len(frames) < 1:
        st.caption("No checkpoint of this run has a projection for this view yet.")
    else:
        state.sync(run=run)
        fig = common.evolution(db, tuple(frames), view, tuple(sorted(colours.items())), review,
                               f"{run}: baseline and checkpoints")
        common.show_figure(fig, f"evolution-{run}", key="cmp_evolution")
        st.caption("Press ▶ Play, or drag the slider. Each frame is one checkpoint's aligned UMAP layout: initialised "
                   "from and rotated onto the previous one, then centred and scaled to the same spread (a UMAP layout "
                   "has no absolute scale). A label moving relative to the others is a change of the embedding; the "
                   "size of a cluster is comparable between frames only relative to the whole layout. The "
                   "side-by-side charts above are each checkpoint's own independent UMAP fit.")

st.subheader("Silhouette per label")
scope = st.radio("Scope", ["chapman_test", "ptbxl_display"], horizontal=True, key="cmp_scope")
sil = common.silhouettes(db, a, b, scope)
if sil.dropna(subset=["baseline_value", "other_value"], how="all").empty:
    st.caption("No silhouettes for these weights yet.")
else:
    overall = sil[sil["label"] == "overall"]
    common.explain("silhouette", n=overall["n"].iloc[0] if len(overall) else None,
                   of=common.scope_size(db, scope), records="single-labelled rhythm records (the rest carry no single "
                   "rhythm label)")
    common.show_figure(silhouette_bars(sil, names.get(a, a), names.get(b, b), review), f"silhouette-{scope}",
                       key="cmp_sil_fig")
    common.explain("silhouette_change")
    st.caption("Change CI: paired bootstrap 95% interval of the change B - A (records resampled, silhouettes "
               "recomputed; stored for a checkpoint against its run's baseline).")
    small = sil[(sil["n"] < 10) & (sil["label"] != "overall")]["label"].tolist()
    if small:
        st.caption(f"Fewer than 10 records: {', '.join(small)}: read these silhouettes as anecdotes.")
    common.show_table(sil, f"silhouette-{scope}", key="cmp_sil")

st.subheader("Centroid distances")
cent = common.centroids(db, (a, b))
st.caption("Single- vs multi-labelled: mean distance to the label's centroid, raw and relative to the embedding's "
           "scale (compare the relative columns between checkpoints: fine-tuning stretches the whole space)")
common.explain("centroid_single")
common.show_table(cent["single_multi"], "centroids-single-multi", key="cmp_cent1")
st.caption("PTB-XL records to the Chapman centroid of their label; shares closer to another label's centroid "
           "(PTB-XL's own centroids as in the thesis, and the Chapman-centroid variant)")
common.explain("ptbxl_to_chapman_centroid")
common.show_table(cent["cross_domain"], "centroids-cross-domain", key="cmp_cent2")

st.subheader("Demographic probes across checkpoints")
if runs:
    trend = common.probes(db, st.session_state.get("cmp_run", runs[0]),
                          queries.baseline_for(weights, finetuned or ""))
    if trend.empty:
        st.caption("No probe metrics yet.")
    else:
        common.show_figure(probe_figure(trend, review), "probe-trend", key="cmp_probe_fig")
