"""Evaluation metrics as pure functions (method.md §5): numpy in, floats/dicts/DataFrames out."""
from cardio_core.metrics.classification import (
    accuracy,
    accuracy_mean_se,
    binarize,
    f1_bootstrap_ci,
    macro_average,
    per_class_scores,
    prevalence_f1_fit,
    prevalence_f1_pearson,
)
from cardio_core.metrics.embedding import (
    bootstrap_ci,
    centroid_table,
    cross_domain_distances,
    embedding_scale,
    fold_mean_sd,
    intra_inter_ratio,
    knn_label_purity,
    label_centroids,
    label_matrix,
    multi_labelled_rhythm_mask,
    paired_silhouette_change,
    rhythm_centroids,
    rhythm_label_of,
    share_closer_to,
    silhouette_overall,
    silhouette_per_label,
    silhouette_report,
    single_labelled_rhythm_mask,
)
from cardio_core.metrics.summary import (FEW_RECORDS, SILHOUETTE_PERCENT_FLOOR, FoldSummary, change, few_records,
                                         fold_summary, label_efficiency_curve, percent_change)
from cardio_core.metrics.probes import demographic_probe, domain_shift_score, linear_probe

__all__ = [
    "accuracy", "accuracy_mean_se", "binarize", "f1_bootstrap_ci", "macro_average", "per_class_scores",
    "prevalence_f1_fit", "prevalence_f1_pearson",
    "FEW_RECORDS", "few_records", "SILHOUETTE_PERCENT_FLOOR", "FoldSummary", "change", "fold_summary",
    "label_efficiency_curve", "percent_change",
    "bootstrap_ci", "centroid_table", "cross_domain_distances", "embedding_scale", "fold_mean_sd", "intra_inter_ratio",
    "knn_label_purity", "label_centroids", "label_matrix", "multi_labelled_rhythm_mask", "paired_silhouette_change",
    "rhythm_centroids", "rhythm_label_of", "share_closer_to", "silhouette_overall",
    "silhouette_per_label", "silhouette_report", "single_labelled_rhythm_mask",
    "demographic_probe", "domain_shift_score", "linear_probe",
]
