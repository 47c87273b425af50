"""Sweeps: one fine-tune spec run over several training seeds x training fractions, as one group of queued jobs.

Each member is an ordinary fine-tune job (seed = the member's seed, params.train_fraction = its fraction,
params.subset_seed = the group's), so the queue, the worker, cancel and resume need nothing new; the group is a
row of `job_groups` and the members' `jobs.group_id`. The nested subsets (1 % inside 10 % inside 100 %,
data.splits.nested_subset) are chosen once for the group by its subset seed, the same for every training seed,
so the spread over seeds is the spread of training, not of which records were drawn.

The read side (members, scores, the label-efficiency curve) is cardio_core.queries.sweeps.
"""
from __future__ import annotations

import json
import math
import secrets
import time
from dataclasses import dataclass

from cardio_core.queries.sweeps import SWEEP_METRIC, sweep_members, sweep_task
from jobs.spec import FRACTION_KINDS, MAX_SEED, JobSpec, SpecError

DEFAULT_FRACTIONS = (1.0, 0.1, 0.01)
MAX_MEMBERS = 100          # seeds x fractions of one sweep
MAX_SEEDS = 20


@dataclass(frozen=True)
class SweepPlan:
    base: JobSpec
    seeds: tuple[int, ...]
    fractions: tuple[float, ...]     # descending
    subset_seed: int
    name: str

    def members(self) -> list[JobSpec]:
        """One fine-tune spec per (seed, fraction), seeds outer, largest fraction first."""
        out = []
        for seed in self.seeds:
            for fraction in self.fractions:
                data = self.base.to_dict()
                data.update(seed=seed, name=f"{self.name} · seed {seed} · {fraction:.0%}" if fraction >= 0.01
                            else f"{self.name} · seed {seed} · {fraction:.2%}")
                data["params"] = {**data.get("params", {}), "train_fraction": fraction,
                                  "subset_seed": self.subset_seed}
                out.append(JobSpec.from_dict(data))
        return out


def _seeds(seeds) -> tuple[int, ...]:
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise SpecError("seeds", f"must be a list of integers, got {seeds!r}")
    seeds = list(seeds)
    if not 1 <= len(seeds) <= MAX_SEEDS:
        raise SpecError("seeds", f"must list 1..{MAX_SEEDS} seeds, got {len(seeds)}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
            raise SpecError("seeds", f"must be integers in 0..{MAX_SEED}, got {s!r}")
    if len(set(seeds)) != len(seeds):
        raise SpecError("seeds", f"must not repeat a seed, got {seeds}")
    return tuple(seeds)


def _fractions(fractions) -> tuple[float, ...]:
    if isinstance(fractions, (str, bytes)) or not hasattr(fractions, "__iter__"):
        raise SpecError("fractions", f"must be a list of numbers in (0, 1], got {fractions!r}")
    fractions = list(fractions)
    if not fractions:
        raise SpecError("fractions", "must list at least one training fraction")
    for f in fractions:
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not math.isfinite(f) or not 0 < f <= 1:
            raise SpecError("fractions", f"must be numbers in (0, 1], got {f!r}")
    if len(set(fractions)) != len(fractions):
        raise SpecError("fractions", f"must not repeat a fraction, got {fractions}")
    return tuple(sorted((float(f) for f in fractions), reverse=True))


def plan_sweep(base: JobSpec | dict, seeds, fractions=DEFAULT_FRACTIONS, *, subset_seed: int = 0,
               name: str | None = None) -> SweepPlan:
    """A validated sweep of fine-tune spec `base`: every member spec is checked before anything is queued."""
    base = base if isinstance(base, JobSpec) else JobSpec.from_dict(base)
    if base.kind not in FRACTION_KINDS:
        raise SpecError("kind", f"a sweep runs fine-tune jobs ({', '.join(FRACTION_KINDS)}), got {base.kind!r}")
    if sweep_task(base.to_dict()) not in SWEEP_METRIC:
        raise SpecError("modality", f"must be one of ecg, cmr for a fine-tune sweep, got {base.modality!r}")
    if "train_fraction" in base.params:
        raise SpecError("params.train_fraction", "is set per member by the sweep's fractions")
    if isinstance(subset_seed, bool) or not isinstance(subset_seed, int) or not 0 <= subset_seed <= MAX_SEED:
        raise SpecError("subset_seed", f"must be an integer in 0..{MAX_SEED}, got {subset_seed!r}")
    seeds, fractions = _seeds(seeds), _fractions(fractions)
    if len(seeds) * len(fractions) > MAX_MEMBERS:
        raise SpecError("seeds", f"{len(seeds)} seeds x {len(fractions)} fractions is {len(seeds) * len(fractions)} "
                                 f"jobs; a sweep has at most {MAX_MEMBERS}")
    what = "phenotype" if base.kind == "finetune_phenotypes" else base.modality.upper()
    name = name or base.name or f"{what} sweep from {base.weights or 'the default baseline'}"
    if not isinstance(name, str) or len(name) > 150:
        raise SpecError("name", "must be a string of at most 150 characters")
    plan = SweepPlan(base, seeds, fractions, subset_seed, name)
    plan.members()  # every member spec validated here
    return plan


def submit_sweep(runner, plan: SweepPlan, *, start: bool = True) -> str:
    """Queue every member of the plan as one group; returns the group id. The group row and the member rows go in
    before any member starts, so the progress view sees the whole group from its first poll."""
    group_id = f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    with runner.store.write() as con:
        con.execute("INSERT INTO job_groups (group_id, kind, name, spec, seeds, fractions, subset_seed, metric) "
                    "VALUES (?, 'sweep', ?, ?, ?, ?, ?, ?)",
                    [group_id, plan.name, plan.base.to_json(), json.dumps(list(plan.seeds)),
                     json.dumps(list(plan.fractions)), plan.subset_seed,
                     SWEEP_METRIC[sweep_task(plan.base.to_dict())]["name"]])
    for spec in plan.members():
        runner.submit(spec, start=False, group_id=group_id)
    if start:
        runner.poll()
    return group_id


def _require(runner, group_id: str) -> None:
    if not runner.store.scalar("SELECT count(*) FROM job_groups WHERE group_id = ?", [group_id]):
        from jobs.runner import JobError
        raise JobError(f"no sweep {group_id!r} in {runner.store.db_path}")


def cancel_sweep(runner, group_id: str, *, wait: bool = False) -> dict[str, str]:
    """Cancel every member that has not ended (queued ones at once, running ones gracefully); job id -> status."""
    _require(runner, group_id)
    members = sweep_members(runner.store, group_id)
    out = {}
    # queued members first, so the scheduler cannot start one while a running one is being stopped
    for m in sorted(members.itertuples(), key=lambda m: m.status != "queued"):
        if m.status in ("queued", "starting", "running"):
            out[m.job_id] = runner.cancel(m.job_id, wait=wait)
    return out


def resume_sweep(runner, group_id: str, *, start: bool = True) -> dict[str, str]:
    """Resume every member whose current job failed or was cancelled (from its last checkpoint, or from the start
    if it never got one); old job id -> new job id. Succeeded and active members are left as they are."""
    _require(runner, group_id)
    out = {}
    for m in sweep_members(runner.store, group_id).itertuples():
        if m.status in ("failed", "cancelled"):
            out[m.job_id] = runner.resume(m.job_id, start=False)
    if start and out:
        runner.poll()
    return out
