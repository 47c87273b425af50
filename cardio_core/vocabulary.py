"""The project's shared names, defined once: modalities, datasets, recipes, weight-file suffixes, job statuses.

Pages, jobs, the command line and the library import these tuples instead of keeping
copies, so a new dataset, recipe or status is added in one place. Importing this module is
cheap (no torch, no store).
"""
from __future__ import annotations

MODALITIES = ("ecg", "cmr")

# Datasets the readers know, per modality, and what each job can train on: fine-tuning has
# labelled targets on Chapman (20 classes) and ACDC (5 groups) only; PTB-XL is the unseen
# cohort that is embedded and projected, never fine-tuned on.
DATASETS = ("chapman", "ptbxl", "acdc")
MODALITY_DATASETS = {"ecg": ("chapman", "ptbxl"), "cmr": ("acdc",)}
FINETUNE_DATASETS = {"ecg": ("chapman",), "cmr": ("acdc",)}
PRETRAIN_DATASETS = {"ecg": ("chapman", "ptbxl"), "cmr": ()}

# A paired ECG + CMR cohort (one manifest.csv, one ECG and one cine per subject) is ingested
# as two store datasets, one per modality, with the subject id as record id in both. They
# are deliberately not in DATASETS / MODALITY_DATASETS: the fine-tuning, pre-training and
# analysis choices that iterate those stay as they are; multimodal training reads them
# through cardio_core.data.paired_view.
PAIRED_COHORT = "paired"
PAIRED_DATASETS = {"ecg": "paired_ecg", "cmr": "paired_cmr"}
# What `cardio ingest` accepts: a single-modality dataset, or the paired cohort.
INGEST_SOURCES = DATASETS + (PAIRED_COHORT,)

# Recipe presets (cardio_core.training.recipes.PRESETS holds their values), per modality.
RECIPES = ("thesis_ecg", "mmcl_ecg", "thesis_cmr", "demo_ecg", "demo_cmr")
MODALITY_RECIPES = {m: tuple(r for r in RECIPES if r.endswith(f"_{m}")) for m in MODALITIES}
DEMO_RECIPES = {"ecg": "demo_ecg", "cmr": "demo_cmr"}

# Weight files the catalogue registers from <workspace>/weights/ (torch.load archives only).
WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")

# Job statuses: queued -> starting -> running -> succeeded | failed | cancelled.
JOB_STATUSES = ("queued", "starting", "running", "succeeded", "failed", "cancelled")
# Active: not ended yet (waiting, starting or running). The only meaning of "active" anywhere.
ACTIVE_STATUSES = ("queued", "starting", "running")
# Of the active ones, those that have (or are getting) a worker process.
RUNNING_STATUSES = ("starting", "running")
FINAL_STATUSES = ("succeeded", "failed", "cancelled")
PROJECTION_VIEWS = ("chapman_test", "cross_domain", "chapman_test_lda", "acdc")  # the 2-D layouts stored per weights

# The analysis of an ECG-CMR encoder pair on a paired cohort's test subjects (cardio_core.analysis.paired):
# the metrics' scope and the joint shared-space layout.
PAIRED_SCOPE = "paired_test"
PAIRED_VIEW = "paired_joint"
# Phenotypes predicted on the paired test split (ridge probes of ECG embeddings, the demographics baseline).
PHENOTYPE_SCOPE = "paired_phenotypes"
DEMOGRAPHICS_MODEL = "demographics"
# The metric scope that holds the demographics-only baseline of each labelled dataset.
DEMOGRAPHICS_SCOPE = {"chapman": "chapman_test", "acdc": "acdc"}
# Multimodal contrastive (MMCL) pre-training presets (cardio_core.training.mmcl_recipes.MMCL_PRESETS holds their values).
MMCL_RECIPES = ("mmcl", "demo_mmcl")

# Model selection (method.md §4, §8), the validation metric that picks a run's best checkpoint, by the run's dataset
# (else its modality): macro-F1 (ECG on Chapman), accuracy averaged over folds (CMR), the mean Pearson r over the
# phenotypes (ECG fine-tuned on a paired cohort's CMR phenotypes).
SELECTION_METRIC = {"ecg": "val/macro_f1", "cmr": "val/accuracy_mean", "paired_ecg": "val/mean_r"}
