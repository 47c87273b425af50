"""Read models of sweeps (groups of fine-tune jobs over training seeds x training fractions, jobs/sweeps.py): each
member's current job, the score of each finished member, and the group's label-efficiency curve.

A member is one (seed, train fraction) of the group. Cancelling and resuming act on members: a resumed member is
a new job of the same group, so a member's current job is the newest job of its (seed, fraction).

What a member scores (SWEEP_METRIC): an ECG run's test macro F1 at its best checkpoint (chosen on validation
macro F1, runs.best_weights_id: selected on val, scored on test); a phenotype run's test LV group r at its best
checkpoint (chosen on the mean validation r); a CMR run's accuracy averaged over the cross-validation folds at its
last epoch (ACDC has no split beyond the folds to choose an epoch on, and choosing on the folds' own accuracy would
report the best of several looks at the same patients).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cardio_core.errors import CardioError
from cardio_core.metrics.summary import label_efficiency_curve
from cardio_core.vocabulary import PHENOTYPE_SCOPE

# what a sweep's members score, by task (sweep_task): metric scope, name and label, which checkpoint of the run,
# a short name for axes and what it is, in words
SWEEP_METRIC = {
    "ecg": {"scope": "chapman_test", "name": "f1", "label": "", "checkpoint": "best", "short": "test macro F1",
            "text": "Chapman test macro F1 at the checkpoint chosen on validation macro F1"},
    "cmr": {"scope": "acdc", "name": "accuracy", "label": "", "checkpoint": "last", "short": "ACDC accuracy",
            "text": "ACDC accuracy, the mean over the cross-validation folds at the last epoch"},
    "phenotypes": {"scope": PHENOTYPE_SCOPE, "name": "phenotype_group_r", "label": "LV", "checkpoint": "best",
                   "short": "test LV r", "text": "the LV group's mean Pearson r (LVEDV, LVESV, LVSV, LVEF, LVCO, LVM) "
                                                 "on the paired test subjects, at the checkpoint chosen on the mean "
                                                 "validation r"},
}


def sweep_task(spec: dict) -> str:
    """What a sweep's base spec trains: 'phenotypes' (a phenotype fine-tune), else its modality."""
    return "phenotypes" if spec.get("kind") == "finetune_phenotypes" else spec.get("modality")


MEMBER_COLUMNS = ["seed", "fraction", "job_id", "status", "created_at", "finished_at", "attempts"]


def list_sweeps(store) -> pd.DataFrame:
    """Every sweep, newest first: group_id, name, task (sweep_task), seeds, fractions, subset_seed, metric, created_at,
    n_members and how many members are in each state (n_succeeded, n_active, n_failed, n_cancelled)."""
    groups = store.query_df("SELECT group_id, name, spec, seeds, fractions, subset_seed, metric, created_at "
                            "FROM job_groups ORDER BY created_at DESC, group_id DESC")
    if groups.empty:
        return groups.assign(task=[], n_members=[], n_succeeded=[], n_active=[], n_failed=[], n_cancelled=[])
    rows = []
    for g in groups.itertuples():
        members = sweep_members(store, g.group_id)
        status = members["status"].value_counts().to_dict()
        rows.append({"task": sweep_task(json.loads(g.spec)), "n_members": len(members),
                     "n_succeeded": status.get("succeeded", 0),
                     "n_active": sum(status.get(s, 0) for s in ("queued", "starting", "running")),
                     "n_failed": status.get("failed", 0), "n_cancelled": status.get("cancelled", 0)})
    out = pd.concat([groups.reset_index(drop=True), pd.DataFrame(rows)], axis=1)
    out["seeds"] = [json.loads(s) for s in out["seeds"]]
    out["fractions"] = [json.loads(f) for f in out["fractions"]]
    return out


def sweep_members(store, group_id: str) -> pd.DataFrame:
    """One row per member (seed, fraction), in seed then descending-fraction order: its current (newest) job, that
    job's status and how many jobs the member has had (attempts: 1 + resumes)."""
    df = store.query_df(
        "SELECT CAST(json_extract(spec, '$.seed') AS BIGINT) AS seed, "
        "CAST(json_extract(spec, '$.params.train_fraction') AS DOUBLE) AS fraction, job_id, status, created_at, "
        "finished_at FROM jobs WHERE group_id = ? ORDER BY created_at, job_id", [group_id])
    if df.empty:
        return pd.DataFrame(columns=MEMBER_COLUMNS)
    attempts = df.groupby(["seed", "fraction"]).size().rename("attempts")
    current = df.groupby(["seed", "fraction"], as_index=False).tail(1).join(attempts, on=["seed", "fraction"])
    current = current.sort_values(["seed", "fraction"], ascending=[True, False]).reset_index(drop=True)
    return current[MEMBER_COLUMNS]


def _scored_checkpoint(store, run_id: str, which: str) -> str | None:
    if which == "best":
        return store.scalar("SELECT best_weights_id FROM runs WHERE run_id = ?", [run_id])
    return store.scalar("SELECT weights_id FROM checkpoints WHERE run_id = ? AND fold IS NULL "
                        "ORDER BY epoch DESC LIMIT 1", [run_id])


def sweep_results(store, group_id: str) -> pd.DataFrame:
    """The members with their score: seed, fraction, job_id, status, run_id, weights_id (the checkpoint scored),
    n_train (records the run trained on; for CMR per fold, summed over folds), value (NaN until it has one)."""
    metric = SWEEP_METRIC[sweep_task_of(store, group_id)]
    members = sweep_members(store, group_id)
    run_ids, weights_ids, n_train, values = [], [], [], []
    for m in members.itertuples():
        # a resumed member continues its first job's run: the run of any of the member's jobs, newest first
        row = store.query("SELECT r.run_id, r.config FROM runs r JOIN jobs j ON j.job_id = r.job_id "
                          "WHERE j.group_id = ? AND CAST(json_extract(j.spec, '$.seed') AS BIGINT) = ? "
                          "AND CAST(json_extract(j.spec, '$.params.train_fraction') AS DOUBLE) = ? "
                          "ORDER BY j.created_at DESC LIMIT 1", [group_id, int(m.seed), float(m.fraction)])
        run_id = row[0][0] if row else None
        config = json.loads(row[0][1]) if row and row[0][1] else {}
        wid = _scored_checkpoint(store, run_id, metric["checkpoint"]) if run_id and m.status == "succeeded" else None
        value = store.scalar("SELECT value FROM metrics WHERE weights_id = ? AND scope = ? AND name = ? "
                             "AND label = ? AND fold = -1", [wid, metric["scope"], metric["name"], metric["label"]]) \
            if wid else None
        run_ids.append(run_id)
        weights_ids.append(wid)
        n_train.append(config.get("n_train"))
        values.append(np.nan if value is None else float(value))
    return members.assign(run_id=run_ids, weights_id=weights_ids, n_train=n_train, value=values)


def sweep_task_of(store, group_id: str) -> str:
    raw = store.scalar("SELECT spec FROM job_groups WHERE group_id = ?", [group_id])
    if raw is None:
        raise CardioError(f"no sweep {group_id!r} in this workspace")
    return sweep_task(json.loads(raw))


def sweep_curve(store, group_id: str) -> pd.DataFrame:
    """The group's label-efficiency curve over its scored members (cardio_core.metrics.label_efficiency_curve):
    one row per training fraction with mean, sd, n (seeds scored) and the 95 % interval."""
    return curve_of(sweep_results(store, group_id))


def curve_of(results: pd.DataFrame) -> pd.DataFrame:
    """The label-efficiency curve of sweep_results rows (those with a score)."""
    scored = results[results["value"].notna()]
    return label_efficiency_curve(scored["fraction"].to_numpy(dtype=float), scored["value"].to_numpy(dtype=float))
