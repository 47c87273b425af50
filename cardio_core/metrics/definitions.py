"""What each number means, in plain language, and how it is computed: one text per metric, shown next to the
number in the app (Compare, Metrics, Overview), on the app's Methods page and at the end of every report.

Each entry: (title, what it says in one line, how it is computed: which records, which space, which interval).
"""
from __future__ import annotations

DEFINITIONS: dict[str, tuple[str, str, str]] = {
    "silhouette": (
        "Silhouette (rhythm labels)",
        "How well records of one rhythm sit together and apart from other rhythms: 1 = tight, separate "
        "clusters; 0 = overlapping; below 0 = closer to another rhythm than to their own.",
        "Euclidean silhouette in the encoder's embedding space (not the 2-D picture; a pre-trained encoder without "
        "a trained pooling head is read through its pre-training pooling, mean over patch tokens then its final "
        "norm) over the single-labelled "
        "rhythm records (exactly one of AFIB, GSVT, PACE, SB, SR) of the Chapman test split, or of the PTB-XL "
        "display subset; per label = the mean over that label's records. Interval: 95% percentile bootstrap over "
        "records. Labels with fewer than 10 records are flagged."),
    "silhouette_change": (
        "Change in silhouette",
        "Fine-tuned minus baseline, on the same records. Shown as an absolute change; a percent change only where "
        "the baseline is above 0.05 (a percentage of a near-zero or negative silhouette means nothing).",
        "Value of the compared weights minus value of the baseline weights; same records, same definition. "
        "Interval: paired bootstrap of the change, resampling records within each label and recomputing both "
        "silhouettes on every replicate (stored for a checkpoint against its run's baseline)."),
    "centroid_single": (
        "Distance to the label centroid (single vs multi-labelled)",
        "How far records of a label lie from that label's centre; multi-labelled records usually lie further out.",
        "Mean Euclidean distance of a label's single-labelled (resp. multi-labelled) Chapman test records to the "
        "centroid of its single-labelled records. 'Relative' divides by the embedding's scale (the mean distance "
        "of all test records to their overall centroid), because fine-tuning stretches the whole space and makes "
        "every raw distance grow."),
    "ptbxl_to_chapman_centroid": (
        "PTB-XL to the Chapman centroid",
        "How far the unseen cohort's records lie from the Chapman centre of the same rhythm: the domain gap.",
        "Mean Euclidean distance of the PTB-XL display subset's single-labelled rhythm records to the Chapman test "
        "centroid of their label."),
    "share_sr_closer_to_sb": (
        "PTB-XL SR closer to SB",
        "The share of PTB-XL sinus-rhythm records that lie nearer the bradycardia centre than the sinus one "
        "(and, reported beside it, the share of PTB-XL SB records nearer the SR centre).",
        "Share of the PTB-XL display subset's single-labelled SR records whose distance to the PTB-XL SB centroid is "
        "smaller than to the PTB-XL SR centroid (the thesis's definition); a variant with the Chapman test "
        "centroids is stored under its own name."),
    "f1": (
        "F1 per class",
        "How well the fine-tuned head finds a class: the balance of precision (its alarms are right) and recall "
        "(it misses none).",
        "Threshold 0.5 on the head's sigmoid outputs over the Chapman test split; 0/0 counts as 0; macro = the "
        "unweighted mean over the 20 classes. Interval: 95% percentile bootstrap over records."),
    "prevalence_f1_r": (
        "Prevalence vs F1 (Pearson r)",
        "Whether frequent classes are learned better than rare ones.",
        "Pearson correlation over the 20 classes between prevalence in the test split and F1."),
    "accuracy": (
        "CMR accuracy over folds",
        "How often the fine-tuned ResNet-50 names the right ACDC group. Chance is 0.20 (5 balanced groups).",
        "Each fold's model scored on its own validation patients; mean over the 5 folds ± standard error "
        "(SD / √5)."),
    "intra_inter_ratio": (
        "Intra/inter ratio (CMR)",
        "How tight a group is compared with its distance to the others; lower is better separated.",
        "Per fold (each fold's model on its own validation patients): mean distance of a group's patients to their "
        "own centroid divided by the mean distance from that centroid to the other groups' centroids (centroid to "
        "centroid); mean ± SD over folds."),
    "knn_purity": (
        "kNN purity",
        "How often a record's 10 nearest neighbours share its rhythm label.",
        "Single-labelled rhythm records of the Chapman test split, Euclidean, k = 10."),
    "linear_probe_macro_f1": (
        "Linear probe (macro F1)",
        "What a linear classifier reads from the frozen embedding alone.",
        "One-vs-rest logistic regression on the frozen embeddings, fitted on the Chapman train split (a seeded "
        "subsample of at most 3,000 records, its size recorded) and scored as macro F1 on the test split; a "
        "pre-trained encoder is read through its pre-training pooling."),
    "probe_age_r2": (
        "Age probe (R²)",
        "How much of the age the embedding encodes.",
        "Ridge regression of age on the embedding, 5-fold cross-validated R² on the Chapman test split."),
    "probe_sex_auroc": (
        "Sex probe (AUROC)",
        "How well the embedding separates female from male; 0.5 = not at all.",
        "Logistic regression, 5-fold cross-validated AUROC on the Chapman test split."),
    "domain_auroc": (
        "Domain AUROC",
        "How easily a classifier tells Chapman from PTB-XL records apart: 0.5 = the cohorts mix, 1 = separate.",
        "Logistic regression Chapman test vs PTB-XL display, 5-fold cross-validated AUROC."),
    "retrieval_top_k": (
        "Cross-modal retrieval (top-k)",
        "How often a subject's ECG finds that subject's own CMR among its k nearest CMRs in the shared space "
        "(and the reverse); chance is k / the number of test subjects.",
        "Both encoders' embeddings through their contrastive projectors into the shared 128-d space, cosine "
        "similarity, over the paired cohort's test subjects (each query against every test subject of the other "
        "modality). Ties count against the query. Interval: 95% percentile bootstrap over subjects."),
    "retrieval_median_rank": (
        "Cross-modal retrieval (median rank)",
        "The typical position of a subject's own pair in the other modality's ranking; chance is about half the "
        "number of test subjects, 1 is perfect.",
        "As top-k retrieval; the median over test subjects of the 1-based rank of the true pair."),
    "phenotype_r": (
        "CMR phenotypes from the ECG (Pearson r)",
        "How well a straight-line read-out of the frozen ECG embedding predicts each heart measurement from the "
        "CMR (volumes, ejection fraction, mass): 1 = perfect ranking and spacing, 0 = nothing; a group's value is "
        "the mean r of its phenotypes, as in the MMCL paper's Table IV.",
        "Per phenotype, a ridge regression on standardised embeddings and a standardised target, fitted on the "
        "paired cohort's train subjects, its penalty (13 values, 0.01 to 10,000) chosen by r on val, scored once "
        "on test. Subjects missing a phenotype are left out of that phenotype. The demographics-only baseline is "
        "scikit-learn's histogram gradient boosting on age, sex, height and weight (learning rate 0.05 or 0.1, "
        "depth 2 or 3, chosen on val) with the same splits. Interval: 95% percentile bootstrap over test "
        "subjects, one resample shared by every phenotype."),
    "ecg_attention": (
        "Where the ECG model looks",
        "How much of the model's attention each 0.2 s patch of each lead gets: a hot cell is a part of the "
        "signal the encoder weighed heavily when it formed this record's embedding.",
        "Each token of the ECG ViT is 100 samples (0.2 s at 500 Hz) of one lead, so 300 tokens = 12 leads x 25 "
        "patches over the model's 5 s input. Block k: that block's self-attention probabilities (heads, tokens, "
        "tokens) with the class token left out, averaged over the queries, i.e. the attention each patch "
        "receives. Attention pool (fine-tuned encoders only): the pool's weights over the patch tokens for its "
        "single query, the mean patch token; each head's weights sum to 1. Shown per head or as the mean over "
        "the 6 heads, on one colour scale for all leads. Computed in jobs on the preprocessed input, samples "
        "0-2499, as the embedding is."),
    "label_baseline": (
        "Demographics alone",
        "What the labels' score would be with no ECG or CMR at all, from the demographics the dataset carries: "
        "an encoder that barely beats this has learnt little beyond age, sex or body size.",
        "scikit-learn's histogram gradient boosting (learning rate and depth chosen by validation). Chapman: age "
        "and sex, one classifier per rhythm label, fitted on the linear probe's own train records, threshold 0.5, "
        "macro F1 over the test records, as the frozen-embedding linear probe is scored. ACDC: height and weight, "
        "each cross-validation fold predicted by a model fitted on the other four, accuracy mean +- SE over the "
        "5 folds, as the CMR classifiers are scored. Computed once per ingest of the dataset."),
    "umap": (
        "The 2-D pictures (UMAP)",
        "A map of the embedding for the eye; distances in it are only roughly faithful.",
        "UMAP, Euclidean, fixed seed; ECG n_neighbors 30 / min_dist 0.25, CMR 15 / 0.1. Every number on these "
        "pages is computed in the full embedding space, never on the picture."),
}


def explain(name: str) -> str:
    """'what it says. How: ...' for a metric name, or '' when there is no definition."""
    if name not in DEFINITIONS:
        return ""
    _, what, how = DEFINITIONS[name]
    return f"{what} How: {how}"


def as_markdown() -> str:
    """Every definition as a Markdown list (the Methods page and the report's last section)."""
    return "\n".join(f"- **{title}.** {what} *How:* {how}" for title, what, how in DEFINITIONS.values()) + "\n"
