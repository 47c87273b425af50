"""Sub-clusters: CRBBB / CLBBB (or any label) combined with each rhythm label, highlighted over grey,
with marginal densities (thesis Figs D.4, D.5); and the selection summary."""
import streamlit as st

from app import common, state
from app.figures import facet_figure
from cardio_core.labels import CLASSES, RHYTHM_LABELS

st.title("Sub-clusters")
db = common.db()
review = common.review_mode()
weights = common.weights(db)
projected = weights[weights["has_projection"]] if not weights.empty else weights
projected = projected[projected["modality"] == "ecg"] if not projected.empty else projected
if projected.empty:
    common.empty_state("No ECG projection yet.")
    st.stop()

c1, c2 = st.columns(2)
wid = common.weights_picker("Weights / checkpoint", "sc_w", "w", projected, common.default_finetuned(projected),
                            container=c1)
choices = [c for c in CLASSES if c not in RHYTHM_LABELS]
state.init_widget("sc_labels", "labels", ["CRBBB", "CLBBB"], parse=lambda v: state.decode_list(v, CLASSES))
chosen = c2.multiselect("Labels to facet", CLASSES, key="sc_labels",
                        help="Each label gets a row of panels, one per rhythm label.")
state.sync(w=wid, labels=chosen)
views_here = common.available_views(db, wid)
view = "chapman_test" if "chapman_test" in views_here else views_here[0]
pts = common.points(db, wid, view)
for label in chosen:
    st.markdown(f"#### {label}")
    fig = facet_figure(pts, label, RHYTHM_LABELS, review=review)
    common.show_figure(fig, f"subclusters-{label}", key=f"sc_fig_{label}")
st.caption("Coloured: records with both labels; grey: all others. Curves: marginal density of the highlighted "
           "records (solid) and of all records (dotted); none is drawn for a panel of fewer than 5 records.")

st.subheader("Selection summary")
regions = st.session_state.get("ex_sel")
if regions is None and state.param("sel"):
    try:
        regions = state.decode_selection(state.param("sel"))
    except ValueError as exc:  # a hand-edited or truncated link: say so, show the page
        st.warning(f"Ignoring the selection in the link: {exc}")
        regions = None
mask = common.selection_mask(pts, regions)
common.selection_summary_block(
    pts, mask, key="subclusters",
    hint="These panels cannot be selected on: select with a box or lasso on Explore (same checkpoint), or open a "
         "shared link with a selection, and its summary shows here.")
