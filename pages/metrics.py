"""Metrics: per-class table, prevalence vs F1, CMR accuracy per fold, intra/inter ratios, thesis side by side."""
import pandas as pd
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
        common.label_baseline_caption(db, wid, "chapman")
        table = common.per_class(db, wid)
        if table.empty:
            st.info("No classification metrics for these weights (baselines have none: they have no head).")
        else:
            common.explain("f1", n=common.scope_size(db, "chapman_test"), records="Chapman test records")
            common.show_table(table, f"per-class-{wid}", key="mx_table")
            fit = queries.prevalence_vs_f1(table)
            common.explain("prevalence_f1_r", n=fit["n"], records="classes")
            common.show_figure(prevalence_f1_figure(table, fit, review), f"prevalence-f1-{wid}", key="mx_prev")
with tab_cmr:
    if cmr.empty:
        st.caption("No CMR weights.")
    else:
        cid = common.cmr_weights_picker(cmr)
        common.best_checkpoint_caption(db, cid)
        folds = common.acdc(db, cid)
        if folds["per_fold"].empty:
            st.info("No ACDC metrics for these weights yet.")
        else:
            chance = common.acdc_chance_level()
            if "accuracy_mean" in folds and pd.notna(folds["accuracy_mean"]):
                st.metric("Accuracy (5 folds)", f"{folds['accuracy_mean']:.3f} ± {folds['accuracy_se']:.3f} SE",
                          help=f"Chance level: {chance:.2f} (5 balanced groups). "
                               f"Thesis: {THESIS['acdc_accuracy'][0]:.2f} ± {THESIS['acdc_accuracy'][1]:.3f}")
                st.caption(f"Chance level is {chance:.2f}: with 5 balanced groups a constant guess is right 1 time "
                           "in 5." + (" **This is at chance.**" if folds["accuracy_mean"] <= chance + 0.02 else ""))
                common.show_figure(fold_accuracy_figure(folds["per_fold"], folds["accuracy_mean"],
                                                        folds["accuracy_se"], review, chance=chance),
                                   f"acdc-accuracy-{cid}", key="mx_acc")
            common.explain("accuracy", n=common.scope_size(db, "acdc"), records="ACDC patients")
            common.label_baseline_caption(db, cid, "acdc")
            if "silhouette_mean" in folds:
                st.metric("Silhouette (mean ± SD over folds)",
                          f"{folds['silhouette_mean']:.3f} ± {folds['silhouette_sd']:.3f}")
                common.explain("silhouette")
            common.show_table(folds["per_fold"], f"acdc-folds-{cid}", key="mx_folds")
            if folds.get("unscored"):
                st.warning("Folds that could not be scored: " + "; ".join(folds["unscored"]))
            st.caption("Silhouette per group, mean and SD over folds.")
            common.show_table(folds["silhouette_per_label"], f"acdc-silhouette-{cid}", key="mx_sil")
            common.explain("intra_inter_ratio")
            common.show_table(folds["intra_inter"], f"acdc-intra-inter-{cid}", key="mx_ii")
with tab_thesis:
    run, ft = common.run_picker("Fine-tuned run", "mx_run", "ecg")
    base = queries.baseline_for(weights, ft or "") if ft else None
    if run is None:
        st.caption("No ECG fine-tuning run yet.")
    else:
        st.caption(common.run_choice_caption(run, "ecg") + f" Baseline = its parent weights, {base or '—'}. "
                   "Thesis numbers are the published ones; the demo data is synthetic, so its numbers are not "
                   "expected to match. Few records: a per-label number resting on fewer than 10 records (noise).")
    common.show_table(common.thesis(db, base, ft), "thesis-side-by-side", key="mx_thesis")
