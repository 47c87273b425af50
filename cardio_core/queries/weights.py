"""Weights and checkpoints as the pickers show them, with lineage and which views they have."""
from __future__ import annotations

from typing import Any

import pandas as pd

from cardio_core.vocabulary import PROJECTION_VIEWS as VIEWS
from cardio_core.vocabulary import SELECTION_METRIC


def list_weights(store, modality: str | None = None) -> pd.DataFrame:
    """All weights (baselines first, then checkpoints by run and epoch) with a display label."""
    sql = ("SELECT w.weights_id, w.modality, w.name, w.kind, w.path, w.parent_weights_id, c.run_id, c.epoch, c.fold, "
           "EXISTS (SELECT 1 FROM projections p WHERE p.weights_id = w.weights_id) AS has_projection "
           "FROM weights w LEFT JOIN checkpoints c USING (weights_id) ")
    params: list[Any] = []
    if modality is not None:
        sql += "WHERE w.modality = ? "
        params.append(modality)
    sql += ("ORDER BY CASE w.kind WHEN 'pretrained' THEN 0 WHEN 'released' THEN 1 WHEN 'random' THEN 2 ELSE 3 END, "
            "c.run_id, c.fold NULLS FIRST, c.epoch, w.weights_id")
    df = store.query_df(sql, params)
    df["display"] = [display_name(r) for r in df.itertuples()]
    return df


def display_name(row) -> str:
    """'run · epoch 6'; for CMR 'run · fold 2 · epoch 1' (one fold's model) or 'run · all folds · epoch 1';
    'name (kind)' for other weights."""
    if row.kind == "checkpoint" and pd.notna(row.epoch):
        if pd.notna(row.fold):
            fold = f" · fold {int(row.fold)}"
        else:   # a CMR run's per-epoch entry: every fold's validation patients, each by its own fold's model
            fold = " · all folds" if row.modality == "cmr" else ""
        return f"{row.run_id}{fold} · epoch {int(row.epoch)}"
    return f"{row.name} ({row.kind})"


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


def runs_overview(store, modality: str | None = None) -> pd.DataFrame:
    """Fine-tuning runs, newest first: recipe, how their job ended, epochs, and the best checkpoint.

    Columns: run_id, modality, recipe, created_at, status (the job's, 'unknown' without one), n_checkpoints,
    last_epoch, best_weights_id, best_epoch, best_value, selected_by. A CMR run's candidates are its
    per-epoch entries over all folds; an ECG run's, its checkpoints.
    """
    sql = ("SELECT r.run_id, r.modality, r.dataset_id, r.recipe, r.created_at, coalesce(j.status, 'unknown') AS status, "
           "r.best_weights_id AS marked_best FROM runs r LEFT JOIN jobs j ON j.job_id = r.job_id ")
    params: list[Any] = []
    if modality is not None:
        sql += "WHERE r.modality = ? "
        params.append(modality)
    runs = store.query_df(sql + "ORDER BY r.created_at DESC, r.run_id DESC", params)
    ckpts = store.query_df("SELECT c.run_id, c.weights_id, c.epoch, c.fold, c.val_metrics, r.modality "
                           "FROM checkpoints c JOIN runs r USING (run_id) WHERE c.fold IS NULL")
    best = []
    for run in runs.itertuples():
        mine = ckpts[ckpts["run_id"] == run.run_id]
        metric = SELECTION_METRIC.get(run.dataset_id) or SELECTION_METRIC.get(run.modality, "")
        values = [_metric_of(v, metric) for v in mine["val_metrics"]]
        scored = [(v, int(e), w) for v, e, w in zip(values, mine["epoch"], mine["weights_id"]) if v is not None]
        marked = [t for t in scored if t[2] == run.marked_best]
        if marked:   # the run's own mark (pipeline.runs.mark_best_checkpoint)
            v, e, w = marked[0]
        elif scored:   # highest value; the earlier epoch on a tie
            v, e, w = max(scored, key=lambda t: (t[0], -t[1]))
        elif len(mine):
            v, e, w = None, int(mine["epoch"].max()), str(mine.loc[mine["epoch"].idxmax(), "weights_id"])
        else:
            v, e, w = None, None, None
        best.append({"n_checkpoints": len(mine), "last_epoch": int(mine["epoch"].max()) if len(mine) else None,
                     "best_weights_id": w, "best_epoch": e, "best_value": v,
                     "selected_by": metric if v is not None else "last epoch (no validation metric)"})
    runs = runs.drop(columns=["marked_best", "dataset_id"])
    return pd.concat([runs.reset_index(drop=True), pd.DataFrame(best)], axis=1) if len(runs) else \
        runs.assign(n_checkpoints=[], last_epoch=[], best_weights_id=[], best_epoch=[], best_value=[], selected_by=[])


def _metric_of(val_metrics, name: str):
    import json
    if val_metrics is None or (isinstance(val_metrics, float) and pd.isna(val_metrics)):
        return None
    data = json.loads(val_metrics) if isinstance(val_metrics, str) else dict(val_metrics)
    value = data.get(name)
    return float(value) if isinstance(value, (int, float)) and pd.notna(value) else None


def default_run(runs: pd.DataFrame) -> str | None:
    """The run a comparison defaults to: the most recent one whose job succeeded, else the most recent."""
    if runs.empty:
        return None
    done = runs[(runs["status"] == "succeeded") & runs["best_weights_id"].notna()]
    pick = done if not done.empty else runs[runs["best_weights_id"].notna()]
    return str(pick.iloc[0]["run_id"]) if not pick.empty else None
