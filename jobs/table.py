"""The jobs table the app shows: each job's row with its progress (fraction, ETA, latest metrics, stage)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from jobs.progress import progress_fraction, read_progress


def jobs_table(store, runs_dir: Path | str | None = None, limit: int = 50) -> pd.DataFrame:
    """Jobs, newest first, with progress (fraction, ETA, latest metrics) read from runs/<job_id>/progress.json."""
    df = store.query_df("SELECT job_id, kind, status, spec, error, log_path, created_at, started_at, finished_at, "
                        "(SELECT arg_max(c.weights_id, c.epoch) FROM checkpoints c WHERE c.job_id = jobs.job_id) "
                        "AS last_checkpoint_id FROM jobs ORDER BY created_at DESC, job_id LIMIT ?", [limit])
    fractions, etas, latest, stages = [], [], [], []
    for row in df.itertuples():
        progress = (read_progress(Path(runs_dir) / row.job_id) if runs_dir is not None else None) or {}
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
