"""Read models of the Multimodal page: encoder pairs, their retrieval scores, the joint shared-space layout,
and the released MMCL family."""
from __future__ import annotations

import json

import pandas as pd

from cardio_core.metrics.retrieval import DEFAULT_KS
from cardio_core.vocabulary import PAIRED_DATASETS, PAIRED_SCOPE, PAIRED_VIEW

MODALITY_OF_DATASET = {d: m for m, d in PAIRED_DATASETS.items()}
DIRECTION_NAMES = {"ecg_to_cmr": "ECG → CMR", "cmr_to_ecg": "CMR → ECG"}


def list_pairs(store) -> pd.DataFrame:
    """Every encoder pair, newest first, with whether its analysis finished and has a joint layout.

    Columns: pair_id, ecg_weights_id, cmr_weights_id, has_projectors, run_id, epoch, family, stage,
    analysed, has_layout, display."""
    df = store.query_df(
        "SELECT p.pair_id, p.ecg_weights_id, p.cmr_weights_id, p.projectors_path IS NOT NULL AS has_projectors, "
        "       p.run_id, p.epoch, p.family, p.stage, a.weights_id IS NOT NULL AS analysed, "
        "       EXISTS (SELECT 1 FROM projections j WHERE j.weights_id = p.pair_id AND j.view = ?) AS has_layout "
        "FROM encoder_pairs p LEFT JOIN analysis_complete a ON a.weights_id = p.pair_id "
        "ORDER BY p.created_at DESC, p.pair_id", [PAIRED_VIEW])
    if df.empty:
        return df.assign(display=pd.Series(dtype=str))

    def display(r) -> str:
        if r["run_id"] is not None and pd.notna(r["epoch"]):
            return f"{r['run_id']} epoch {int(r['epoch'])}"
        return f"{r['family']} {r['stage']}" if r["family"] else r["pair_id"]
    return df.assign(display=df.apply(display, axis=1))


def cohort_size(store, split: str | None = None) -> int:
    """Usable subjects of the ingested paired cohort, of one split if given (0 when none is ingested)."""
    return int(store.scalar("SELECT count(*) FROM records WHERE dataset_id = ? AND NOT excluded "
                            "AND (? IS NULL OR split = ?)", [PAIRED_DATASETS["ecg"], split, split]) or 0)


def default_pair(pairs: pd.DataFrame) -> str | None:
    """The pair to open on: the newest analysed pair with a joint layout, else the newest pair."""
    if pairs.empty:
        return None
    ready = pairs[pairs["has_layout"]]
    return str((ready if len(ready) else pairs)["pair_id"].iloc[0])


def retrieval_table(store, pair_id: str) -> pd.DataFrame:
    """One row per direction: top-k accuracies and the median rank with their 95% intervals and chance levels.

    Empty when the pair has no retrieval (no projectors); `note` then says why (see retrieval_note)."""
    df = store.query_df("SELECT name, label, value, ci_low, ci_high, extra FROM metrics "
                        "WHERE weights_id = ? AND scope = ? AND name LIKE 'retrieval_%' AND value IS NOT NULL",
                        [pair_id, PAIRED_SCOPE])
    rows = []
    for direction in DIRECTION_NAMES:
        part = df[df["label"] == direction]
        if part.empty:
            continue
        row = {"direction": DIRECTION_NAMES[direction]}
        for key in [f"top{k}" for k in DEFAULT_KS] + ["median_rank"]:
            hit = part[part["name"] == f"retrieval_{key}"]
            if hit.empty:
                continue
            m = hit.iloc[0]
            extra = json.loads(m["extra"]) if isinstance(m["extra"], str) else (m["extra"] or {})
            row[key] = m["value"]
            row[f"{key} 95% CI"] = f"{m['ci_low']:.3g} – {m['ci_high']:.3g}"
            row[f"{key} chance"] = extra.get("chance")
            row["test subjects"] = extra.get("n")
        rows.append(row)
    return pd.DataFrame(rows)


def retrieval_note(store, pair_id: str) -> str:
    """Why a pair has no retrieval numbers ('' when it has them or has not been analysed)."""
    raw = store.scalar("SELECT extra FROM metrics WHERE weights_id = ? AND scope = ? AND value IS NULL "
                       "AND name LIKE 'retrieval_%' LIMIT 1", [pair_id, PAIRED_SCOPE])
    if raw is None:
        return ""
    return str((json.loads(raw) if isinstance(raw, str) else raw).get("note", ""))


def joint_points(store, pair_id: str) -> pd.DataFrame:
    """The joint shared-space layout of a pair: two points per test subject (record_id = subject id), with
    modality, demographics and the subject's CMR phenotypes as columns."""
    df = store.query_df(
        "WITH proj AS (SELECT projection_id FROM projections WHERE weights_id = ? AND view = ? "
        "              ORDER BY created_at DESC LIMIT 1) "
        "SELECT p.dataset_id, p.record_id, p.x, p.y, r.age, r.sex, r.bmi, r.bmi_category, r.split "
        "FROM projection_points p JOIN proj USING (projection_id) "
        "LEFT JOIN records r ON r.dataset_id = p.dataset_id AND r.record_id = p.record_id "
        "ORDER BY p.dataset_id, p.record_id", [pair_id, PAIRED_VIEW])
    df["modality"] = df["dataset_id"].map(MODALITY_OF_DATASET).str.upper()
    values = subject_values(store, df["record_id"].unique().tolist())
    return df.merge(values, how="left", left_on="record_id", right_index=True)


def subject_values(store, subject_ids) -> pd.DataFrame:
    """Phenotypes and outcomes of paired-cohort subjects: one row per subject id, one column per value."""
    if not len(subject_ids):
        return pd.DataFrame()
    long = store.query_df("SELECT subject_id, name, value FROM subject_values WHERE list_contains(?, subject_id)",
                          [list(map(str, subject_ids))])
    if long.empty:
        return pd.DataFrame(index=pd.Index([], name="subject_id"))
    return long.pivot_table(index="subject_id", columns="name", values="value", aggfunc="first")


def family_table(store, family: str | None = None) -> pd.DataFrame:
    """Weights that belong to a family (the released MMCL files, an MMCL run's encoders) with stage and lineage."""
    sql = ("SELECT w.family, w.stage, w.modality, w.weights_id, w.name, w.parent_weights_id, "
           "       a.weights_id IS NOT NULL AS analysed "
           "FROM weights w LEFT JOIN analysis_complete a USING (weights_id) WHERE w.family IS NOT NULL")
    params = []
    if family:
        sql += " AND w.family = ?"
        params.append(family)
    return store.query_df(sql + " ORDER BY w.family, w.modality DESC, w.stage", params)
