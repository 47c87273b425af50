"""Explore: one projection as a WebGL scatter, coloured and filtered; select, summarise, preview records."""
import numpy as np
import streamlit as st

from app import common, state
from app.figures import cross_domain_figure, scatter_figure
from cardio_core import queries
from cardio_core.store import bookmarks
from cardio_core.labels import CLASSES

VIEW_NAMES = {"chapman_test": "Chapman test", "cross_domain": "Chapman + PTB-XL overlay",
              "chapman_test_lda": "Chapman test · LDA (fitted on train)", "acdc": "ACDC"}
COLOUR_NAMES = {"rhythm": "rhythm label", "class": "one of the 20 classes", "age": "age", "sex": "sex",
                "bmi": "BMI", "bmi_category": "BMI category", "split": "split / fold", "dataset": "dataset"}

st.title("Explore")
db = common.db()
review = common.review_mode()
weights = common.weights(db)
weights = weights[weights["has_projection"]] if not weights.empty else weights
if weights.empty:
    common.empty_state("No projections yet. They appear when a run's embeddings are projected "
                       "(the demo job does this; see Jobs).")
    st.stop()

controls = st.columns([3, 2, 2, 2])
wid = common.weights_picker("Weights / checkpoint", "ex_w", "w", weights, common.default_finetuned(weights),
                            container=controls[0])
view_choices = common.available_views(db, wid)
state.init_widget("ex_view", "view", view_choices[0], choices=view_choices)
if st.session_state["ex_view"] not in view_choices:
    st.session_state["ex_view"] = view_choices[0]
view = controls[1].selectbox("Dataset view", view_choices, key="ex_view", format_func=VIEW_NAMES.get)
# ACDC records carry a diagnostic group, not a rhythm label or one of the 20 ECG classes
colour_names = ({**{k: v for k, v in COLOUR_NAMES.items() if k != "class"}, "rhythm": "group (ACDC)"}
                if view == "acdc" else COLOUR_NAMES)
state.init_widget("ex_colour", "colour", "rhythm", choices=list(COLOUR_NAMES))
if st.session_state["ex_colour"] not in colour_names:
    st.session_state["ex_colour"] = "rhythm"
colour = controls[2].selectbox("Colour by", list(colour_names), key="ex_colour", format_func=colour_names.get,
                               help="In the PTB-XL overlay, 'rhythm label' draws Chapman as density contours; "
                                    "any other colouring draws both cohorts as markers (PTB-XL as crosses).")
cls = None
if colour == "class":
    state.init_widget("ex_cls", "cls", "CRBBB", choices=CLASSES)
    cls = controls[3].selectbox("Class", CLASSES, key="ex_cls")
fold = None
if view == "acdc":
    # Each fold's patients are embedded by that fold's own model: five separate spaces. One at a time by default.
    state.init_widget("ex_fold", "fold", "0", choices=["0", "1", "2", "3", "4", "all"])
    fold_choice = controls[3].selectbox("ACDC fold (model)", ["0", "1", "2", "3", "4", "all"], key="ex_fold",
                                        format_func=lambda f: "all five, side by side" if f == "all" else f"fold {f}",
                                        help="A fine-tuned CMR run has one model per fold; each embeds its own "
                                             "fold's validation patients.")
    fold = None if fold_choice == "all" else int(fold_choice)

pts_all = common.points(db, wid, view)
with st.expander("Filters", expanded=False):
    present = queries.labels_present(pts_all)
    f1, f2, f3, f4 = st.columns(4)
    state.init_widget("ex_labels", "labels", [], parse=lambda v: state.decode_list(v, present))
    state.keep_valid("ex_labels", present)
    labels = f1.multiselect("Labels (any of)", present, key="ex_labels")
    ages = pts_all["age"].dropna()
    age_bounds = (float(ages.min()), float(ages.max())) if len(ages) else (0.0, 100.0)
    age_step = 10.0 if review else 1.0
    if review:  # the exact youngest and oldest ages would show in the slider: snap to decades
        age_bounds = (float(np.floor(age_bounds[0] / 10) * 10), float(np.floor(age_bounds[1] / 10) * 10 + 10))
    if age_bounds[0] == age_bounds[1]:
        age_bounds = (age_bounds[0], age_bounds[0] + 1)
    state.init_widget("ex_age", "age", age_bounds, parse=lambda v: state.decode_range(v, age_bounds))
    if review:  # a value from a link or from before review mode: onto the decade grid too
        lo, hi = st.session_state["ex_age"]
        st.session_state["ex_age"] = (float(np.floor(lo / 10) * 10), float(np.ceil(hi / 10) * 10))
    previous = st.session_state.get("ex_age_bounds")
    if previous is not None and tuple(st.session_state.get("ex_age", ())) == tuple(previous):
        st.session_state["ex_age"] = age_bounds  # no age filter before: still none on the new view
    st.session_state["ex_age_bounds"] = age_bounds
    state.keep_valid("ex_age", bounds=age_bounds)
    age_range = f2.slider("Age range", age_bounds[0], age_bounds[1], key="ex_age", step=age_step,
                          help="In review mode pick wide ranges: exact ages are not shown.")
    state.init_widget("ex_sex", "sex", [], parse=lambda v: state.decode_list(v, ["M", "F"]))
    sexes = f3.multiselect("Sex", ["M", "F"], key="ex_sex")
    ds_present = sorted(pts_all["dataset_id"].unique())
    state.init_widget("ex_ds", "ds", [], parse=lambda v: state.decode_list(v, ds_present))
    state.keep_valid("ex_ds", ds_present)
    datasets = f4.multiselect("Dataset", ds_present, key="ex_ds")
age_filter = None if tuple(age_range) == age_bounds else tuple(age_range)
pts = queries.filter_points(pts_all, labels=labels, age_range=age_filter, sexes=sexes, datasets=datasets, fold=fold)

# The selection: from the chart when the user draws one, else from the URL (a shared link).
if "ex_sel" not in st.session_state:
    try:
        st.session_state["ex_sel"] = state.decode_selection(state.param("sel")) or None
    except ValueError as exc:
        st.warning(f"Ignoring the selection in the link: {exc}")
        st.session_state["ex_sel"] = None
chart_key = f"ex_chart_{wid}_{view}"
drawn_on = repr((chart_key, review, colour, cls, labels, age_filter, sexes, datasets, fold))  # this chart as drawn now
drawn = common.new_chart_selection(chart_key)
if common.selection_changed(drawn):
    st.session_state["ex_sel"] = drawn
    st.session_state["ex_sel_on"] = drawn_on
regions = st.session_state["ex_sel"]
# A selection drawn on this very chart is already shown by plotly (the rest dimmed): rings would change the
# figure and make the browser redraw every panel on each selection. A selection from a link or another view
# (another checkpoint, view, colouring or filter) gets rings.
ring = regions is not None and st.session_state.get("ex_sel_on") != drawn_on
mask = common.selection_mask(pts, regions)

state.sync(w=wid, view=view, colour=colour, cls=cls, labels=labels,
           age=state.encode_range(*age_filter) if age_filter else None, sex=sexes, ds=datasets,
           fold=fold, sel=state.encode_selection(regions))

st.caption(f"{len(pts):,} of {len(pts_all):,} records shown · ● single-labelled ◆ multi-labelled · "
           "draw a box or lasso to select (toolbar top right) · "
           f"{queries.projection_method(common.store(), wid, view) or 'no projection stored'}")
if pts.empty:
    st.warning("No record matches these filters.")
else:
    if view == "acdc" and fold is None and pts["fold"].nunique() > 1:
        st.info("All folds: each fold's patients are embedded by a different model, so the five groups of points "
                "are five separate embedding spaces, not five clusters. Choose one fold to read the geometry.")
    if view == "cross_domain":
        fig = cross_domain_figure(pts, review=review, colour_by=colour, cls=cls)
    else:
        fig = scatter_figure(pts, colour, cls=cls, review=review, highlight=mask if ring and mask.any() else None,
                             axes=("LD 1", "LD 2") if view == "chapman_test_lda" else ("UMAP 1", "UMAP 2"))
    common.show_figure(fig, f"explore-{view}", key=chart_key, on_select="rerun",
                       selection_mode=("points", "box", "lasso"))

st.subheader("Selection")
common.selection_summary_block(pts, mask, key="explore")

st.subheader("Record preview")
# A selectbox of every selected record would send tens of thousands of options to the browser on each rerun.
PREVIEW_CHOICES = 500
clicked = [p for p in (regions or {}).get("positions", []) if 0 <= p < len(pts)]
in_view = np.flatnonzero(mask) if mask.any() else np.arange(len(pts))
offered = np.union1d(in_view[:PREVIEW_CHOICES], clicked[:1]).astype(int)
candidates = pts.iloc[offered]
if candidates.empty:
    st.caption("No record to preview.")
else:
    if len(in_view) > PREVIEW_CHOICES:
        st.caption(f"Offered below: the first {PREVIEW_CHOICES} of {len(in_view):,} "
                   f"{'selected' if mask.any() else 'shown'} records; click a point to preview any drawn one.")
    keys = (candidates["dataset_id"] + ":" + candidates["record_id"].astype(str)).tolist()
    if clicked and not ((regions or {}).get("box") or (regions or {}).get("lasso")):
        # A click on one point previews it.
        st.session_state["ex_rec"] = f"{pts.iloc[clicked[0]]['dataset_id']}:{pts.iloc[clicked[0]]['record_id']}"
    state.init_widget("ex_rec", "rec", None, choices=keys)
    if st.session_state["ex_rec"] not in keys:
        st.session_state["ex_rec"] = None
    labels_of = dict(zip(keys, candidates["labels"]))
    fmt = (lambda k: f"record #{keys.index(k) + 1} · {labels_of[k]}") if review else \
        (lambda k: f"{k} · {labels_of[k]}")
    # Drawn only on demand: a 12-lead figure is heavier than the scatter's page budget allows.
    chosen = st.selectbox("Record", keys, key="ex_rec", format_func=fmt,
                          placeholder="Click a point, or choose a record (from the selection when there is one)")
    state.sync(rec=None if review else chosen)
    if chosen:
        dataset_id, record_id = chosen.split(":", 1)
        common.record_preview(dataset_id, record_id, key="explore", weights_id=wid)

with st.expander("Bookmark this view"):
    with st.form("bookmark"):
        title = st.text_input("Title")
        note = st.text_area("Note")
        saved = st.form_submit_button("Save bookmark", disabled=common.read_only())
    if saved and not common.read_only():
        params = {k: v for k, v in st.query_params.to_dict().items() if not (review and k == "rec")}
        try:
            bookmarks.save_bookmark(common.store(), title, note, "explore", params,
                                {"regions": state.encode_selection(regions), "n": int(mask.sum())} if mask.any()
                                else None)
            common.bookmarks.clear()
            st.success("Saved; it is listed on the Overview.")
        except ValueError as exc:
            st.error(str(exc))
