"""Multimodal: what contrastive ECG-CMR pre-training did to the shared space of a paired cohort. Retrieval in
both directions with chance beside it, the joint layout of both modalities (a selected subject's ECG and CMR
joined by a line), and the released MMCL family."""
import pandas as pd
import streamlit as st

from app import common, state
from app.figures import paired_figure
from app.model_maps import patch_similarity_section
from cardio_core.labels import CMR_PHENOTYPES

st.title("Multimodal (ECG ↔ CMR)")
db = common.db()
review = common.review_mode()
pairs = common.pairs(db)
if pairs.empty:
    common.empty_state("No ECG-CMR encoder pairs yet. Run contrastive pre-training (Jobs: pretrain_mmcl, or the "
                       "demo) on a paired cohort, or drop the released MMCL files into weights/.")
    st.stop()

ids = pairs["pair_id"].tolist()
names = dict(zip(pairs["pair_id"], pairs["display"]))
state.init_widget("mm_pair", "pair", common.paired_queries.default_pair(pairs), choices=ids)
pair_id = st.selectbox("Encoder pair (ECG + CMR trained together)", ids, key="mm_pair",
                       format_func=lambda p: names.get(p, p))
state.sync(pair=pair_id)
row = pairs.set_index("pair_id").loc[pair_id]
st.caption(f"ECG encoder `{row['ecg_weights_id']}` · CMR encoder `{row['cmr_weights_id']}`"
           + ("" if row["analysed"] else " · analysis not finished yet"))

st.subheader("Cross-modal retrieval on the test subjects")
table, note = common.retrieval(db, pair_id)
if table.empty:
    st.info(note or "No retrieval numbers for this pair yet: its analysis has not run.")
else:
    n = table["test subjects"].iloc[0]
    common.explain("retrieval_top_k", n=n, records="test subjects")
    common.show_table(table, f"retrieval-{pair_id}", key="mm_retrieval")
    top10 = table.iloc[0]
    if "top10" in top10:
        st.caption(f"ECG → CMR top-10: {top10['top10']:.3f} against a chance level of {top10['top10 chance']:.3f} "
                   f"({top10['top10'] / max(top10['top10 chance'], 1e-9):.1f}× chance).")
    common.explain("retrieval_median_rank")

st.subheader("Joint layout of both modalities")
pts = common.joint_points(db, pair_id)
if pts.empty:
    st.caption("No joint layout for this pair (it needs the contrastive projectors and a finished analysis).")
else:
    present = [p for p in CMR_PHENOTYPES if p in pts.columns]
    options = ["modality", *present, "age", "bmi", "sex"]
    state.init_widget("mm_colour", "colour", "modality", choices=options)
    c1, c2 = st.columns([1, 2])
    colour_by = c1.selectbox("Colour by", options, key="mm_colour")
    subjects = sorted(pts["record_id"].astype(str).unique())
    # In review mode subjects are offered by number only: their ids never reach the screen.
    labels = {s: f"subject {i + 1}" for i, s in enumerate(subjects)} if review else {s: s for s in subjects}
    state.init_widget("mm_subjects", "subjects", [], parse=lambda v: state.decode_list(v, subjects))
    state.keep_valid("mm_subjects", subjects)
    picked = c2.multiselect("Highlight subjects (both of their points, joined)", subjects, key="mm_subjects",
                            format_func=lambda s: labels[s])
    regions = common.new_chart_selection(f"mm_chart_{pair_id}")
    if common.selection_changed(regions):
        mask = common.selection_mask(pts, regions)
        boxed = sorted(set(pts.loc[mask, "record_id"].astype(str)))
        if boxed:
            st.session_state["mm_boxed"] = boxed
        else:
            st.session_state.pop("mm_boxed", None)
    highlight = set(picked) | set(st.session_state.get("mm_boxed", []))
    state.sync(colour=None if colour_by == "modality" else colour_by, subjects=picked)
    fig = paired_figure(pts, colour_by, review=review, highlight=highlight)
    common.show_figure(fig, f"joint-{pair_id}", key=f"mm_chart_{pair_id}", on_select="rerun",
                       selection_mode=("box", "lasso", "points"))
    st.caption("UMAP of both encoders' test embeddings after their projectors, fitted jointly in the shared 128-d "
               "space: circles are ECGs, squares CMRs. Select points (box, lasso or a click) or pick subjects above: "
               "each selected subject's ECG and CMR are ringed and joined, so a short line is a pair the space "
               "brought together.")
    if highlight:
        sel = pts[pts["record_id"].astype(str).isin(highlight)]
        st.caption(f"{sel['record_id'].nunique()} subjects highlighted.")
        shown = sel[["record_id", "modality", "age", "sex", "bmi", *present]].copy()
        if review:
            shown["record_id"] = shown["record_id"].astype(str).map(labels)
        common.show_table(shown, f"joint-selection-{pair_id}", key="mm_sel_table")

st.subheader("Where each CMR matches its own ECG")
patch_similarity_section(pair_id, review=review)

st.subheader("Encoder families")
fam = common.families(db)
if fam.empty:
    st.caption("No encoder family registered. The released MMCL files (signal_encoder_{mdm,mmcl,mmcl_wo_mdm}.pth, "
               "image_encoder_{simclr,mmcl,mmcl_wo_mdm}.pth) form one when dropped into weights/; every MMCL run "
               "forms its own.")
else:
    st.caption("Stages and lineage: MDM → MMCL for the ECG encoder, SimCLR (or random) → MMCL for the CMR encoder. "
               "Compare any two members side by side on the Compare page.")
    common.show_table(pd.DataFrame(fam), "families", key="mm_families")
