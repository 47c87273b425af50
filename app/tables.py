"""Tables as a reader sees them: human column names, '—' for a missing value, numbers rounded for display.

The CSV downloads keep the machine names and full precision; only what is drawn changes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MISSING = "—"

# Names that a plain "snake_case -> Sentence case" would get wrong.
COLUMN_NAMES = {
    "pct_change": "% change", "ci_low": "95% CI low", "ci_high": "95% CI high", "f1": "F1",
    "weights_id": "Weights", "dataset_id": "Dataset", "record_id": "Record", "run_id": "Run", "job_id": "Job",
    "n": "n", "n_single": "n single", "n_multi": "n multi", "bmi": "BMI", "bmi_category": "BMI category",
    "auroc": "AUROC", "sd": "SD", "se": "SE", "std": "SD", "count": "n folds", "mean": "Mean",
    "is_demo": "Demo", "n_files": "Files", "n_records": "Records", "ingested_at": "Ingested",
    "has_projection": "Projected", "display": "Weights", "baseline_value": "Baseline",
    "other_value": "Compared", "baseline_ci_low": "Baseline CI low", "baseline_ci_high": "Baseline CI high",
    "other_ci_low": "Compared CI low", "other_ci_high": "Compared CI high", "thesis_baseline": "Thesis baseline",
    "thesis_finetuned": "Thesis fine-tuned", "finetuned": "Fine-tuned", "share_selected": "Share in selection",
    "share_rest": "Share in rest", "age_mean": "Mean age", "age_sd": "Age SD", "female_share": "Share female",
    "centroid_single": "Single", "centroid_multi": "Multi", "centroid_ratio": "Ratio",
    "centroid_pct_diff": "% difference", "last_epoch": "Last epoch", "created_at": "Created",
}


def human_name(column) -> str:
    column = str(column)
    if column in COLUMN_NAMES:
        return COLUMN_NAMES[column]
    text = column.replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else column


def for_display(df: pd.DataFrame, *, digits: int | None = 3) -> pd.DataFrame:
    """A copy with human column names, floats rounded and every missing value shown as '—'."""
    out = df.copy()
    if digits is not None:
        floats = out.select_dtypes(include="floating").columns
        out[floats] = out[floats].round(digits)
    for col in out.columns:
        values = out[col]
        missing = values.isna() | values.isin([np.inf, -np.inf])
        if not missing.any():
            continue
        # a column with a gap becomes text, so '—' can stand in it (Arrow needs one type per column)
        out[col] = [MISSING if m else _text(v) for v, m in zip(values, missing)]
    out.columns = [human_name(c) for c in out.columns]
    return out


def _text(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating)) and float(value).is_integer()
                                               and abs(value) >= 1):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)
