"""A small but realistic synthetic workspace for building and testing the app.

`fill_store(workspace)` writes what the pipeline will write: three datasets with records,
labels and demographics, a baseline and one fine-tuning run with checkpoints, embeddings,
aligned projections with points, metrics (per-label silhouettes with CIs, centroids,
per-class F1, ACDC folds, probes) and jobs in every status, plus preprocessed arrays so
the record preview has something to draw. Deterministic for a given seed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cardio_core.config import Workspace
from cardio_core.labels import ACDC_GROUPS, CLASS_GROUP, CLASSES, RHYTHM_LABELS, bmi_category
from cardio_core.data.preprocessing.storage import write_shard
from cardio_core.store.store import Store

BASELINE_ID = "ecg-mmcl-pretrained"
RANDOM_ID = "ecg-random"
CMR_BASELINE_ID = "cmr-imagenet"
RUN_ID = "run-ecg-demo"
JOB_DONE_ID = "job-done"
OTHER_CLASSES = [c for c in CLASSES if c not in RHYTHM_LABELS and c != "CAVB"]
RHYTHM_CENTRES = {"AFIB": (-4.0, 3.0), "GSVT": (4.0, 3.0), "PACE": (0.0, -5.0), "SB": (-4.0, -2.0), "SR": (4.0, -2.0)}


def checkpoint_id(epoch: int) -> str:
    return f"{RUN_ID}-e{epoch:03d}"


MARKER_AGE_START = {"chapman": 20.0, "ptbxl": 20.05, "acdc": 20.09}


def marker_ids(dataset_id: str, n: int) -> list[str]:
    """Record ids that are unique markers (no one is part of another, none occurs in any other text)."""
    return {"chapman": [f"MKC{i:04d}Z" for i in range(n)],
            "ptbxl": [f"97{i:06d}3" for i in range(n)],   # PTB-XL ids are numbers
            "acdc": [f"MKA{i:04d}Z" for i in range(n)]}[dataset_id]


def marker_ages(dataset_id: str, n: int) -> np.ndarray:
    """Exact ages that are unique markers at 4 decimals (20.0013, 20.1383, ...; datasets offset)."""
    return np.round(MARKER_AGE_START[dataset_id] + 0.0013 + 0.137 * np.arange(n), 4)


def _records(rng, dataset_id, n, split_probs, start=1, markers=False):
    ids = {"chapman": [f"JS{start + i:05d}" for i in range(n)],
           "ptbxl": [str(start + i) for i in range(n)],
           "acdc": [f"patient{start + i:03d}" for i in range(n)]}[dataset_id]
    age = np.clip(rng.normal(60, 15, n), 18, 95).round()
    if markers:
        ids, age = marker_ids(dataset_id, n), marker_ages(dataset_id, n)
    height = rng.normal(170, 10, n).round(1)
    weight = rng.normal(75, 14, n).round(1)
    bmi = (weight / (height / 100) ** 2).round(1)
    splits, probs = zip(*split_probs.items())
    split = rng.choice(splits, size=n, p=probs)
    fold = np.where(dataset_id == "acdc", np.arange(n) % 5, -1)
    ext = {"chapman": ".hea", "ptbxl": ".hea", "acdc": "_4d.nii.gz"}[dataset_id]
    return pd.DataFrame({
        "dataset_id": dataset_id, "record_id": ids, "patient_id": ids, "split": split,
        "fold": pd.array(np.where(fold >= 0, fold, pd.NA), dtype="Int64"), "age": age,
        "sex": rng.choice(["M", "F"], size=n),
        "height": height if dataset_id == "acdc" else np.nan,
        "weight": weight if dataset_id == "acdc" else np.nan,
        "bmi": bmi if dataset_id == "acdc" else np.nan,
        "bmi_category": [bmi_category(b) for b in bmi] if dataset_id == "acdc" else None,
        "source_path": [f"/data/{dataset_id}/{r}{ext}" for r in ids], "excluded": False,
    })


def _ecg_labels(rng, records):
    rows = []
    for rid in records["record_id"]:
        rhythm = rng.choice(RHYTHM_LABELS, p=[0.2, 0.15, 0.05, 0.35, 0.25])
        classes = [rhythm]
        if rng.random() < 0.4:
            classes += list(rng.choice(OTHER_CLASSES, size=rng.integers(1, 3), replace=False))
        rows += [(rid, c) for c in dict.fromkeys(classes)]
    return pd.DataFrame(rows, columns=["record_id", "class"])


def _points(rng, labels, record_ids, spread):
    first = labels.groupby("record_id")["class"].first()
    centre = np.array([RHYTHM_CENTRES.get(first.get(r), (0.0, 0.0)) for r in record_ids])
    return centre + rng.normal(0, spread, size=(len(record_ids), 2))


def fill_store(workspace: Workspace | str | Path, *, n_chapman: int = 300, n_ptbxl: int = 80, n_acdc: int = 50,
               epochs: tuple[int, ...] = (5, 10), seed: int = 0, with_jobs: bool = True,
               with_arrays: bool = True, markers: bool = False) -> Store:
    """Fill the workspace's store with a synthetic but schema-exact workspace; returns the Store.

    markers=True: every record id and every exact age is a unique marker (marker_ids, marker_ages), and the
    jobs' logs and errors name records and their files, for the review-mode leak test."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(Path(workspace))
    ws = ws.ensure()
    store = Store(ws.db_path)
    rng = np.random.default_rng(seed)

    chap = _records(rng, "chapman", n_chapman, {"train": 0.7, "val": 0.15, "test": 0.15}, markers=markers)
    chap.loc[chap.index[: max(1, n_chapman // 4)], "split"] = "test"  # enough test records to look at
    ptb = _records(rng, "ptbxl", n_ptbxl, {"display": 0.5, "pool": 0.5}, markers=markers)
    acdc = _records(rng, "acdc", n_acdc, {"cv": 1.0}, markers=markers)
    chap_labels, ptb_labels = _ecg_labels(rng, chap), _ecg_labels(rng, ptb)
    ptb_labels = ptb_labels[ptb_labels["class"].isin(RHYTHM_LABELS)]  # PTB-XL maps rhythm only
    acdc_labels = pd.DataFrame({"record_id": acdc["record_id"], "class": [ACDC_GROUPS[i % 5] for i in range(n_acdc)]})
    all_labels = []
    for dataset_id, recs, labs in (("chapman", chap, chap_labels), ("ptbxl", ptb, ptb_labels), ("acdc", acdc, acdc_labels)):
        recs["n_labels"] = recs["record_id"].map(labs.groupby("record_id").size()).fillna(0).astype(int)
        labs = labs.assign(dataset_id=dataset_id,
                           class_group=[CLASS_GROUP.get(c, "ACDC") for c in labs["class"]])
        all_labels.append(labs[["dataset_id", "record_id", "class", "class_group"]])
    records = pd.concat([chap, ptb, acdc], ignore_index=True)
    labels = pd.concat(all_labels, ignore_index=True)

    datasets = pd.DataFrame({
        "dataset_id": ["chapman", "ptbxl", "acdc"], "modality": ["ecg", "ecg", "cmr"],
        "source_dir": [str(ws.demo_dir / d) for d in ("chapman", "ptbxl", "acdc")], "is_demo": True,
        "n_records": [n_chapman, n_ptbxl, n_acdc], "n_files": [n_chapman + 2, n_ptbxl, n_acdc],
        "preprocessed_dir": [str(ws.preprocessed_dir / d) for d in ("chapman", "ptbxl", "acdc")],
        "split_seed": 42, "ingested_at": pd.Timestamp("2026-01-01"),
    })
    weights = pd.DataFrame({
        "weights_id": [BASELINE_ID, RANDOM_ID, CMR_BASELINE_ID] + [checkpoint_id(e) for e in epochs],
        "modality": ["ecg", "ecg", "cmr"] + ["ecg"] * len(epochs),
        "name": ["MMCL pre-trained ECG encoder", "random init", "ImageNet ResNet-50"]
                + [f"{RUN_ID} epoch {e}" for e in epochs],
        "kind": ["pretrained", "random", "pretrained"] + ["checkpoint"] * len(epochs),
        "path": [str(ws.weights_dir / "signal_encoder_mmcl.pth"), None, None]
                + [str(ws.runs_dir / JOB_DONE_ID / f"epoch{e:03d}.ckpt") for e in epochs],
        "parent_weights_id": [None, None, None] + [BASELINE_ID] * len(epochs),
    })
    with store.write() as con:
        for table, df in (("datasets", datasets), ("records", records), ("labels", labels), ("weights", weights)):
            con.register("_df", df)
            cols = ", ".join(f'"{c}"' for c in df.columns)
            con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _df")
            con.unregister("_df")
        con.execute("INSERT INTO runs (run_id, job_id, modality, dataset_id, recipe, config, parent_weights_id) "
                    "VALUES (?, ?, 'ecg', 'chapman', 'demo_ecg', ?, ?)",
                    [RUN_ID, JOB_DONE_ID, json.dumps({"epochs": max(epochs)}), BASELINE_ID])
        for e in epochs:
            con.execute("INSERT INTO checkpoints (weights_id, run_id, job_id, epoch, step, path, val_metrics) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [checkpoint_id(e), RUN_ID, JOB_DONE_ID, e, e * 100,
                         str(ws.runs_dir / JOB_DONE_ID / f"epoch{e:03d}.ckpt"), json.dumps({"val_macro_f1": 0.3 + e / 50})])
        con.execute("INSERT INTO problems (dataset_id, file, problem, stage) VALUES "
                    "('chapman', '/data/chapman/JS99999.hea', 'header declares 11 leads, expected 12', 'read')")

    write_projections(store, chap, ptb, acdc, chap_labels, ptb_labels, epochs=epochs, seed=seed)
    _write_metrics(store, rng, epochs)
    write_phenotype_results(store, [BASELINE_ID, *(checkpoint_id(e) for e in epochs)], seed=seed)
    write_label_baselines(store)
    if with_jobs:
        _write_jobs(store, ws, records if markers else None)
    if with_arrays:
        _write_arrays(store, ws, rng, records, epochs)
    return store


def write_projections(store, chap, ptb, acdc, chap_labels, ptb_labels, *, epochs=(5, 10), seed=0):
    """Projections for baseline and every checkpoint; spreads shrink as fine-tuning 'separates' labels."""
    rng = np.random.default_rng(seed + 1)
    test = chap[chap["split"] == "test"]
    display = ptb[ptb["split"] == "display"] if (ptb["split"] == "display").any() else ptb
    projections, points = [], []
    ids = [(BASELINE_ID, 4.0)] + [(checkpoint_id(e), 3.0 / (1 + i)) for i, e in enumerate(epochs)]
    for weights_id, spread in ids:
        for view in ("chapman_test", "cross_domain"):
            pid = f"{weights_id}:{view}"
            aligned = f"{BASELINE_ID}:{view}" if weights_id != BASELINE_ID else None
            projections.append((pid, weights_id, view, "umap", json.dumps({"n_neighbors": 30, "min_dist": 0.25}), aligned))
            xy = _points(rng, chap_labels, test["record_id"].tolist(), spread)
            points.append(pd.DataFrame({"projection_id": pid, "dataset_id": "chapman",
                                        "record_id": test["record_id"].values, "x": xy[:, 0], "y": xy[:, 1]}))
            if view == "cross_domain":
                xy = _points(rng, ptb_labels, display["record_id"].tolist(), spread * 1.3) + 0.5
                points.append(pd.DataFrame({"projection_id": pid, "dataset_id": "ptbxl",
                                            "record_id": display["record_id"].values, "x": xy[:, 0], "y": xy[:, 1]}))
    # the supervised view of the last checkpoint, with the facts the page states (fitted on train, drawn on test)
    wid = checkpoint_id(epochs[-1])
    pid = f"{wid}:chapman_test_lda"
    projections.append((pid, wid, "chapman_test_lda", "lda", json.dumps({
        "target": "rhythm label (train records with exactly one)", "fitted_on": "chapman train",
        "drawn_on": "chapman test", "input_dims": 384, "classes": ["AFIB", "GSVT", "SB", "SR"], "n_fit": 120,
        "explained_variance_ratio": [0.6, 0.3]}), None))
    xy = _points(rng, chap_labels, test["record_id"].tolist(), 1.0)
    points.append(pd.DataFrame({"projection_id": pid, "dataset_id": "chapman", "record_id": test["record_id"].values,
                                "x": xy[:, 0], "y": xy[:, 1]}))
    pid = f"{CMR_BASELINE_ID}:acdc"
    projections.append((pid, CMR_BASELINE_ID, "acdc", "umap", json.dumps({"n_neighbors": 15, "min_dist": 0.1}), None))
    xy = rng.normal(0, 2, size=(len(acdc), 2))
    points.append(pd.DataFrame({"projection_id": pid, "dataset_id": "acdc", "record_id": acdc["record_id"].values,
                                "x": xy[:, 0], "y": xy[:, 1]}))
    store.insert_df("projections", pd.DataFrame(projections, columns=["projection_id", "weights_id", "view", "method",
                                                                      "params", "aligned_to"]))
    store.insert_df("projection_points", pd.concat(points, ignore_index=True))


def _write_metrics(store, rng, epochs):
    rows = []

    def add(wid, scope, name, label="", value=0.0, fold=-1, ci=None, n=None):
        lo, hi = (value - ci, value + ci) if ci is not None else (None, None)
        rows.append((wid, scope, name, label, fold, float(value), lo, hi, json.dumps({"n": n}) if n else None))

    thesis_base = {"AFIB": 0.028, "GSVT": 0.030, "PACE": 0.086, "SB": 0.068, "SR": 0.010}
    thesis_ft = {"AFIB": 0.179, "GSVT": 0.142, "PACE": 0.096, "SB": 0.276, "SR": 0.195}
    ids = [BASELINE_ID] + [checkpoint_id(e) for e in epochs]
    for k, wid in enumerate(ids):
        t = k / max(1, len(ids) - 1)
        per_label = {lab: thesis_base[lab] + t * (thesis_ft[lab] - thesis_base[lab]) for lab in RHYTHM_LABELS}
        # record counts as the pipeline stores them; PACE rests on fewer than 10 records (flagged by the pages)
        n_label = {"AFIB": 40, "GSVT": 30, "PACE": 6, "SB": 40, "SR": 50}
        add(wid, "chapman_test", "silhouette", "", 0.039 + t * (0.210 - 0.039), ci=0.01, n=sum(n_label.values()))
        add(wid, "ptbxl_display", "silhouette", "", -0.004 + t * 0.078, ci=0.02, n=40)
        for lab, v in per_label.items():
            add(wid, "chapman_test", "silhouette", lab, v, ci=0.015, n=n_label[lab])
            add(wid, "ptbxl_display", "silhouette", lab, v / 2, ci=0.03, n=8)
            single = 10 - 4 * t + rng.random()
            multi = single * (1.2 + 0.1 * rng.random())
            add(wid, "chapman_test", "centroid_single", lab, single)
            add(wid, "chapman_test", "centroid_multi", lab, multi)
            add(wid, "chapman_test", "centroid_ratio", lab, multi / single)
            add(wid, "chapman_test", "centroid_pct_diff", lab, 100 * (multi - single) / single)
            add(wid, "cross_domain", "ptbxl_to_chapman_centroid", lab, 12 - 3 * t + rng.random())
        add(wid, "cross_domain", "share_sr_closer_to_sb", "", 0.4 - 0.2 * t)
        add(wid, "chapman_test", "knn_purity", "", 0.5 + 0.3 * t)
        add(wid, "chapman_test", "probe_age_r2", "", 0.30 - 0.1 * t)
        add(wid, "chapman_test", "probe_sex_auroc", "", 0.80 - 0.1 * t)
        add(wid, "cross_domain", "domain_auroc", "", 0.95 - 0.1 * t)
        if wid != BASELINE_ID:
            f1s = []
            for i, cls in enumerate(CLASSES):
                prevalence = 0.3 * np.exp(-i / 4)
                f1 = float(np.clip(0.3 + 2 * prevalence + rng.normal(0, 0.05), 0, 1))
                f1s.append(f1)
                add(wid, "chapman_test", "f1", cls, f1)
                add(wid, "chapman_test", "precision", cls, min(1.0, f1 + 0.05))
                add(wid, "chapman_test", "recall", cls, max(0.0, f1 - 0.05))
                add(wid, "chapman_test", "support", cls, float(int(1000 * prevalence) + 1))
                add(wid, "chapman_test", "prevalence", cls, prevalence)
            add(wid, "chapman_test", "f1", "", float(np.mean(f1s)))
            add(wid, "chapman_test", "precision", "", float(np.mean(f1s)) + 0.05)
            add(wid, "chapman_test", "recall", "", float(np.mean(f1s)) - 0.05)
            add(wid, "chapman_test", "prevalence_f1_r", "", 0.8)
            add(wid, "chapman_test", "linear_probe_macro_f1", "", 0.4 + 0.1 * t)
    accs = [0.60, 0.65, 0.58, 0.70, 0.62]
    for fold, acc in enumerate(accs):
        add(CMR_BASELINE_ID, "acdc", "accuracy", "", acc, fold=fold)
        add(CMR_BASELINE_ID, "acdc", "silhouette", "", 0.05 + 0.02 * fold, fold=fold)
        for g in ACDC_GROUPS:
            add(CMR_BASELINE_ID, "acdc", "intra_inter_ratio", g, 0.8 + 0.05 * fold + 0.01 * len(g), fold=fold)
    add(CMR_BASELINE_ID, "acdc", "accuracy", "", float(np.mean(accs)), fold=-1)
    add(CMR_BASELINE_ID, "acdc", "probe_bmi_r2", "", 0.12)
    frame = pd.DataFrame(rows, columns=["weights_id", "scope", "name", "label", "fold", "value", "ci_low", "ci_high",
                                        "extra"])
    with store.write() as con:
        con.register("_m", frame)
        con.execute("INSERT INTO metrics (weights_id, scope, name, label, fold, value, ci_low, ci_high, extra) "
                    "SELECT weights_id, scope, name, label, fold, value, ci_low, ci_high, extra::JSON FROM _m")
        con.unregister("_m")


def _write_jobs(store, ws, named_records=None):
    now = pd.Timestamp.now()
    jobs = [
        (JOB_DONE_ID, "succeeded", now - pd.Timedelta("2h"), now - pd.Timedelta("1h"), None),
        ("job-running", "running", now - pd.Timedelta("10min"), None, None),
        ("job-queued", "queued", None, None, None),
        ("job-failed", "failed", now - pd.Timedelta("3h"), now - pd.Timedelta("170min"),
         "CUDA requested but no GPU is available"),
        ("job-cancelled", "cancelled", now - pd.Timedelta("5h"), now - pd.Timedelta("290min"), None),
    ]
    has_launcher = bool(store.scalar("SELECT count(*) FROM information_schema.columns "
                                     "WHERE table_name = 'jobs' AND column_name = 'launcher'"))
    with store.write() as con:
        for job_id, status, started, finished, error in jobs:
            run_dir = ws.runs_dir / job_id
            run_dir.mkdir(parents=True, exist_ok=True)
            log = run_dir / "log.txt"
            text = "".join(f"epoch {e}: train_loss={1 / (e + 1):.3f}\n" for e in range(6))
            if named_records is not None:  # a log and an error that name records and their files
                for r in named_records.head(3).itertuples():
                    text += f"problem reading {r.source_path}: record {r.record_id} (patient {r.patient_id})\n"
                first = named_records.iloc[0]
                error = error and f"{error}; last record {first['record_id']} at {first['source_path']}"
            log.write_text(text)
            spec = {"kind": "finetune", "modality": "ecg", "dataset": "chapman", "recipe": "demo_ecg",
                    "weights": BASELINE_ID, "epochs": 10, "checkpoint_every": 5, "device": "cpu", "seed": 0,
                    "overrides": {}, "params": {}, "folds": None, "name": None}
            con.execute("INSERT INTO jobs (job_id, kind, spec, status, log_path, error, started_at, finished_at) "
                        "VALUES (?, 'finetune', ?, ?, ?, ?, ?, ?)",
                        [job_id, json.dumps(spec), status, str(log), error, started, finished])
            if status in ("running", "queued") and has_launcher:
                # On a cluster, so this machine's scheduler neither reaps nor starts them.
                con.execute("UPDATE jobs SET launcher = 'slurm', host = 'gpu-node-7' WHERE job_id = ?", [job_id])
            if status == "running":
                (run_dir / "progress.json").write_text(json.dumps(
                    {"epoch": 4, "epochs": 10, "step": 400, "total_steps": 1000, "fraction": 0.4, "eta_s": 540,
                     "stage": "train" if named_records is None else
                     f"embedding {named_records.iloc[1]['record_id']}", "metrics": {"train_loss": 0.21, "val_macro_f1": 0.41}}))


def _write_arrays(store, ws, rng, records, epochs):
    """Preprocessed arrays for a few records of each dataset (enough for the preview)."""
    t = np.arange(5000) / 500.0
    for dataset_id, shape in (("chapman", (12, 5000)), ("ptbxl", (12, 5000)), ("acdc", (3, 210, 210))):
        ids = records.loc[records["dataset_id"] == dataset_id, "record_id"].tolist()
        if dataset_id == "chapman":
            ids = records.loc[(records["dataset_id"] == "chapman") & (records["split"] == "test"), "record_id"].tolist()
        ids = ids[:8]
        if dataset_id == "acdc":
            yy, xx = np.mgrid[:210, :210]
            ring = np.exp(-((np.hypot(yy - 105, xx - 105) - 40) ** 2) / 60)
            arr = np.stack([np.stack([ring * s for s in (1.0, 0.8, 0.6)]) for _ in ids]).astype(np.float32)
        else:
            beat = sum(np.exp(-((t % 0.8) - 0.3) ** 2 / 2e-4) * 1.0 for _ in range(1))
            arr = np.stack([np.stack([beat * (0.5 + 0.1 * lead) + rng.normal(0, 0.02, 5000) for lead in range(12)])
                            for _ in ids]).astype(np.float32)
        directory = ws.preprocessed_dir / dataset_id
        write_shard(directory / "shard_00000.npy", arr)
        store.insert_df("preprocessed", pd.DataFrame({"dataset_id": dataset_id, "record_id": ids,
                                                      "shard": "shard_00000.npy", "row_index": np.arange(len(ids))}))
        if dataset_id == "chapman":   # attention maps of the first half, so the view has cached and uncached ones
            write_attention_maps(store, [BASELINE_ID, checkpoint_id(max(epochs))], dataset_id, ids[:4],
                                 pool=[False, True])


def write_attention_maps(store: Store, weights_ids: list[str], dataset_id: str, record_ids: list[str], *,
                         pool: list[bool], n_heads: int = 6, n_leads: int = 12, n_time: int = 25,
                         blocks: int = 3, seed: int = 0) -> None:
    """Synthetic attention maps in the stored layout (random, each head's map summing to 1 over the tokens)."""
    rng = np.random.default_rng(seed)
    rows = []
    for wid, has_pool in zip(weights_ids, pool):
        sources = [f"block{b + 1}" for b in range(blocks)] + (["pool"] if has_pool else [])
        for record_id in record_ids:
            for source in sources:
                m = rng.gamma(0.5, size=(n_heads, n_leads * n_time))
                m /= m.sum(axis=1, keepdims=True)
                rows.append((wid, dataset_id, str(record_id), source, n_heads, n_leads, n_time, 100,
                             m.astype(np.float32).ravel().tolist()))
    from cardio_core.analysis.attention import ATTENTION_COLUMNS, store_attention
    store_attention(store, pd.DataFrame(rows, columns=ATTENTION_COLUMNS))


def fill_many_points(store: Store, weights_ids: list[str], n_points: int, *, seed: int = 0) -> None:
    """Add `n_points` Chapman test records with points in each weights' chapman_test projection (benchmarks)."""
    rng = np.random.default_rng(seed)
    ids = [f"JB{i:06d}" for i in range(n_points)]
    recs = pd.DataFrame({"dataset_id": "chapman", "record_id": ids, "split": "test",
                         "age": rng.integers(18, 95, n_points).astype(float), "sex": rng.choice(["M", "F"], n_points),
                         "source_path": [f"/data/chapman/{r}.hea" for r in ids], "n_labels": 1, "excluded": False})
    rhythm = rng.choice(RHYTHM_LABELS, n_points)
    labs = pd.DataFrame({"dataset_id": "chapman", "record_id": ids, "class": rhythm, "class_group": "Rhythm"})
    store.insert_df("records", recs)
    store.insert_df("labels", labs)
    centre = np.array([RHYTHM_CENTRES[r] for r in rhythm])
    for k, wid in enumerate(weights_ids):
        xy = centre + rng.normal(0, 3.0 / (1 + k), (n_points, 2))
        store.insert_df("projection_points", pd.DataFrame({"projection_id": f"{wid}:chapman_test", "dataset_id": "chapman",
                                                           "record_id": ids, "x": xy[:, 0], "y": xy[:, 1]}))


def write_label_baselines(store: Store) -> None:
    """The demographics-only baselines of Chapman's and ACDC's labels, through the analysis's own MetricRows."""
    from cardio_core.analysis.metric_rows import MetricRows
    from cardio_core.vocabulary import DEMOGRAPHICS_MODEL
    rows = MetricRows(DEMOGRAPHICS_MODEL)
    rows.add("chapman_test", "linear_probe_macro_f1", 0.21, macro_auroc=0.64, features=["age", "sex"])
    accs = [0.30, 0.35, 0.25, 0.40, 0.30]
    for fold, acc in enumerate(accs):
        rows.add("acdc", "accuracy", acc, fold=fold)
    rows.add("acdc", "accuracy", float(np.mean(accs)), se=float(np.std(accs, ddof=1) / np.sqrt(len(accs))),
             features=["height", "weight"])
    rows.save(store, ["chapman_test", "acdc"], ["linear_probe_macro_f1", "accuracy"])


def write_phenotype_results(store: Store, weights_ids: list[str], *, n_test: int = 40, seed: int = 0) -> None:
    """Phenotype probe results as the analysis stores them (through the same save function): each model's test
    predictions are the observed values plus noise that shrinks along the list, so later checkpoints score a
    higher r; the demographics-only baseline is the noisiest."""
    from cardio_core.analysis.phenotypes import save_phenotype_results
    from cardio_core.metrics.phenotypes import PHENOTYPES, phenotype_scores
    from cardio_core.vocabulary import DEMOGRAPHICS_MODEL
    rng = np.random.default_rng([seed, 13])
    subjects = [f"{1000001 + i}" for i in range(n_test)]
    observed = rng.normal(100.0, 20.0, size=(n_test, len(PHENOTYPES)))
    for k, model in enumerate([DEMOGRAPHICS_MODEL, *weights_ids]):
        noise = 40.0 / (1 + k)
        predicted = 0.7 * observed + 30.0 + rng.normal(0.0, noise, size=observed.shape)
        scores = phenotype_scores(observed, predicted, PHENOTYPES, n_boot=50, seed=seed)
        save_phenotype_results(store, model, subjects, observed, predicted, scores, model="synthetic",
                               fitted_on="train", chosen_on="val", scored_on="test")


SWEEP_ID = "sweep-demo"


def write_sweep(store: Store, ws: Workspace, *, seeds=(0, 1, 2), fractions=(1.0, 0.1, 0.01), seed: int = 0) -> str:
    """A sweep (jobs/sweeps.py) as the store holds one: its group row and one fine-tune job per (seed, fraction),
    each finished member with its run (config n_train, best checkpoint) and that checkpoint's test macro F1; the
    last member still running (on a cluster, so no local scheduler touches it), one member failed. Scores fall
    with the fraction, as a real sweep's do."""
    rng = np.random.default_rng(seed)
    base = {"kind": "finetune", "modality": "ecg", "dataset": "chapman", "recipe": "demo_ecg", "weights": BASELINE_ID,
            "epochs": 6, "checkpoint_every": 3, "device": "cpu", "seed": 0, "overrides": {}, "params": {},
            "folds": None, "name": "label efficiency", "devices": 1}
    now = pd.Timestamp.now()
    members = [(s, f) for s in seeds for f in fractions]
    with store.write() as con:
        con.execute("INSERT INTO job_groups (group_id, kind, name, spec, seeds, fractions, subset_seed, metric) "
                    "VALUES (?, 'sweep', 'label efficiency', ?, ?, ?, 0, 'f1')",
                    [SWEEP_ID, json.dumps(base), json.dumps(list(seeds)), json.dumps(list(fractions))])
        for i, (s, f) in enumerate(members):
            job_id = f"{SWEEP_ID}-job{i}"
            status = "running" if i == len(members) - 1 else ("failed" if i == len(members) - 2 else "succeeded")
            spec = {**base, "seed": s, "params": {"train_fraction": f, "subset_seed": 0},
                    "name": f"label efficiency · seed {s} · {100 * f:g}%"}
            (ws.runs_dir / job_id).mkdir(parents=True, exist_ok=True)
            con.execute("INSERT INTO jobs (job_id, kind, spec, status, log_path, error, created_at, started_at, "
                        "group_id, launcher, host) VALUES (?, 'finetune', ?, ?, ?, ?, ?, ?, ?, 'slurm', 'gpu-node-7')",
                        [job_id, json.dumps(spec), status, str(ws.runs_dir / job_id / "job.log"),
                         "process died" if status == "failed" else None, now - pd.Timedelta(minutes=60 - i),
                         now - pd.Timedelta(minutes=59 - i), SWEEP_ID])
            if status == "running":
                (ws.runs_dir / job_id / "progress.json").write_text(json.dumps(
                    {"epoch": 3, "total_epochs": 6, "fraction": 0.5, "stage": "train"}))
            if status != "succeeded":
                continue
            wid = f"{job_id}-e0006"
            con.execute("INSERT INTO runs (run_id, job_id, modality, dataset_id, recipe, config, parent_weights_id, "
                        "best_weights_id, best_metric) VALUES (?, ?, 'ecg', 'chapman', 'demo_ecg', ?, ?, ?, "
                        "'val/macro_f1')", [job_id, job_id, json.dumps({"n_train": int(round(390 * f)) or 1}),
                                            BASELINE_ID, wid])
            value = float(np.clip(0.55 + 0.08 * np.log10(f) + rng.normal(0, 0.02), 0, 1))
            con.execute("INSERT INTO metrics (weights_id, scope, name, label, fold, value) "
                        "VALUES (?, 'chapman_test', 'f1', '', -1, ?)", [wid, value])
    return SWEEP_ID
