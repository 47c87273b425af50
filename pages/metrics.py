"""Metrics: per-class table, prevalence vs F1, CMR accuracy per fold, intra/inter ratios, thesis side by side."""
import streamlit as st

from app import common
from app.figures import fold_accuracy_figure, prevalence_f1_figure
from cardio_core import queries
from cardio_core.metrics.thesis import THESIS

st.title("Metrics")
db = common.db()
review = common.review_mode()
weights = common.weights(db)
if weights.empty:
    common.empty_state("No weights and no metrics yet.")
    st.stop()

ecg = weights[weights["modality"] == "ecg"]
cmr = weights[weights["modality"] == "cmr"]
tab_ecg, tab_cmr, tab_thesis = st.tabs(["ECG classification", "CMR (ACDC)", "Thesis side by side"])
with tab_ecg:
    if ecg.empty:
        st.caption("No ECG weights.")
    else:
        wid = common.weights_picker("Weights / checkpoint", "mx_w", "w", ecg, common.default_finetuned(ecg))
        common.best_checkpoint_caption(db, wid)
        table = common.per_class(db, wid)
        if table.empty:
            st.info("No classification metrics for these weights (baselines have none: they have no head).")
        else:
            st.caption("Per class at threshold 0.5 on the Chapman test split; 'macro' = unweighted mean.")
            common.show_table(table.round(3), f"per-class-{wid}", key="mx_table")
            fit = queries.prevalence_vs_f1(table)
            common.show_figure(prevalence_f1_figure(table, fit, review), f"prevalence-f1-{wid}", key="mx_prev")
with tab_cmr:
    if cmr.empty:
        st.caption("No CMR weights.")
    else:
        cid = common.weights_picker("CMR weights", "mx_c", "cmr", cmr, str(cmr.iloc[-1]["weights_id"]))
        common.best_checkpoint_caption(db, cid)
        folds = common.acdc(db, cid)
        if folds["per_fold"].empty:
            st.info("No ACDC metrics for these weights yet.")
        else:
            if "accuracy_mean" in folds:
                st.metric("Accuracy (5 folds)", f"{folds['accuracy_mean']:.3f} ± {folds['accuracy_se']:.3f} SE",
                          help=f"Thesis: {THESIS['acdc_accuracy'][0]:.2f} ± {THESIS['acdc_accuracy'][1]:.3f}")
                common.show_figure(fold_accuracy_figure(folds["per_fold"], folds["accuracy_mean"],
                                                        folds["accuracy_se"], review), f"acdc-accuracy-{cid}",
                                   key="mx_acc")
            if "silhouette_mean" in folds:
                st.metric("Silhouette (mean ± SD over folds)",
                          f"{folds['silhouette_mean']:.3f} ± {folds['silhouette_sd']:.3f}")
            common.show_table(folds["per_fold"].round(4), f"acdc-folds-{cid}", key="mx_folds")
            if folds.get("unscored"):
                st.warning("Folds that could not be scored: " + "; ".join(folds["unscored"]))
            st.caption("Silhouette per group, mean and SD over folds.")
            common.show_table(folds["silhouette_per_label"].round(3), f"acdc-silhouette-{cid}", key="mx_sil")
            st.caption("Intra/inter ratio per group: mean distance of its records to its centroid / mean distance "
                       "from its centroid to the other groups' centroids (centroid to centroid, as in the thesis "
                       "code; lower = tighter), mean and SD over folds.")
            common.show_table(folds["intra_inter"].round(3), f"acdc-intra-inter-{cid}", key="mx_ii")
with tab_thesis:
    ft = common.default_finetuned(ecg) if not ecg.empty else None
    base = queries.baseline_for(weights, ft or "")
    st.caption(f"Baseline: {base or '–'} · fine-tuned: {ft or '–'}. Thesis numbers from method.md §6; "
               "the demo data is synthetic, so its numbers are not expected to match. `few_records`: a per-label "
               "number resting on fewer than 10 records (noise).")
    common.show_table(common.thesis(db, base, ft).round(3), "thesis-side-by-side", key="mx_thesis")
