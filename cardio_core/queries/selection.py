"""Selections over a projection's points (box, lasso, record ids), computed over all points, and their summaries."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from cardio_core.labels import CLASSES
from cardio_core.queries.points import age_bands, label_matrix, labels_present


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
    # one record x class matrix for all classes at once (a regex pass per class costs seconds at 50k points)
    carries = label_matrix(points, present)
    in_sel = carries[mask].mean(0) if mask.any() else np.full(len(present), np.nan)
    in_rest = carries[~mask].mean(0) if (~mask).any() else np.full(len(present), np.nan)
    rows = []
    for cls, a, b in zip(present, in_sel.astype(float), in_rest.astype(float)):
        rows.append((cls, a, b, a / b if b > 0 else float("inf") if a > 0 else float("nan")))
    labels = pd.DataFrame(rows, columns=["label", "share_selected", "share_rest", "enrichment"])
    labels = labels.sort_values("enrichment", ascending=False, na_position="last").reset_index(drop=True)

    def describe(part):
        age = part["age"].astype(float)
        return {"n": len(part), "age_mean": age.mean(), "age_sd": age.std(),
                "female_share": float((part["sex"] == "F").mean()) if len(part) else float("nan")}

    demo = pd.DataFrame([describe(sel), describe(rest)], index=["selected", "rest"])
    return {"labels": labels, "demographics": demo}


MIN_SUMMARY_RECORDS = 5  # review mode: demographics of a smaller group would describe individuals


def review_demographics(demo: pd.DataFrame, min_n: int = MIN_SUMMARY_RECORDS) -> pd.DataFrame:
    """A selection_summary()'s demographics as review mode shows them: no age SD, the mean age rounded,
    and nothing but the count for a group of fewer than `min_n` records (a single record's 'mean age' is its age)."""
    out = demo.drop(columns=[c for c in ("age_sd",) if c in demo.columns]).copy()
    out["age_mean"] = out["age_mean"].astype(float).round(0)
    small = out["n"].astype(int) < min_n
    for col in [c for c in out.columns if c != "n"]:
        out[col] = out[col].astype(object).where(~small, f"hidden (< {min_n})")
    return out
