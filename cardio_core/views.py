"""Read-side queries and small pure transforms behind the app's pages.

Every query function takes a Store and plain, hashable arguments and returns a DataFrame
(or a dict of them), so the app can cache it with st.cache_data keyed by those arguments.
No function here trains, fits or projects anything: they only read what the pipeline wrote.
All SQL is parameterised.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .labels import CLASSES, RHYTHM_LABELS

VIEWS = ("chapman_test", "cross_domain", "acdc")
COLOUR_BY = ("rhythm", "class", "age", "sex", "bmi", "bmi_category", "split", "dataset")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
AGE_BANDS = (0, 30, 40, 50, 60, 70, 80, 200)

# method.md §6: what the thesis reported, shown beside this workspace's numbers (never tested against).
THESIS = {
    "silhouette_chapman": (0.039, 0.210),
    "silhouette_ptbxl": (-0.004, 0.074),
    "silhouette_chapman_per_label": {"AFIB": (0.028, 0.179), "GSVT": (0.030, 0.142), "PACE": (0.086, 0.096),
                                     "SB": (0.068, 0.276), "SR": (0.010, 0.195)},
    "f1_chapman": {"AFIB": 0.91, "GSVT": 0.88, "PACE": 0.72, "SB": 0.94, "SR": 0.84},
    "macro_f1_chapman": 0.50,
    "acdc_silhouette": ((-0.117, 0.110), (0.055, 0.106)),
    "acdc_accuracy": (0.63, 0.046),
}


def _check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")


# -- workspace ------------------------------------------------------------------------
def workspace_summary(store) -> dict[str, pd.DataFrame]:
    """Datasets with record counts, weights by kind, runs with checkpoints, jobs by status, problems."""
    with store.read() as con:
        datasets = con.execute(
            "SELECT d.dataset_id, d.modality, d.is_demo, d.n_files, d.n_records, "
            "count(r.record_id) FILTER (WHERE NOT r.excluded) AS usable, d.ingested_at "
            "FROM datasets d LEFT JOIN records r USING (dataset_id) "
            "GROUP BY ALL ORDER BY d.dataset_id").df()
        weights = con.execute("SELECT kind, modality, count(*) AS n FROM weights GROUP BY ALL ORDER BY kind").df()
        runs = con.execute(
            "SELECT r.run_id, r.modality, r.dataset_id, r.recipe, count(c.weights_id) AS checkpoints, "
            "max(c.epoch) AS last_epoch, r.created_at FROM runs r LEFT JOIN checkpoints c USING (run_id) "
            "GROUP BY ALL ORDER BY r.created_at DESC").df()
        jobs = con.execute("SELECT status, count(*) AS n, bool_or(kind = 'demo') AS has_demo FROM jobs "
                           "GROUP BY status").df()
        problems = con.execute("SELECT dataset_id, stage, count(*) AS n FROM problems GROUP BY ALL ORDER BY n DESC").df()
        n_projections = con.execute("SELECT count(*) FROM projections").fetchone()[0]
        n_metrics = con.execute("SELECT count(DISTINCT weights_id) FROM metrics").fetchone()[0]
    counts = pd.DataFrame({"what": ["projections", "weights with metrics"], "n": [n_projections, n_metrics]})
    return {"datasets": datasets, "weights": weights, "runs": runs, "jobs": jobs, "problems": problems,
            "counts": counts}


def demo_job_active(summary: dict[str, pd.DataFrame]) -> bool:
    """Whether a demo job is queued or running (it generates and ingests the demo data first)."""
    jobs = summary["jobs"]
    return bool(len(jobs) and jobs.loc[jobs["status"].isin(["queued", "starting", "running"]), "has_demo"].any())


def next_steps(summary: dict[str, pd.DataFrame], weights_files: Iterable[str] = ()) -> list[str]:
    """Plain-language next steps for a newcomer, from a workspace_summary()."""
    steps = []
    jobs = dict(zip(summary["jobs"]["status"], summary["jobs"]["n"])) if len(summary["jobs"]) else {}
    if summary["datasets"].empty and demo_job_active(summary):
        steps.append("The demo job is generating and ingesting the demo data (see In progress); "
                     "the pages fill as it goes.")
    elif summary["datasets"].empty:
        steps.append("No dataset yet: run `cardio setup` (demo data) or `cardio ingest chapman PATH`.")
    elif summary["datasets"]["is_demo"].any():
        steps.append("Showing demo data. Set CARDIO_CHAPMAN_DIR / CARDIO_PTBXL_DIR / CARDIO_ACDC_DIR to use real data.")
    if not any(str(f).endswith((".pth", ".pt", ".ckpt", ".safetensors")) for f in weights_files):
        steps.append("No released encoder yet: drop MMCL weights (e.g. signal_encoder_mmcl.pth) into weights/.")
    if jobs.get("running") or jobs.get("queued"):
        steps.append(f"{jobs.get('running', 0)} job(s) running, {jobs.get('queued', 0)} queued: see Jobs.")
    if summary["runs"].empty:
        steps.append("No fine-tuning run yet: launch one from Jobs (preset demo_ecg runs in minutes on CPU).")
    elif summary["counts"].loc[0, "n"]:
        steps.append("Projections are ready: open Explore, then Compare baseline vs fine-tuned.")
    if jobs.get("failed"):
        steps.append(f"{jobs['failed']} job(s) failed: open Jobs for the log tail.")
    return steps


def list_weights(store, modality: str | None = None) -> pd.DataFrame:
    """All weights (baselines first, then checkpoints by run and epoch) with a display label."""
    sql = ("SELECT w.weights_id, w.modality, w.name, w.kind, w.parent_weights_id, c.run_id, c.epoch, c.fold, "
           "EXISTS (SELECT 1 FROM projections p WHERE p.weights_id = w.weights_id) AS has_projection "
           "FROM weights w LEFT JOIN checkpoints c USING (weights_id) ")
    params: list[Any] = []
    if modality is not None:
        sql += "WHERE w.modality = ? "
        params.append(modality)
    sql += ("ORDER BY CASE w.kind WHEN 'pretrained' THEN 0 WHEN 'released' THEN 1 WHEN 'random' THEN 2 ELSE 3 END, "
            "c.run_id, c.epoch, w.weights_id")
    df = store.query_df(sql, params)
    df["display"] = [f"{r.run_id} · epoch {int(r.epoch)}" if r.kind == "checkpoint" and pd.notna(r.epoch)
                     else f"{r.name} ({r.kind})" for r in df.itertuples()]
    return df


def baseline_for(weights: pd.DataFrame, weights_id: str) -> str | None:
    """The baseline a checkpoint was fine-tuned from (its lineage parent), else the first pretrained
    or released weights of the same modality; never weights of the other modality."""
    row = weights[weights["weights_id"] == weights_id]
    if not row.empty and "parent_weights_id" in weights:
        parent = row.iloc[0]["parent_weights_id"]
        if isinstance(parent, str) and parent in set(weights["weights_id"]):
            return parent
    pre = weights[weights["kind"].isin(["pretrained", "released"])]
    if not row.empty:
        pre = pre[pre["modality"] == row.iloc[0]["modality"]]
    return str(pre.iloc[0]["weights_id"]) if not pre.empty else None


def available_views(store, weights_id: str) -> list[str]:
    rows = store.query("SELECT DISTINCT view FROM projections WHERE weights_id = ?", [weights_id])
    return [v for v in VIEWS if v in {r[0] for r in rows}]


def weights_with_view(store, view: str) -> set[str]:
    """Every weights id that has a projection for `view` (one query, for pickers over many checkpoints)."""
    return {r[0] for r in store.query("SELECT DISTINCT weights_id FROM projections WHERE view = ?", [view])}


def run_checkpoints(store, run_id: str) -> pd.DataFrame:
    return store.query_df("SELECT weights_id, epoch, step, fold, val_metrics FROM checkpoints WHERE run_id = ? "
                          "ORDER BY epoch", [run_id])


# -- points ---------------------------------------------------------------------------
def projection_points(store, weights_id: str, view: str) -> pd.DataFrame:
    """Every point of the newest projection of `weights_id` for `view`, joined with record attributes.

    Columns: dataset_id, record_id, x, y, age, sex, bmi, bmi_category, split, fold, labels (comma-separated,
    CLASSES order), rhythm (the record's rhythm label or 'other'), multi (True when it also has other classes).
    """
    _check_choice("view", view, VIEWS)
    df = store.query_df(
        "WITH proj AS (SELECT projection_id FROM projections WHERE weights_id = ? AND view = ? "
        "              ORDER BY created_at DESC, projection_id LIMIT 1), "
        "lab AS (SELECT dataset_id, record_id, list(class ORDER BY class) AS classes FROM labels GROUP BY ALL) "
        "SELECT p.dataset_id, p.record_id, p.x, p.y, r.age, r.sex, r.bmi, r.bmi_category, r.split, r.fold, "
        "       coalesce(lab.classes, []) AS classes "
        "FROM projection_points p JOIN proj USING (projection_id) "
        "LEFT JOIN records r ON r.dataset_id = p.dataset_id AND r.record_id = p.record_id "
        "LEFT JOIN lab ON lab.dataset_id = p.dataset_id AND lab.record_id = p.record_id "
        "ORDER BY p.dataset_id, p.record_id", [weights_id, view])
    return _with_label_columns(df)


def _with_label_columns(df: pd.DataFrame) -> pd.DataFrame:
    order = {c: i for i, c in enumerate(CLASSES)}
    classes = [sorted(list(c), key=lambda x: order.get(x, 99)) for c in df.pop("classes")]
    df["labels"] = [",".join(c) for c in classes]
    rhythm_set = set(RHYTHM_LABELS)
    rhythms = [[c for c in cs if c in rhythm_set] for cs in classes]
    df["rhythm"] = [r[0] if len(r) == 1 else ("other" if not r else "mixed") for r in rhythms]
    # ACDC groups play the role of rhythm labels for the CMR view.
    is_acdc = df["dataset_id"].eq("acdc").to_numpy()
    if is_acdc.any():
        df.loc[is_acdc, "rhythm"] = [cs[0] if cs else "other" for cs, a in zip(classes, is_acdc) if a]
    df["multi"] = [len(cs) > 1 for cs in classes]
    df["fold"] = df["fold"].astype("Int64")
    return df


def filter_points(points: pd.DataFrame, *, labels: Iterable[str] = (), age_range: tuple[float, float] | None = None,
                  sexes: Iterable[str] = (), datasets: Iterable[str] = (), fold: int | None = None) -> pd.DataFrame:
    """Rows matching every given filter (empty filter = no restriction). `labels`: any of them."""
    mask = np.ones(len(points), dtype=bool)
    labels = list(labels)
    if labels:
        mask &= np.logical_or.reduce([has_class(points, lab) for lab in labels])
    if age_range is not None:
        lo, hi = age_range
        if lo > hi:
            raise ValueError(f"age_range must be (low, high) with low <= high; got {age_range}")
        age = points["age"].to_numpy(dtype=float)
        mask &= (age >= lo) & (age <= hi)
    if list(sexes):
        mask &= points["sex"].isin(list(sexes)).to_numpy()
    if list(datasets):
        mask &= points["dataset_id"].isin(list(datasets)).to_numpy()
    if fold is not None:
        mask &= (points["fold"] == fold).fillna(False).to_numpy(dtype=bool)
    return points[mask]


def labels_present(points: pd.DataFrame) -> list[str]:
    """The distinct classes carried by any of the points, sorted."""
    items = points["labels"].astype(str).str.split(",").explode()
    return sorted(v for v in items.unique() if isinstance(v, str) and v)


def has_class(points: pd.DataFrame, cls: str) -> np.ndarray:
    """Whether each record carries `cls` (an exact item of its comma-separated labels)."""
    pattern = rf"(?:^|,){re.escape(cls)}(?:,|$)"
    return points["labels"].astype(str).str.contains(pattern, regex=True).to_numpy(dtype=bool)


def colour_values(points: pd.DataFrame, colour_by: str, cls: str | None = None, review: bool = False) -> pd.Series:
    """The column the scatter colours by: categorical strings, or floats for age/BMI (bands in review mode)."""
    _check_choice("colour_by", colour_by, COLOUR_BY)
    if colour_by == "rhythm":
        return points["rhythm"].astype(str)
    if colour_by == "class":
        if cls is None:
            raise ValueError("colour_by='class' needs cls, one of the 20 classes")
        return pd.Series(np.where(has_class(points, cls), cls, "other"), index=points.index)
    if colour_by == "age":
        return age_bands(points["age"]) if review else points["age"].astype(float)
    if colour_by == "bmi":
        return points["bmi"].astype(float)
    if colour_by == "split":
        fold = points["fold"].astype("string")
        return points["split"].astype(str).where(fold.isna(), "fold " + fold.fillna(""))
    if colour_by == "dataset":
        return points["dataset_id"].astype(str)
    return points[{"sex": "sex", "bmi_category": "bmi_category"}[colour_by]].fillna("unknown").astype(str)


def age_bands(age: pd.Series) -> pd.Series:
    """Ages as decade bands ('<30', '30-39', ..., '80+') so exact ages are never shown in review mode."""
    names = ["<30"] + [f"{lo}-{hi - 1}" for lo, hi in zip(AGE_BANDS[1:-2], AGE_BANDS[2:-1])] + ["80+"]
    out = pd.cut(pd.to_numeric(age, errors="coerce"), bins=list(AGE_BANDS), right=False, labels=names)
    return out.astype("string").fillna("unknown").astype(str)


# -- selection ------------------------------------------------------------------------
def points_in_box(x: np.ndarray, y: np.ndarray, x_range: tuple[float, float], y_range: tuple[float, float]) -> np.ndarray:
    x0, x1 = sorted(x_range)
    y0, y1 = sorted(y_range)
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def points_in_polygon(x: np.ndarray, y: np.ndarray, poly_x: Iterable[float], poly_y: Iterable[float]) -> np.ndarray:
    """Even-odd ray casting, vectorised over points (a lasso is a closed polygon)."""
    px, py = np.asarray(list(poly_x), float), np.asarray(list(poly_y), float)
    if len(px) != len(py) or len(px) < 3:
        raise ValueError(f"a lasso needs at least 3 vertices with as many x as y; got {len(px)} x, {len(py)} y")
    x, y = np.asarray(x, float), np.asarray(y, float)
    inside = np.zeros(len(x), dtype=bool)
    qx, qy = np.roll(px, 1), np.roll(py, 1)
    for ax, ay, bx, by in zip(px, py, qx, qy):
        crosses = (ay > y) != (by > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = (bx - ax) * (y - ay) / (by - ay) + ax
        inside ^= crosses & (x < x_cross)
    return inside


def selection_mask(points: pd.DataFrame, selection: dict | None) -> np.ndarray:
    """Which rows of `points` a selection covers, computed over all of them (not only the drawn points).

    `selection`: {'box': [{'x': [x0, x1], 'y': [y0, y1]}, ...], 'lasso': [{'x': [...], 'y': [...]}, ...],
    'record_ids': [...]} — Streamlit's plotly selection state or the decoded URL; regions are unioned.
    """
    mask = np.zeros(len(points), dtype=bool)
    if not selection:
        return mask
    x, y = points["x"].to_numpy(float), points["y"].to_numpy(float)
    for box in selection.get("box") or []:
        mask |= points_in_box(x, y, box["x"][:2], box["y"][:2])
    for lasso in selection.get("lasso") or []:
        mask |= points_in_polygon(x, y, lasso["x"], lasso["y"])
    ids = selection.get("record_ids") or []
    if ids:
        mask |= points["record_id"].astype(str).isin([str(i) for i in ids]).to_numpy()
    return mask


def selection_table(points: pd.DataFrame, mask: np.ndarray, review: bool = False) -> pd.DataFrame:
    """The selected records: id, labels, age, sex, BMI, dataset (de-identified in review mode)."""
    cols = ["dataset_id", "record_id", "labels", "age", "sex", "bmi", "split", "fold"]
    table = points.loc[np.asarray(mask, bool), cols].reset_index(drop=True)
    return deidentify(table) if review else table


def deidentify(table: pd.DataFrame) -> pd.DataFrame:
    """Drop record and patient ids, replace exact age by a band (review mode)."""
    out = table.drop(columns=[c for c in ("record_id", "patient_id", "source_path") if c in table.columns])
    if "age" in out.columns:
        out = out.assign(age=age_bands(out["age"]))
    return out


def selection_summary(points: pd.DataFrame, mask: np.ndarray) -> dict[str, pd.DataFrame]:
    """Selection vs rest: label shares and enrichment (share in selection / share in rest), age, sex."""
    mask = np.asarray(mask, bool)
    if mask.shape != (len(points),):
        raise ValueError(f"mask must have one entry per point ({len(points)}), got shape {mask.shape}")
    sel, rest = points[mask], points[~mask]
    present = sorted(labels_present(points), key=lambda c: CLASSES.index(c) if c in CLASSES else 99)
    rows = []
    for cls in present:
        a = float(has_class(sel, cls).mean()) if len(sel) else float("nan")
        b = float(has_class(rest, cls).mean()) if len(rest) else float("nan")
        rows.append((cls, a, b, a / b if b > 0 else float("inf") if a > 0 else float("nan")))
    labels = pd.DataFrame(rows, columns=["label", "share_selected", "share_rest", "enrichment"])
    labels = labels.sort_values("enrichment", ascending=False, na_position="last").reset_index(drop=True)

    def describe(part):
        age = part["age"].astype(float)
        return {"n": len(part), "age_mean": age.mean(), "age_sd": age.std(),
                "female_share": float((part["sex"] == "F").mean()) if len(part) else float("nan")}

    demo = pd.DataFrame([describe(sel), describe(rest)], index=["selected", "rest"])
    return {"labels": labels, "demographics": demo}


# -- metrics --------------------------------------------------------------------------
def metrics(store, weights_ids: Iterable[str], scope: str | None = None, names: Iterable[str] = ()) -> pd.DataFrame:
    weights_ids, names = list(weights_ids), list(names)
    if not weights_ids:
        return pd.DataFrame(columns=["weights_id", "scope", "name", "label", "fold", "value", "ci_low", "ci_high"])
    sql = ("SELECT weights_id, scope, name, label, fold, value, ci_low, ci_high FROM metrics "
           "WHERE list_contains(?, weights_id)")
    params: list[Any] = [weights_ids]
    if scope is not None:
        sql += " AND scope = ?"
        params.append(scope)
    if names:
        sql += " AND list_contains(?, name)"
        params.append(names)
    return store.query_df(sql + " ORDER BY weights_id, scope, name, label, fold", params)


def silhouette_comparison(store, baseline_id: str, other_id: str, scope: str = "chapman_test") -> pd.DataFrame:
    """Per-label (and overall, label 'overall') silhouettes of two weights with change, % change and CIs."""
    df = metrics(store, [baseline_id, other_id], scope, ["silhouette"])
    df = df[df["fold"] == -1]
    cols = ["value", "ci_low", "ci_high"]
    a = df[df["weights_id"] == baseline_id].set_index("label")[cols].add_prefix("baseline_")
    b = df[df["weights_id"] == other_id].set_index("label")[cols].add_prefix("other_")
    out = a.join(b, how="outer")
    out["change"] = out["other_value"] - out["baseline_value"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["pct_change"] = 100 * out["change"] / out["baseline_value"].abs()
    out.index = ["overall" if i == "" else i for i in out.index]
    out.index.name = "label"
    return out.reset_index()


def centroid_tables(store, weights_ids: Iterable[str]) -> dict[str, pd.DataFrame]:
    """'single_multi': per weights and label, single / multi / ratio / % diff; 'cross_domain': PTB-XL->Chapman."""
    df = metrics(store, weights_ids)
    sm = df[df["name"].isin(["centroid_single", "centroid_multi", "centroid_ratio", "centroid_pct_diff"])]
    single_multi = sm.pivot_table(index=["weights_id", "label"], columns="name", values="value").reset_index()
    cd = df[df["name"].isin(["ptbxl_to_chapman_centroid", "share_sr_closer_to_sb"])]
    cross = cd.pivot_table(index="label", columns="weights_id", values="value").reset_index()
    cross["label"] = cross["label"].replace("", "share of PTB-XL SR closer to SB")
    return {"single_multi": single_multi, "cross_domain": cross}


PROBE_NAMES = ("probe_age_r2", "probe_sex_auroc", "probe_bmi_r2", "domain_auroc", "linear_probe_macro_f1", "knn_purity")


def probe_trend(store, run_id: str, baseline_id: str | None = None) -> pd.DataFrame:
    """Demographic probes (and friends) per checkpoint of a run, epoch 0 = the baseline; long format."""
    ckpts = run_checkpoints(store, run_id)[["weights_id", "epoch"]]
    if baseline_id is not None:
        ckpts = pd.concat([pd.DataFrame({"weights_id": [baseline_id], "epoch": [0]}), ckpts], ignore_index=True)
    df = metrics(store, ckpts["weights_id"], names=PROBE_NAMES)
    df = df[(df["label"] == "") & (df["fold"] == -1)]
    return df.merge(ckpts, on="weights_id")[["epoch", "weights_id", "scope", "name", "value"]].sort_values(["name", "epoch"])


def per_class_table(store, weights_id: str, scope: str = "chapman_test") -> pd.DataFrame:
    """F1, precision, recall, support, prevalence per class (CLASSES order), plus a 'macro' row."""
    df = metrics(store, [weights_id], scope, ["f1", "precision", "recall", "support", "prevalence"])
    if df.empty:
        return pd.DataFrame(columns=["label", "f1", "precision", "recall", "support", "prevalence"])
    wide = df.pivot_table(index="label", columns="name", values="value")
    order = [c for c in CLASSES if c in wide.index] + [c for c in wide.index if c not in CLASSES]
    wide = wide.loc[order].rename(index={"": "macro"})
    for col in ("f1", "precision", "recall", "support", "prevalence"):
        if col not in wide.columns:
            wide[col] = np.nan
    return wide[["f1", "precision", "recall", "support", "prevalence"]].rename_axis("label").reset_index()


def prevalence_vs_f1(table: pd.DataFrame) -> dict[str, float]:
    """Least-squares line and Pearson r of F1 against prevalence over the per-class rows."""
    from scipy import stats
    rows = table[(table["label"] != "macro")].dropna(subset=["prevalence", "f1"])
    if len(rows) < 3 or rows["prevalence"].nunique() < 2:
        return {"slope": float("nan"), "intercept": float("nan"), "r": float("nan"), "p": float("nan"), "n": len(rows)}
    fit = stats.linregress(rows["prevalence"].astype(float), rows["f1"].astype(float))
    return {"slope": fit.slope, "intercept": fit.intercept, "r": fit.rvalue, "p": fit.pvalue, "n": len(rows)}


def acdc_folds(store, weights_id: str) -> dict[str, Any]:
    """CMR per-fold accuracy and silhouette with mean ± SE (accuracy) / ± SD (silhouette), intra/inter ratios."""
    df = metrics(store, [weights_id], "acdc", ["accuracy", "silhouette", "intra_inter_ratio"])
    per_fold = df[(df["fold"] >= 0) & (df["label"] == "")].pivot_table(index="fold", columns="name", values="value")
    out: dict[str, Any] = {"per_fold": per_fold.reset_index()}
    if "accuracy" in per_fold:
        acc = per_fold["accuracy"].dropna()
        out["accuracy_mean"] = float(acc.mean())
        out["accuracy_se"] = float(acc.std(ddof=1) / math.sqrt(len(acc))) if len(acc) > 1 else float("nan")
    if "silhouette" in per_fold:
        sil = per_fold["silhouette"].dropna()
        out["silhouette_mean"], out["silhouette_sd"] = float(sil.mean()), float(sil.std(ddof=1))
    ii = df[(df["name"] == "intra_inter_ratio") & (df["fold"] >= 0)]
    out["intra_inter"] = (ii.groupby("label")["value"].agg(["mean", "std", "count"]).reset_index()
                          if not ii.empty else pd.DataFrame(columns=["label", "mean", "std", "count"]))
    return out


def thesis_side_by_side(store, baseline_id: str | None, finetuned_id: str | None) -> pd.DataFrame:
    """This workspace's headline numbers next to the thesis's (method.md §6)."""
    want = [x for x in (baseline_id, finetuned_id) if x]
    m = metrics(store, want)

    def value(wid, scope, name, label=""):
        if wid is None:
            return float("nan")
        hit = m[(m["weights_id"] == wid) & (m["scope"] == scope) & (m["name"] == name) & (m["label"] == label)
                & (m["fold"] == -1)]
        return float(hit["value"].iloc[0]) if len(hit) else float("nan")

    rows = [("silhouette, Chapman test (rhythm)", *THESIS["silhouette_chapman"],
             value(baseline_id, "chapman_test", "silhouette"), value(finetuned_id, "chapman_test", "silhouette")),
            ("silhouette, PTB-XL display (rhythm)", *THESIS["silhouette_ptbxl"],
             value(baseline_id, "ptbxl_display", "silhouette"), value(finetuned_id, "ptbxl_display", "silhouette"))]
    for lab, (b, f) in THESIS["silhouette_chapman_per_label"].items():
        rows.append((f"silhouette {lab}", b, f, value(baseline_id, "chapman_test", "silhouette", lab),
                     value(finetuned_id, "chapman_test", "silhouette", lab)))
    for lab, f in THESIS["f1_chapman"].items():
        rows.append((f"F1 {lab}", float("nan"), f, float("nan"), value(finetuned_id, "chapman_test", "f1", lab)))
    rows.append(("macro F1 (20 labels)", float("nan"), THESIS["macro_f1_chapman"], float("nan"),
                 value(finetuned_id, "chapman_test", "f1")))
    return pd.DataFrame(rows, columns=["metric", "thesis_baseline", "thesis_finetuned", "baseline", "finetuned"])


# -- records --------------------------------------------------------------------------
def record_info(store, dataset_id: str, record_id: str) -> dict[str, Any] | None:
    """The record row plus its dataset's source/preprocessed folders and its classes, or None."""
    rows = store.query_df(
        "SELECT r.*, d.modality, d.source_dir, d.preprocessed_dir FROM records r JOIN datasets d USING (dataset_id) "
        "WHERE r.dataset_id = ? AND r.record_id = ?", [dataset_id, record_id])
    if rows.empty:
        return None
    info = rows.iloc[0].to_dict()
    info["classes"] = [r[0] for r in store.query(
        "SELECT class FROM labels WHERE dataset_id = ? AND record_id = ? ORDER BY class", [dataset_id, record_id])]
    info["has_preprocessed"] = bool(store.scalar(
        "SELECT count(*) FROM preprocessed WHERE dataset_id = ? AND record_id = ?", [dataset_id, record_id]))
    return info


def load_record_signal(store, info: dict[str, Any], which: str, roots: Iterable[Path]) -> tuple[np.ndarray, float]:
    """(array, sampling rate) of a record from record_info(), raw or preprocessed; files must lie under `roots`.

    Preprocessed ECG is (12, 5000) at 500 Hz, CMR (3, 210, 210) ED / mid / ES (rate 0).

    Raises ValueError (path outside the roots) or the reader's RecordError / ImportError.
    """
    _check_choice("which", which, ("raw", "preprocessed"))
    roots = [Path(r).resolve() for r in roots]

    def inside(path) -> Path:
        p = Path(path).resolve()
        if not any(p.is_relative_to(r) for r in roots):
            raise ValueError(f"{p}: outside the workspace's data roots; refusing to read it")
        return p

    if which == "preprocessed":
        from .preprocessing.storage import PreprocessedArrays
        directory = inside(info["preprocessed_dir"])
        arrays = PreprocessedArrays.from_store(store, directory, info["dataset_id"], [info["record_id"]])
        array = arrays.get(info["record_id"])
        return array, (500.0 if info.get("modality") != "cmr" else 0.0)
    if info["dataset_id"] == "ptbxl":
        from .datasets import ptbxl
        record = ptbxl.read_record(inside(info["source_dir"]), int(info["record_id"]))
    elif info["dataset_id"] == "acdc":
        raise ValueError("raw CMR volumes are not previewed; choose 'preprocessed' for the ED / mid / ES frames")
    else:
        from .datasets import chapman
        record = chapman.read_record(inside(info["source_path"]))
    return np.asarray(record.signal), float(record.fs)


# -- jobs -----------------------------------------------------------------------------
def jobs_table(store, runs_dir: Path | str | None = None, limit: int = 50) -> pd.DataFrame:
    """Jobs, newest first, with progress (fraction, ETA, latest metrics) read from runs/<job_id>/progress.json."""
    df = store.query_df("SELECT job_id, kind, status, spec, error, log_path, created_at, started_at, finished_at, "
                        "(SELECT arg_max(c.weights_id, c.epoch) FROM checkpoints c WHERE c.job_id = jobs.job_id) "
                        "AS last_checkpoint_id FROM jobs ORDER BY created_at DESC, job_id LIMIT ?", [limit])
    fractions, etas, latest, stages = [], [], [], []
    for row in df.itertuples():
        progress = read_progress(Path(runs_dir) / row.job_id) if runs_dir is not None else {}
        frac = progress_fraction(progress)
        if row.status == "succeeded":
            frac = 1.0
        fractions.append(frac)
        etas.append(progress.get("eta_s"))
        latest.append(", ".join(f"{k}={v:.3g}" if isinstance(v, (int, float)) else f"{k}={v}"
                                for k, v in (progress.get("metrics") or {}).items()))
        stages.append(progress.get("message") or progress.get("stage") or "")
    df["progress"], df["eta_s"], df["latest_metrics"], df["stage"] = fractions, etas, latest, stages
    return df


def read_progress(job_dir: Path) -> dict[str, Any]:
    """progress.json of a job, via jobs.progress when available; {} when missing or unreadable."""
    try:
        from jobs.progress import read_progress as reader  # the jobs package owns the format
        value = reader(job_dir)
        if value is None:
            return {}
        return value if isinstance(value, dict) else dict(getattr(value, "__dict__", {}))
    except ImportError:
        pass
    except Exception:
        return {}
    path = Path(job_dir) / "progress.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def progress_fraction(progress: dict[str, Any]) -> float:
    if progress.get("fraction") is not None:
        return float(min(1.0, max(0.0, progress["fraction"])))
    for done, total in (("epoch", "total_epochs"), ("step", "total_steps"), ("epoch", "epochs")):
        if progress.get(done) is not None and progress.get(total):
            return float(min(1.0, progress[done] / progress[total]))
    return 0.0


def log_tail(path: str | Path | None, roots: Iterable[Path], n_lines: int = 20) -> str:
    """The last lines of a job log, only if it lies under one of `roots`."""
    if not path:
        return ""
    p = Path(path).resolve()
    if not any(p.is_relative_to(Path(r).resolve()) for r in roots):
        return f"(log {p} is outside the workspace; not shown)"
    try:
        with open(p, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 64_000))
            return "\n".join(fh.read().decode(errors="replace").splitlines()[-n_lines:])
    except OSError:
        return ""


# -- bookmarks ------------------------------------------------------------------------
def list_bookmarks(store) -> pd.DataFrame:
    return store.query_df("SELECT bookmark_id, title, note, page, view_params, selection, created_at "
                          "FROM bookmarks ORDER BY created_at DESC, bookmark_id DESC")


def save_bookmark(store, title: str, note: str, page: str, view_params: dict, selection: dict | None) -> int:
    """Save a view (its query params) and optional selection; returns the bookmark id."""
    title = (title or "").strip()
    if not title:
        raise ValueError("a bookmark needs a title")
    with store.write() as con:
        return int(con.execute(
            "INSERT INTO bookmarks (title, note, page, view_params, selection) VALUES (?, ?, ?, ?, ?) "
            "RETURNING bookmark_id",
            [title, note or "", page, json.dumps(view_params, sort_keys=True),
             json.dumps(selection, sort_keys=True) if selection else None]).fetchone()[0])
