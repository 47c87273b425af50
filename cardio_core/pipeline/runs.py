"""What every training run shares: its id and lineage rows, the recipe of a spec, the Trainer, run files.

A run is what one fine-tune or pre-training produces: a `runs` row (recipe, full config,
parent weights) and its checkpoints, each registered as weights with lineage. The
functions take the job's context (`ctx`: store, workspace, job_id, spec, job_dir,
resume_from, report_progress, should_stop, register_checkpoint, trainer_kwargs; see
jobs/worker.py) and the spec's fields by name, so the library needs nothing from jobs/.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardio_core.catalog import write_weights_row
from cardio_core.errors import ParameterError
from cardio_core.store import Store, to_json
from cardio_core.vocabulary import SELECTION_METRIC


@dataclass
class StepSpec:
    """The fields of a job spec a pipeline step reads (jobs.spec.JobSpec has the same ones).

    Used by the demo chain to run a step with its own settings inside one job."""
    kind: str
    modality: str | None = None
    dataset: str | None = None
    weights: str | None = None
    recipe: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    checkpoint_every: int | None = None
    device: str = "auto"
    seed: int = 0
    folds: list[int] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    devices: int = 1

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict
        return asdict(self)


@dataclass
class CheckpointEvent:
    """A checkpoint a training step has written and registered, handed to the job's hook (e.g. analysis)."""
    run_id: str
    weights_id: str
    epoch: int
    step: int
    fold: int | None
    path: Path
    model: Any                       # the model in memory (the one being trained)
    parent_weights_id: str
    previous_weights_id: str | None  # the run's previous checkpoint (or the parent): layouts align to it
    val_index: Any = None            # CMR: positions of the fold's validation records in the ACDC view


def run_id_of(store: Store, job_id: str) -> str:
    """A resumed job continues its original run: follow resume_of back to the first job."""
    current = job_id
    for _ in range(100):
        row = store.query("SELECT resume_of FROM jobs WHERE job_id = ?", [current])
        if not row or not row[0][0]:
            return current
        current = row[0][0]
    return current


def current_run_id(ctx) -> str:
    """The run a step writes: set by the demo chain for its steps, else the job's (original) id."""
    return getattr(ctx, "run_id", None) or run_id_of(ctx.store, ctx.job_id)


def recipe_for(spec, modality: str):
    """(preset name, Recipe) of a spec: its preset with epochs, checkpoint interval, seed and overrides applied."""
    from cardio_core.training.recipes import get_recipe
    from cardio_core.vocabulary import DEMO_RECIPES
    name = spec.recipe or DEMO_RECIPES[modality]
    overrides = dict(spec.overrides)
    overrides["max_epochs"] = spec.epochs
    overrides["checkpoint_every"] = spec.checkpoint_every or min(10, spec.epochs)
    overrides["seed"] = spec.seed
    try:
        recipe = get_recipe(name, **overrides)
    except ValueError as exc:
        raise ParameterError("overrides" if "recipe" not in str(exc) else "recipe", str(exc)) from None
    if recipe.modality != modality:
        raise ParameterError("recipe", f"preset {name!r} is for {recipe.modality.upper()}, the job is {modality.upper()}")
    return name, recipe


def register_run(store: Store, run_id, job_id, modality, dataset_id, recipe_name, config, parent_id, fold=None) -> None:
    with store.write() as con:
        con.execute("DELETE FROM runs WHERE run_id = ?", [run_id])
        con.execute("INSERT INTO runs (run_id, job_id, modality, dataset_id, recipe, config, parent_weights_id, fold) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [run_id, job_id, modality, dataset_id, recipe_name, to_json(config), parent_id, fold])
        mark_best_checkpoint(con, run_id)   # a resumed run keeps the best of its earlier checkpoints


def mark_best_checkpoint(con, run_id: str) -> str | None:
    """Mark the run's best checkpoint (runs.best_weights_id) among its whole-run checkpoints (fold IS NULL):
    the highest SELECTION_METRIC of its dataset (else of its modality), the earliest epoch on a tie. Inside the
    caller's transaction."""
    row = con.execute("SELECT modality, dataset_id FROM runs WHERE run_id = ?", [run_id]).fetchone()
    if row is None:
        return None
    metric = SELECTION_METRIC.get(row[1]) or SELECTION_METRIC.get(row[0])
    best = con.execute(
        "SELECT weights_id, TRY_CAST(json_extract(val_metrics, '$.\"' || ? || '\"') AS DOUBLE) AS v "
        "FROM checkpoints WHERE run_id = ? AND fold IS NULL AND v IS NOT NULL ORDER BY v DESC, epoch LIMIT 1",
        [metric, run_id]).fetchone()
    con.execute("UPDATE runs SET best_weights_id = ?, best_metric = ?, best_value = ? WHERE run_id = ?",
                [best[0] if best else None, metric, best[1] if best else None, run_id])
    return best[0] if best else None


def complete_run(store: Store, run_id: str) -> None:
    """The run's completeness mark, written last: every checkpoint trained, registered and analysed."""
    store.execute("UPDATE runs SET completed_at = current_timestamp WHERE run_id = ?", [run_id])


def run_complete(store: Store, run_id: str) -> bool:
    return bool(store.scalar("SELECT count(*) FROM runs WHERE run_id = ? AND completed_at IS NOT NULL", [run_id]))


def register_checkpoint(store: Store, *, weights_id, run_id, job_id, epoch, step, fold, path, modality,
                        parent_id, name, metrics, config) -> None:
    """The checkpoint's weights row and checkpoints row, in one transaction; the run's best checkpoint re-marked."""
    with store.write() as con:
        write_weights_row(con, weights_id=weights_id, modality=modality, name=name, kind="checkpoint",
                         path=str(path) if path else None, parent_weights_id=parent_id)
        write_checkpoint_rows(con, weights_id=weights_id, run_id=run_id, job_id=job_id, epoch=epoch, step=step,
                              fold=fold, path=path, metrics=metrics, config=config)
        if fold is None:
            mark_best_checkpoint(con, run_id)


def write_checkpoint_rows(con, *, weights_id, run_id, job_id, epoch, step, fold, path, metrics, config) -> None:
    """The checkpoints row of registered weights, inside the caller's write transaction."""
    con.execute("DELETE FROM checkpoints WHERE weights_id = ?", [weights_id])
    con.execute("INSERT INTO checkpoints (weights_id, run_id, job_id, epoch, step, fold, path, val_metrics, config) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [weights_id, run_id, job_id, epoch, step, fold, str(path) if path else "",
                 to_json(metrics or {}), to_json(config)])


def training_precision(cuda: bool) -> str:
    """bf16 mixed precision on CUDA, and on CPUs with native bf16 (AVX512-BF16/AMX: ~1.6x faster
    training of the ECG ViT measured here); full fp32 elsewhere. CARDIO_CPU_BF16=0 turns the CPU case off."""
    import torch
    if cuda:
        return "bf16-mixed"
    native = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()
    return "bf16-mixed" if native and os.environ.get("CARDIO_CPU_BF16", "1") != "0" else "32-true"


def build_trainer(ctx, *, max_epochs: int, callbacks: list, validate_every: int = 1):
    """The Lightning Trainer of a job: its accelerator, devices and strategy (ctx.trainer_kwargs()),
    our own checkpointing and progress instead of Lightning's."""
    import lightning as Lg
    import torch
    kwargs = ctx.trainer_kwargs()
    cuda = kwargs["accelerator"] in ("gpu", "auto") and torch.cuda.is_available()
    if kwargs["accelerator"] == "auto":
        kwargs["accelerator"] = "gpu" if cuda else "cpu"
    if kwargs.get("strategy") == "ddp":
        # NCCL on GPUs, gloo on CPUs; barriers wait while rank zero analyses a checkpoint (see BARRIER_TIMEOUT)
        from lightning.pytorch.strategies import DDPStrategy
        from cardio_core.training.distributed import BARRIER_TIMEOUT
        # find_unused_parameters: the ViT's final `norm` is unused under attention pooling (no gradient)
        kwargs["strategy"] = DDPStrategy(timeout=BARRIER_TIMEOUT, find_unused_parameters=True)
    return Lg.Trainer(max_epochs=max_epochs, callbacks=callbacks, logger=False, enable_checkpointing=False,
                      enable_model_summary=False, enable_progress_bar=False, default_root_dir=str(ctx.job_dir),
                      precision=training_precision(cuda), deterministic=False, num_sanity_val_steps=0,
                      check_val_every_n_epoch=validate_every, **kwargs)


def read_json(path: Path, default):
    """A run file written by write_json; `default` when it does not exist yet."""
    path = Path(path)
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:  # e.g. truncated by a version that wrote in place
        from cardio_core.errors import RecordError
        raise RecordError(path, f"not valid JSON ({exc}); the run file is damaged") from None


def write_json(path: Path, value) -> Path:
    """Write a run file atomically (temporary name, fsync, rename): a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        fh.write(json.dumps(value, sort_keys=True))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
