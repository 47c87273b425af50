"""Versioned schema of the DuckDB store.

Each migration is applied once, in order, inside one transaction, and recorded in
`schema_version`. Add a new entry at the end; never edit an applied one.
"""
from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "initial schema", """
CREATE TABLE datasets (
    dataset_id      TEXT PRIMARY KEY,      -- 'chapman' | 'ptbxl' | 'acdc'
    modality        TEXT NOT NULL,         -- 'ecg' | 'cmr'
    source_dir      TEXT NOT NULL,
    is_demo         BOOLEAN NOT NULL DEFAULT FALSE,
    n_records       INTEGER,               -- usable records after exclusions
    n_files         INTEGER,               -- records found on disk
    preprocessed_dir TEXT,
    split_seed      INTEGER,
    ingested_at     TIMESTAMP
);

CREATE TABLE records (
    dataset_id      TEXT NOT NULL,
    record_id       TEXT NOT NULL,         -- Chapman 'JS01053', PTB-XL ecg_id, ACDC 'patient001'
    patient_id      TEXT,
    split           TEXT,                  -- train|val|test (Chapman); display|pool (PTB-XL); cv (ACDC)
    fold            INTEGER,               -- ACDC: the fold (0-4) in which this patient is validation
    age             DOUBLE,
    sex             TEXT,                  -- 'M' | 'F'
    height          DOUBLE,                -- cm
    weight          DOUBLE,                -- kg
    bmi             DOUBLE,
    bmi_category    TEXT,
    source_path     TEXT NOT NULL,
    n_labels        INTEGER,
    excluded        BOOLEAN NOT NULL DEFAULT FALSE,
    exclusion_reason TEXT,
    flags           TEXT,                  -- comma-separated non-fatal warnings (flat lead, NaN, ...)
    PRIMARY KEY (dataset_id, record_id)
);

CREATE TABLE labels (
    dataset_id      TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    class           TEXT NOT NULL,
    class_group     TEXT NOT NULL,
    PRIMARY KEY (dataset_id, record_id, class)
);

-- Every raw statement kept for display: SNOMED codes (Chapman), SCP statements
-- with likelihood (PTB-XL), the ACDC group.
CREATE TABLE record_codes (
    dataset_id      TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    code            TEXT NOT NULL,
    description     TEXT,
    likelihood      DOUBLE,
    mapped_class    TEXT
);

CREATE SEQUENCE problem_seq;
CREATE TABLE problems (
    problem_id      BIGINT PRIMARY KEY DEFAULT nextval('problem_seq'),
    dataset_id      TEXT,
    file            TEXT NOT NULL,
    problem         TEXT NOT NULL,
    stage           TEXT NOT NULL,         -- read | preprocess | ingest | embed | ...
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Manifest of the preprocessed, memory-mappable arrays: record -> (shard file, row).
CREATE TABLE preprocessed (
    dataset_id      TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    shard           TEXT NOT NULL,
    row_index       INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, record_id)
);

-- Any loadable encoder weights: released files, pre-trained baselines, random init,
-- and every fine-tuned checkpoint (kind = 'checkpoint').
CREATE TABLE weights (
    weights_id      TEXT PRIMARY KEY,
    modality        TEXT NOT NULL,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,         -- released | pretrained | random | checkpoint
    path            TEXT,
    sha256          TEXT,
    parent_weights_id TEXT,                -- lineage
    load_report     JSON,                  -- missing / unexpected keys when it was loaded
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE jobs (
    job_id          TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,         -- finetune | pretrain | embed | project | metrics | demo
    spec            JSON NOT NULL,
    status          TEXT NOT NULL,         -- queued | running | succeeded | failed | cancelled
    pid             INTEGER,
    log_path        TEXT,
    error           TEXT,
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    started_at      TIMESTAMP,
    finished_at     TIMESTAMP
);

CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,
    job_id          TEXT,
    modality        TEXT NOT NULL,
    dataset_id      TEXT NOT NULL,
    recipe          TEXT,
    config          JSON,
    parent_weights_id TEXT,
    fold            INTEGER,
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE checkpoints (
    weights_id      TEXT PRIMARY KEY,      -- also a row in weights (kind = 'checkpoint')
    run_id          TEXT NOT NULL,
    job_id          TEXT,
    epoch           INTEGER NOT NULL,
    step            INTEGER NOT NULL,
    fold            INTEGER,
    path            TEXT NOT NULL,
    val_metrics     JSON,
    config          JSON,
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE embeddings (
    weights_id      TEXT NOT NULL,
    dataset_id      TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    fold            INTEGER,               -- ACDC: the fold whose model produced it
    vector          FLOAT[] NOT NULL,
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (weights_id, dataset_id, record_id)
);

CREATE TABLE projections (
    projection_id   TEXT PRIMARY KEY,
    weights_id      TEXT NOT NULL,
    view            TEXT NOT NULL,         -- chapman_test | cross_domain | acdc
    method          TEXT NOT NULL,
    params          JSON,
    aligned_to      TEXT,                  -- the projection it was aligned to (run evolution)
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE projection_points (
    projection_id   TEXT NOT NULL,
    dataset_id      TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    x               DOUBLE NOT NULL,
    y               DOUBLE NOT NULL,
    PRIMARY KEY (projection_id, dataset_id, record_id)
);

CREATE TABLE metrics (
    weights_id      TEXT NOT NULL,
    scope           TEXT NOT NULL,         -- e.g. chapman_test, ptbxl_display, acdc
    name            TEXT NOT NULL,         -- e.g. silhouette, f1, centroid_single
    label           TEXT NOT NULL DEFAULT '',   -- '' = overall
    fold            INTEGER NOT NULL DEFAULT -1, -- -1 = not per fold
    value           DOUBLE,
    ci_low          DOUBLE,
    ci_high         DOUBLE,
    extra           JSON,
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (weights_id, scope, name, label, fold)
);

CREATE SEQUENCE bookmark_seq;
CREATE TABLE bookmarks (
    bookmark_id     BIGINT PRIMARY KEY DEFAULT nextval('bookmark_seq'),
    title           TEXT NOT NULL,
    note            TEXT,
    page            TEXT,
    view_params     JSON,
    selection       JSON,
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);
"""),
    (2, "background jobs: process group, cancel, resume, checkpoints, launcher", """
ALTER TABLE jobs ADD COLUMN pgid INTEGER;
ALTER TABLE jobs ADD COLUMN host TEXT;
ALTER TABLE jobs ADD COLUMN exit_code INTEGER;
ALTER TABLE jobs ADD COLUMN gpu INTEGER;                 -- CUDA device index given to a local job
ALTER TABLE jobs ADD COLUMN launcher TEXT DEFAULT 'local';  -- local | slurm
ALTER TABLE jobs ADD COLUMN slurm_job_id TEXT;
ALTER TABLE jobs ADD COLUMN claimed_at_s DOUBLE;         -- unix time a scheduler claimed it (status 'starting')
ALTER TABLE jobs ADD COLUMN cancel_requested_at_s DOUBLE;  -- unix time of the cancel request
ALTER TABLE jobs ADD COLUMN resume_of TEXT;              -- the job this one continues
ALTER TABLE jobs ADD COLUMN resume_from TEXT;            -- checkpoint path it starts from
ALTER TABLE jobs ADD COLUMN last_checkpoint TEXT;        -- last complete checkpoint the worker registered
ALTER TABLE jobs ADD COLUMN last_checkpoint_epoch INTEGER;
"""),
    (3, "reports of runs kept in the store", """
CREATE TABLE reports (
    run_id          TEXT PRIMARY KEY,
    out_dir         TEXT NOT NULL,         -- where report.md and the CSVs were written
    markdown        TEXT NOT NULL,         -- report.md itself
    tables          JSON,                  -- table name -> CSV file
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);
"""),
    (4, "scientific fidelity: pooling of embeddings, best checkpoint of a run, the rule of a dataset's subsets", """
ALTER TABLE embeddings ADD COLUMN pooling TEXT;          -- attention | mean_norm | avg ... (method.md §5)
ALTER TABLE runs ADD COLUMN best_weights_id TEXT;        -- the run's best checkpoint (val macro-F1 / mean fold accuracy)
ALTER TABLE runs ADD COLUMN best_metric TEXT;            -- the validation metric it was chosen on
ALTER TABLE runs ADD COLUMN best_value DOUBLE;
ALTER TABLE datasets ADD COLUMN split_rule JSON;         -- how its splits / display subset were drawn
"""),
    # 5, not 4: issue 10 (merged on main in parallel) takes 4.
    (5, "completeness marks: analysed weights and completed runs", """
CREATE TABLE analysis_complete (
    weights_id      TEXT PRIMARY KEY,      -- written last by an analysis pass: embeddings, metrics, every view
    views           JSON,                  -- the views it projected
    completed_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
);
ALTER TABLE runs ADD COLUMN completed_at TIMESTAMP;  -- set once every checkpoint of the run is analysed
-- Weights analysed before the marks existed: complete when every view of their modality is projected
-- (projections are the last step). Others, e.g. a baseline cancelled inside its cross-domain UMAP, get
-- analysed again the next time a job needs them.
INSERT INTO analysis_complete (weights_id, views)
SELECT w.weights_id, to_json(list(DISTINCT p.view ORDER BY p.view)) FROM weights w JOIN projections p USING (weights_id)
GROUP BY w.weights_id, w.modality
HAVING (w.modality = 'ecg' AND count(DISTINCT p.view) FILTER (WHERE p.view IN ('chapman_test', 'cross_domain')) = 2)
    OR (w.modality = 'cmr' AND count(DISTINCT p.view) FILTER (WHERE p.view = 'acdc') = 1);
"""),
    # 7 follows 5: version 6 was reserved for the paired cohort while it was built in parallel; it landed as 8.
    (7, "multimodal encoders: families, stages and ECG-CMR encoder pairs", """
ALTER TABLE weights ADD COLUMN family TEXT;    -- weights that belong together: 'mmcl-released', an MMCL run id
ALTER TABLE weights ADD COLUMN stage TEXT;     -- mdm | simclr | mmcl | mmcl_wo_mdm (the method's stage)
-- An ECG encoder and a CMR encoder trained together (or released together), with the contrastive projectors
-- into their shared space when they exist. Shared-space vectors are stored as embeddings of the pair_id.
CREATE TABLE encoder_pairs (
    pair_id         TEXT PRIMARY KEY,
    ecg_weights_id  TEXT NOT NULL,
    cmr_weights_id  TEXT NOT NULL,
    projectors_path TEXT,                  -- none for the released files (their projectors were not published)
    run_id          TEXT,
    epoch           INTEGER,
    family          TEXT,
    stage           TEXT,
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);
"""),
    (8, "paired ECG + CMR cohorts: each subject's CMR phenotypes and outcomes", """
-- A paired cohort is stored as two datasets (paired_ecg, paired_cmr) whose record id is the subject id;
-- the manifest's phenotypes (LVEDV ... RVEF) and 0/1 outcome columns are kept per subject here.
CREATE TABLE subject_values (
    cohort          TEXT NOT NULL,         -- 'paired'
    subject_id      TEXT NOT NULL,
    name            TEXT NOT NULL,         -- LVEDV, LVEF, ... or an outcome column's name
    value           DOUBLE,                -- NULL where the manifest leaves it empty
    kind            TEXT NOT NULL,         -- 'phenotype' | 'outcome'
    PRIMARY KEY (cohort, subject_id, name)
);
"""),
    (9, "phenotype probes: each model's test-split predictions, for predicted-vs-true scatters", """
-- The scores are metrics rows (scope 'paired_phenotypes'); these are the points behind them. model_id is an
-- ECG weights id (its frozen-embedding ridge probe) or 'demographics' (age, sex, height, weight alone).
CREATE TABLE phenotype_predictions (
    model_id        TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    name            TEXT NOT NULL,         -- LVEDV ... RVEF
    predicted       DOUBLE,
    observed        DOUBLE,
    PRIMARY KEY (model_id, subject_id, name)
);
"""),
    (10, "where the models look: ECG attention maps and CMR Grad-CAM maps per record and weights", """
-- cardio_core.analysis.attention: one row per (weights, record, source), all heads, flattened
-- (heads x leads x time patches, C order). source: block1..blockN (self-attention received, CLS dropped,
-- averaged over queries) or 'pool' (the attention pool's weights).
CREATE TABLE attention_maps (
    weights_id      TEXT NOT NULL,
    dataset_id      TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    source          TEXT NOT NULL,
    n_heads         INTEGER NOT NULL,
    n_leads         INTEGER NOT NULL,
    n_time          INTEGER NOT NULL,
    patch_samples   INTEGER NOT NULL,      -- samples per time patch (100): patch p covers [p * it, (p + 1) * it)
    "values"        FLOAT[] NOT NULL,
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (weights_id, dataset_id, record_id, source)
);
-- cardio_core.analysis.cmr_maps: a CMR classifier's Grad-CAM of one image on its target layer's grid (upsampled
-- only to be drawn). weights_id is the epoch's entry of a CV run (each patient explained by its own fold's model).
CREATE TABLE cmr_maps (
    weights_id      TEXT NOT NULL,
    dataset_id      TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    kind            TEXT NOT NULL,         -- 'gradcam'
    fold            INTEGER,               -- the fold whose model made it
    class           TEXT,                  -- the class it explains (the model's prediction)
    probability     DOUBLE,                -- the model's probability of that class
    layer           TEXT,                  -- 'layer4'
    n_rows          INTEGER NOT NULL,
    n_cols          INTEGER NOT NULL,
    "values"        FLOAT[] NOT NULL,      -- n_rows x n_cols, C order
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (weights_id, dataset_id, record_id, kind)
);
"""),
    (11, "sweeps: groups of fine-tune jobs over seeds x training fractions (label-efficiency curves)", """
-- jobs/sweeps.py: one row per sweep; its members are the jobs with its group_id (a resumed member is a new job
-- of the same group, so a member's current job is the newest of its (seed, train fraction)).
CREATE TABLE job_groups (
    group_id        TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,         -- 'sweep'
    name            TEXT,
    spec            JSON NOT NULL,         -- the base fine-tune spec every member copies
    seeds           JSON NOT NULL,         -- training seeds
    fractions       JSON NOT NULL,         -- training fractions, e.g. [1.0, 0.1, 0.01]
    subset_seed     INTEGER NOT NULL,      -- chose the nested subsets, once for all seeds
    metric          TEXT NOT NULL,         -- what the curve shows (see jobs/sweeps.SWEEP_METRIC)
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);
ALTER TABLE jobs ADD COLUMN group_id TEXT;
"""),
]

LATEST_VERSION = MIGRATIONS[-1][0]
