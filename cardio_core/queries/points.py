"""The points of a projection joined with their records, and the pure transforms the scatters use
(filters, colours, age bands)."""
from __future__ import annotations

import re
from typing import Any, Iterable

import numpy as np
import pandas as pd

from cardio_core.analysis.projections import aligned_view
from cardio_core.labels import CLASSES, rhythm_of
from cardio_core.vocabulary import PROJECTION_VIEWS as VIEWS

COLOUR_BY = ("rhythm", "class", "age", "sex", "bmi", "bmi_category", "split", "dataset")
AGE_BANDS = (0, 30, 40, 50, 60, 70, 80, 200)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")


def projection_points(store, weights_id: str, view: str, *, aligned: bool = False) -> pd.DataFrame:
    """Every point of the newest projection of `weights_id` for `view`, joined with record attributes.

    The default layout is the weights' own independent UMAP fit; `aligned=True` reads the layout aligned
    along its run (the epoch evolution), or the independent one for weights that start a chain (the baseline).

    Columns: dataset_id, record_id, x, y, age, sex, bmi, bmi_category, split, fold, labels (comma-separated,
    CLASSES order), rhythm (the record's rhythm label or 'other'), multi (True when it also has other classes).
    """
    check_choice("view", view, VIEWS)
    wanted = [aligned_view(view), view] if aligned else [view]
    df = store.query_df(
        "WITH proj AS (SELECT projection_id FROM projections WHERE weights_id = ? AND list_contains(?, view) "
        "              ORDER BY view = ? DESC, created_at DESC, projection_id LIMIT 1), "
        "lab AS (SELECT dataset_id, record_id, list(class ORDER BY class) AS classes FROM labels GROUP BY ALL) "
        "SELECT p.dataset_id, p.record_id, p.x, p.y, r.age, r.sex, r.bmi, r.bmi_category, r.split, r.fold, "
        "       coalesce(lab.classes, []) AS classes "
        "FROM projection_points p JOIN proj USING (projection_id) "
        "LEFT JOIN records r ON r.dataset_id = p.dataset_id AND r.record_id = p.record_id "
        "LEFT JOIN lab ON lab.dataset_id = p.dataset_id AND lab.record_id = p.record_id "
        "ORDER BY p.dataset_id, p.record_id", [weights_id, wanted, wanted[0]])
    return _with_label_columns(df)


def projection_method(store, weights_id: str, view: str) -> str:
    """How the newest projection of `weights_id` for `view` was computed, in words ("" when there is none):
    'UMAP (n_neighbors 30, min_dist 0.25, seed 42) of the first 50 principal components of the 384-d embeddings'."""
    check_choice("view", view, VIEWS)
    row = store.query("SELECT params, method FROM projections WHERE weights_id = ? AND view = ? "
                      "ORDER BY created_at DESC, projection_id LIMIT 1", [weights_id, view])
    if not row:
        return ""
    import json
    raw, method = row[0]
    params = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
    if method == "lda":   # say which records it was fitted on: never the ones drawn
        classes = ", ".join(params.get("classes", []))
        return (f"LDA (scikit-learn, Ledoit-Wolf shrinkage) of the {params.get('input_dims', '')}-d embeddings onto 2 "
                f"discriminant axes of the {params.get('target', 'labels')}, fitted on {params.get('n_fit', '?')} "
                f"{params.get('fitted_on', 'train')} records ({classes}); drawn on the {params.get('drawn_on', 'test')} "
                "records, which it was not fitted on")
    text = "UMAP ({})".format(", ".join(f"{k} {params[k]}" for k in ("n_neighbors", "min_dist", "seed") if k in params))
    reduction = params.get("pre_reduction")
    if reduction and reduction.get("method") == "pca":
        return (f"{text} of the first {reduction['n_components']} principal components of the "
                f"{reduction['input_dims']}-d embeddings")
    return f"{text} of the embeddings"


def _with_label_columns(df: pd.DataFrame) -> pd.DataFrame:
    order = {c: i for i, c in enumerate(CLASSES)}
    classes = [sorted(list(c), key=lambda x: order.get(x, 99)) for c in df.pop("classes")]
    df["labels"] = [",".join(c) for c in classes]
    df["rhythm"] = [rhythm_of(cs) for cs in classes]
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
    # split each distinct label string once: a view of 50k records holds a few hundred of them
    combos = pd.unique(points["labels"].astype(str).to_numpy())
    return sorted({v for combo in combos for v in combo.split(",") if v})


def label_matrix(points: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """(records, classes) bool: whether each record carries each class (an exact item of its labels)."""
    codes, combos = pd.factorize(points["labels"].astype(str).to_numpy())
    per_combo = np.array([[c in set(combo.split(",")) for c in classes] for combo in combos], dtype=bool)
    return per_combo[codes] if len(combos) else np.zeros((len(points), len(classes)), dtype=bool)


def has_class(points: pd.DataFrame, cls: str) -> np.ndarray:
    """Whether each record carries `cls` (an exact item of its comma-separated labels)."""
    pattern = rf"(?:^|,){re.escape(cls)}(?:,|$)"
    return points["labels"].astype(str).str.contains(pattern, regex=True).to_numpy(dtype=bool)


def colour_values(points: pd.DataFrame, colour_by: str, cls: str | None = None, review: bool = False) -> pd.Series:
    """The column the scatter colours by: categorical strings, or floats for age/BMI (bands in review mode)."""
    check_choice("colour_by", colour_by, COLOUR_BY)
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
