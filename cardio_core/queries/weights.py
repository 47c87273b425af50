"""Weights and checkpoints as the pickers show them, with lineage and which views they have."""
from __future__ import annotations

from typing import Any

import pandas as pd

from cardio_core.vocabulary import PROJECTION_VIEWS as VIEWS


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
