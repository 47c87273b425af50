"""The jobs table the app shows: each job's row with its progress (fraction, ETA, latest metrics, stage)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from jobs.progress import progress_fraction, progress_text, read_progress


def measured_throughput(store, runs_dir: Path | str, modality: str) -> float | None:
    """Training samples per second of this workspace's succeeded fine-tunes of a modality (their median),
    from each job's progress file (elapsed seconds) and its run's training set size and epochs; None without any."""
    import json
    rows = store.query("SELECT j.job_id, j.spec, count(rec.record_id) FROM jobs j JOIN runs r ON r.job_id = j.job_id "
                       "JOIN records rec ON rec.dataset_id = r.dataset_id AND NOT rec.excluded "
                       "AND (rec.split = 'train' OR r.modality = 'cmr') "
                       "WHERE j.kind = 'finetune' AND j.status = 'succeeded' AND r.modality = ? GROUP BY ALL", [modality])
    rates = []
    for job_id, spec, n_records in rows:
        spec = json.loads(spec)
        progress = read_progress(Path(runs_dir) / job_id) or {}
        elapsed, epochs = progress.get("elapsed_s"), spec.get("epochs")
        n = min(n_records, spec.get("params", {}).get("max_train_records") or n_records)
        if modality == "cmr":   # 5 folds, each training on 4/5 of the patients
            n = n * 4 // 5 * len(spec.get("folds") or range(5))
        if elapsed and epochs and n:
            rates.append(n * epochs / elapsed)
    return float(sorted(rates)[len(rates) // 2]) if rates else None


def jobs_table(store, runs_dir: Path | str | None = None, limit: int = 50) -> pd.DataFrame:
    """Jobs, newest first, with progress (fraction, ETA, latest metrics) read from runs/<job_id>/progress.json."""
    df = store.query_df("SELECT job_id, kind, status, spec, error, log_path, created_at, started_at, finished_at, "
                        "(SELECT arg_max(c.weights_id, c.epoch) FROM checkpoints c WHERE c.job_id = jobs.job_id) "
                        "AS last_checkpoint_id FROM jobs ORDER BY created_at DESC, job_id LIMIT ?", [limit])
    fractions, etas, latest, stages, texts = [], [], [], [], []
    for row in df.itertuples():
        progress = (read_progress(Path(runs_dir) / row.job_id) if runs_dir is not None else None) or {}
        frac = progress_fraction(progress)
        if row.status == "succeeded":
            frac = 1.0
        fractions.append(frac)
        etas.append(progress.get("eta_s"))
        latest.append(", ".join(f"{k}={v:.3g}" if isinstance(v, (int, float)) else f"{k}={v}"
                                for k, v in (progress.get("metrics") or {}).items()))
        stages.append(progress.get("message") or progress.get("stage_name") or progress.get("stage") or "")
        texts.append(progress_text(progress, status=row.status))
    df["progress"], df["eta_s"], df["latest_metrics"], df["stage"] = fractions, etas, latest, stages
    df["progress_text"] = texts
    df["what"] = [describe_spec(s) for s in df["spec"]]
    return df


def describe_spec(spec_json) -> str:
    """'demo_ecg · 6 epochs · from mdm-…': what a job trains, for its card."""
    import json
    try:
        spec = json.loads(spec_json) if isinstance(spec_json, str) else dict(spec_json or {})
    except (TypeError, ValueError):
        return ""
    parts = [spec.get("recipe") or "", f"{spec['epochs']} epochs" if spec.get("epochs") else "",
             f"from {spec['weights']}" if spec.get("weights") else ""]
    if spec.get("kind") == "demo":
        parts = [f"demo chain, size {spec.get('params', {}).get('size', 'default')}"]
    return " · ".join(p for p in parts if p)


def sweep_progress(store, runs_dir: Path | str, group_id: str) -> tuple[pd.DataFrame, float]:
    """A sweep's members with their scores (cardio_core.queries.sweeps.sweep_results), each member's progress
    (0..1, its current job's) and words, and the group's progress: the mean over its members."""
    from cardio_core.queries.sweeps import sweep_results
    members = sweep_results(store, group_id)
    fractions, texts = [], []
    for m in members.itertuples():
        progress = read_progress(Path(runs_dir) / m.job_id) or {}
        fractions.append(1.0 if m.status == "succeeded" else progress_fraction(progress))
        texts.append(progress_text(progress, status=m.status) if m.status != "queued" else "queued")
    members = members.assign(progress=fractions, progress_text=texts)
    return members, float(np.mean(fractions)) if fractions else 0.0
