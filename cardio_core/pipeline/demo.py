"""The demo chain as one background job: data -> baselines (MDM) -> contrastive ECG-CMR pre-training (MMCL)
-> ECG fine-tune -> CMR 5-fold fine-tune -> report, each step skipped when already done (so a resumed demo
goes on).

A resumed demo job continues its own runs: run ids come from the first job of the resume
chain, "done" is each run's completeness mark (runs.completed_at, written after its last
checkpoint is analysed), and a run left half-way continues from its own resume state.

Without released weights in <workspace>/weights/, the ECG baseline is pre-trained here with
masked data modelling; with released files present, the chain starts from them instead. The MMCL
stage then trains the ECG encoder on from that baseline together with a CMR encoder (from the
released SimCLR image encoder when present, else random) on the paired demo cohort, and the ACDC
fine-tune starts from its image encoder, so the CMR baseline is that encoder (method.md §8). The
ECG fine-tune starts from the ECG baseline, as the thesis's did.
"""
from __future__ import annotations

from pathlib import Path

from cardio_core import faults
from cardio_core.pipeline.runs import StepSpec, read_json, run_complete, run_id_of

STEPS = ("demo data and ingest", "baselines", "MMCL pre-training", "ECG fine-tune", "CMR fine-tune (5 folds)",
         "report")

# Sizes of the chain per demo size; every value can be overridden through spec.params.
# The default is sized for 2 CPU cores (the goal is 15 minutes; measured 23 min 24 s on 2026-12-06, see the
# README): the ECG ViT trains at about 5-8 samples/s there, so the fine-tune sees a seeded subset of the train split.
PLANS = {
    "default": {"mdm_epochs": 1, "mmcl_epochs": 6, "mmcl_train_pairs": 0, "ecg_epochs": 6, "ecg_every": 3,
                "ecg_train_records": 400, "cmr_epochs": 3, "cmr_every": 1},
    "tiny": {"mdm_epochs": 1, "mmcl_epochs": 1, "mmcl_train_pairs": 0, "ecg_epochs": 2, "ecg_every": 1,
             "ecg_train_records": 60, "cmr_epochs": 1, "cmr_every": 1},
}


class StepContext:
    """The demo job's context, seen by one step as if it were its own job."""

    def __init__(self, ctx, spec, run_id: str, step: int):
        self._ctx, self.spec, self.run_id, self._step = ctx, spec, run_id, step
        self._resume_from = resume_point(ctx.workspace.runs_dir / run_id, spec)

    def __getattr__(self, name):
        return getattr(self._ctx, name)

    def report_progress(self, *, message=None, **kw):
        # epochs and steps of this step count within its stage; the job's fraction spans all stages
        self._ctx.report_progress(message=message or STEPS[self._step],
                                  stage=(self._step, len(STEPS), STEPS[self._step]), **kw)

    @property
    def resume_from(self):
        return self._resume_from


def resume_point(run_dir: Path, spec) -> Path | None:
    """The resume state a step of an interrupted demo continues from: written only after the checkpoint
    before it was registered and analysed, so nothing past it is skipped."""
    if spec.kind == "pretrain":
        path = run_dir / "resume.ckpt"
        return path if path.is_file() else None
    if spec.kind == "pretrain_mmcl" or spec.modality == "ecg":
        path = run_dir / "checkpoints" / "resume.ckpt"
        return path if path.is_file() else None
    done = {int(f) for f in _safe_json(run_dir / "folds_done.json", [])}
    for fold_dir in sorted((run_dir / "checkpoints").glob("fold*")):
        if fold_dir.name[4:].isdigit() and int(fold_dir.name[4:]) not in done and (fold_dir / "resume.ckpt").is_file():
            return fold_dir / "resume.ckpt"
    return None


def _safe_json(path: Path, default):
    try:
        return read_json(path, default)
    except Exception:  # a corrupt run file: the fine-tune itself reports it and starts those folds over
        return default


def _done(store, run_id: str) -> bool:
    return run_complete(store, run_id)


def run_demo_chain(ctx) -> dict:
    """The demo chain inside one job (ctx: the demo job's context; its spec's params size the chain)."""
    from cardio_core.analysis.analyse import ensure_analysed
    from cardio_core.analysis.projections import configure_numba_cache
    from cardio_core.catalog import default_mmcl_parent, default_parent, scan_weights_dir
    from cardio_core.queries.paired import cohort_size
    from cardio_core.pipeline import workflows
    from cardio_core.pipeline.setup import prepare_workspace
    from cardio_core.report import write_report

    spec = ctx.spec
    configure_numba_cache(ctx.workspace.cache_dir)
    store, ws = ctx.store, ctx.workspace
    size = spec.params.get("size", "default")
    plan = {**PLANS.get(size, PLANS["default"]), **{k: v for k, v in spec.params.items() if k in PLANS["default"]}}
    device = spec.device
    out = {"job_id": ctx.job_id}
    root = run_id_of(store, ctx.job_id)  # a resumed demo job continues the runs of the first one

    def progress(step, message=""):
        faults.point(f"demo:step{step}")
        ctx.report_progress(stage=(step, len(STEPS), STEPS[step]), message=message or STEPS[step], force=True)

    progress(0)
    prepare_workspace(ws, size=size if size in ("tiny", "default") else "default", seed=spec.seed)
    if ctx.should_stop():
        return out

    progress(1)
    scan_weights_dir(store, ws)
    ecg_parent = default_parent(store, "ecg")
    if ecg_parent.startswith("random-"):
        mdm_id = f"{root}-pretrain"
        sub = StepSpec(kind="pretrain", modality="ecg", dataset="chapman", epochs=plan["mdm_epochs"],
                       checkpoint_every=plan["mdm_epochs"], device=device, seed=spec.seed)
        workflows.pretrain(StepContext(ctx, sub, mdm_id, 1))
        ecg_parent = f"{mdm_id}-mdm"
    else:
        ensure_analysed(store, ecg_parent)
    cmr_parent = default_mmcl_parent(store, "cmr")
    out["baselines"] = {"ecg": ecg_parent, "cmr": cmr_parent}
    if ctx.should_stop():
        return out

    progress(2)
    if cohort_size(store):
        mmcl_run = f"{root}-mmcl"
        if not _done(store, mmcl_run):
            sub = StepSpec(kind="pretrain_mmcl", dataset="paired", weights=ecg_parent, recipe="demo_mmcl",
                           epochs=plan["mmcl_epochs"], checkpoint_every=plan["mmcl_epochs"], device=device,
                           seed=spec.seed, params={"cmr_weights": cmr_parent},
                           overrides={"train_subset": plan["mmcl_train_pairs"]} if plan["mmcl_train_pairs"] else {})
            workflows.pretrain_mmcl(StepContext(ctx, sub, mmcl_run, 2))
        if ctx.should_stop():
            return out
        last = store.query("SELECT cmr_weights_id FROM encoder_pairs WHERE run_id = ? ORDER BY epoch DESC LIMIT 1",
                           [mmcl_run])
        if last:
            cmr_parent = last[0][0]
            out["mmcl"] = {"run": mmcl_run, "cmr": cmr_parent}
    ensure_analysed(store, cmr_parent)
    out["baselines"]["cmr"] = cmr_parent

    progress(3)
    ecg_run = f"{root}-ecg"
    if not _done(store, ecg_run):
        sub = StepSpec(kind="finetune", modality="ecg", dataset="chapman", weights=ecg_parent, recipe="demo_ecg",
                       epochs=plan["ecg_epochs"], checkpoint_every=plan["ecg_every"], device=device, seed=spec.seed,
                       params={"max_train_records": plan["ecg_train_records"]})
        workflows.finetune(StepContext(ctx, sub, ecg_run, 3))
    if ctx.should_stop():
        return out

    progress(4)
    cmr_run = f"{root}-cmr"
    if not _done(store, cmr_run):
        sub = StepSpec(kind="finetune", modality="cmr", dataset="acdc", weights=cmr_parent, recipe="demo_cmr",
                       epochs=plan["cmr_epochs"], checkpoint_every=plan["cmr_every"], device=device, seed=spec.seed)
        workflows.finetune(StepContext(ctx, sub, cmr_run, 4))
    if ctx.should_stop():
        return out

    progress(5)
    for run in (ecg_run, cmr_run):
        write_report(store, run, ws.runs_dir / run / "report")
    out["runs"] = [ecg_run, cmr_run]
    ctx.report_progress(stage=(len(STEPS) - 1, len(STEPS), STEPS[-1]), step=1, total_steps=1, message="done",
                        force=True)
    return out
