"""The Overview's read model: what the workspace holds, and next steps for a newcomer."""
from __future__ import annotations

from typing import Iterable

import pandas as pd

from cardio_core.vocabulary import ACTIVE_STATUSES, WEIGHT_SUFFIXES


def workspace_summary(store) -> dict[str, pd.DataFrame]:
    """Datasets with record counts, weights by kind, runs with checkpoints, jobs by status, problems."""
    with store.read() as con:
        datasets = con.execute(
            "SELECT d.dataset_id, d.modality, d.is_demo, d.n_files, d.n_records, "
            "count(r.record_id) FILTER (WHERE NOT r.excluded) AS usable, "
            "count(r.record_id) FILTER (WHERE r.excluded) AS excluded, "
            "count(r.record_id) FILTER (WHERE NOT r.excluded AND r.flags IS NOT NULL AND r.flags <> '') "
            "AS with_warnings, d.ingested_at "
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
    return bool(len(jobs) and jobs.loc[jobs["status"].isin(ACTIVE_STATUSES), "has_demo"].any())


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
    if not any(str(f).endswith(WEIGHT_SUFFIXES) for f in weights_files):
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
