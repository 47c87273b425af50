"""Fine-tuning runs: data from the store, a Lightning fit, every checkpoint written and registered with lineage.

Training only: what happens to a checkpoint next (embeddings, metrics, projections) is the
caller's `on_checkpoint` hook (see pipeline/workflows.py), so a job composes its steps.

Under DDP every rank runs these functions; rank zero alone registers the run and (through the
callbacks) writes, registers and hands on each checkpoint while the other ranks wait.

Two files per checkpoint epoch: a CardioScope weights file (epoch_NNNN.pth, the model
only: what the catalogue, embeddings and the app load) and the Lightning state
(resume.ckpt: optimiser, schedule, epoch) a resumed job continues from. Both are written
to a temporary name and renamed; the resume point is registered only after the
checkpoint has been registered and handed to the hook, so a job killed in between
resumes from the previous one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from cardio_core import labels as L
from cardio_core.catalog import get_weights, resolve_weights
from cardio_core.data.dataset_view import load_view
from cardio_core.data.splits import nested_subset
from cardio_core.errors import CardioError, ParameterError
from cardio_core.pipeline.runs import (CheckpointEvent, build_trainer, current_run_id, read_json, recipe_for,
                                       register_checkpoint, register_run, write_json)
from cardio_core.training.distributed import is_rank_zero

Hook = Callable[[CheckpointEvent], None]


def parent_weights(ctx, modality: str) -> str:
    """The weights a run starts from: the spec's weights (id or file name), else the default baseline."""
    return resolve_weights(ctx.store, ctx.workspace, ctx.spec.weights, modality)


def starting_model(store, parent_id: str, recipe, num_classes: int):
    """The recipe's model with the parent's encoder loaded (the head of a parent fine-tune is not this task's head)."""
    from cardio_core.training.modules import build_model
    w = get_weights(store, parent_id)
    path = w.get("path") if w["kind"] != "random" else None
    model, report = build_model(recipe, path, num_classes=num_classes, load_head=False)
    return model, (report.to_dict() if report is not None else None)


def handle_checkpoint(module, hook: Hook | None, event: CheckpointEvent) -> None:
    if hook is None:
        return
    was_training = module.training
    try:
        hook(event)
    finally:
        module.train(was_training)


def train_fraction_of(params) -> tuple[float | None, int]:
    """(params.train_fraction, params.subset_seed) of a label-efficiency run (a sweep's member, 1.0 included);
    (None, subset seed) for a run that is not one."""
    fraction = params.get("train_fraction")
    if fraction is None:
        return None, int(params.get("subset_seed") or 0)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ParameterError("params.train_fraction", f"must be a number in (0, 1], got {fraction!r}")
    return float(fraction), int(params.get("subset_seed") or 0)


def _train_fraction(train, params, strata):
    """The nested, stratified share of the train split a label-efficiency run trains on (data.splits.nested_subset:
    chosen by the sweep's subset seed, the same for every training seed of the sweep)."""
    fraction, subset_seed = train_fraction_of(params)
    if fraction is None or fraction == 1:
        return train
    return train.subset(nested_subset(train.records["record_id"], strata, fraction, seed=subset_seed))


def _train_subset(train, limit, seed: int):
    """A seeded subset of the train split (params.max_train_records: the demo's budget on 2 CPU cores)."""
    if limit is None:
        return train
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ParameterError("params.max_train_records", f"must be a positive integer, got {limit!r}")
    if limit >= len(train.records):
        return train
    keep = np.zeros(len(train.records), dtype=bool)
    keep[np.random.default_rng(seed).choice(len(keep), size=limit, replace=False)] = True
    return train.subset(keep)


def whole_run_checkpoints(ctx, *, run_id: str, parent_id: str, recipe, module, config: dict,
                          on_checkpoint: Hook | None, extra_meta: dict, name_suffix: str = ""):
    """(PeriodicCheckpoint, ResumeState) of a run trained as one model (an ECG fine-tune, on labels or phenotypes):
    each checkpoint registered with its lineage and handed to `on_checkpoint` with the checkpoint before it (a
    resumed run: its last analysed one), then the resume state written (see the module docstring)."""
    from cardio_core.training.callbacks import PeriodicCheckpoint, ResumeState
    store = ctx.store
    ckpt_dir = ctx.workspace.runs_dir / run_id / "checkpoints"
    previous = [parent_id]
    if ctx.resume_from:
        prev = store.query("SELECT c.weights_id FROM checkpoints c JOIN analysis_complete USING (weights_id) "
                           "WHERE c.run_id = ? AND c.fold IS NULL ORDER BY c.epoch DESC LIMIT 1", [run_id])
        if prev:
            previous[0] = prev[0][0]

    def on_save(path: Path, meta: dict) -> None:
        epoch = meta["epoch"]
        wid = f"{run_id}-e{epoch:04d}"
        register_checkpoint(store, weights_id=wid, run_id=run_id, job_id=ctx.job_id, epoch=epoch,
                            step=meta["global_step"], fold=None, path=path, modality="ecg", parent_id=parent_id,
                            name=f"{run_id} epoch {epoch}{name_suffix}", metrics=meta.get("metrics"), config=config)
        ctx.report_progress(message=f"analysing checkpoint epoch {epoch}", force=True)
        event = CheckpointEvent(run_id, wid, epoch, meta["global_step"], None, path, module.model, parent_id,
                                previous[0])
        handle_checkpoint(module, on_checkpoint, event)
        previous[0] = wid

    saver = PeriodicCheckpoint(ckpt_dir, recipe.checkpoint_every,
                               extra_meta={"run_id": run_id, "parent_weights_id": parent_id, **extra_meta},
                               on_save=on_save)
    resume = ResumeState(ckpt_dir / "resume.ckpt", recipe.checkpoint_every,
                         on_written=lambda path, epoch, step: ctx.register_checkpoint(path, epoch=epoch, step=step))
    return saver, resume


# -- ECG -----------------------------------------------------------------------------

def _classes_of(view):
    """Each record's class names (rows of its 0/1 target matrix)."""
    return [[c for c, y in zip(view.classes, row) if y] for row in view.Y]


def finetune_ecg(ctx, *, parent_id: str | None = None, on_checkpoint: Hook | None = None) -> dict:
    import torch
    from cardio_core.training.callbacks import JobProgress, early_stopping, fit_resuming
    from cardio_core.training.datamodules import ChapmanDataModule
    from cardio_core.training.modules import compute_pos_weight, make_module

    store, spec = ctx.store, ctx.spec
    recipe_name, recipe = recipe_for(spec, "ecg")
    torch.manual_seed(recipe.seed)
    run_id = current_run_id(ctx)
    parent_id = parent_id or parent_weights(ctx, "ecg")

    view = load_view(store, "chapman")
    split = view.records["split"].to_numpy()
    train, val, test = (view.subset(split == s) for s in ("train", "val", "test"))
    if len(train.records) == 0 or len(val.records) == 0:
        raise CardioError("the Chapman dataset has no train/val split yet (cardio setup / cardio ingest chapman)")
    fraction, subset_seed = train_fraction_of(spec.params)
    # a label-efficiency run's budget subset is drawn by the subset seed, so its training seeds share one 100 %
    train = _train_subset(train, spec.params.get("max_train_records"), recipe.seed if fraction is None else subset_seed)
    train = _train_fraction(train, spec.params, [L.rhythm_of(c) for c in _classes_of(train)])
    model, load_report = starting_model(store, parent_id, recipe, len(L.CLASSES))
    dm = ChapmanDataModule((train.arrays, train.Y), (val.arrays, val.Y), (test.arrays, test.Y),
                           batch_size=recipe.batch_size, crop_length=recipe.crop_length,
                           augment=recipe.ecg_augment() if recipe.augment else False)
    module = make_module(recipe, model, pos_weight=compute_pos_weight(train.Y))
    config = {"recipe_name": recipe_name, "recipe": recipe.to_dict(), "spec": spec.to_dict(),
              "parent_weights_id": parent_id, "load_report": load_report, "n_train": len(train.records),
              "train_fraction": fraction or 1.0, "subset_seed": subset_seed}
    if is_rank_zero(ctx):  # under DDP, rank zero writes the store; the callbacks call on_save there only
        register_run(store, run_id, ctx.job_id, "ecg", "chapman", recipe_name, config, parent_id)
    saver, resume = whole_run_checkpoints(ctx, run_id=run_id, parent_id=parent_id, recipe=recipe, module=module,
                                          config=config, on_checkpoint=on_checkpoint,
                                          extra_meta={"head_trained": True})
    trainer = build_trainer(ctx, max_epochs=recipe.max_epochs, validate_every=recipe.validation_interval,
                            callbacks=[saver, resume, JobProgress(ctx, recipe.max_epochs, "fine-tuning ECG"),
                                       *early_stopping(recipe.patience, recipe.monitor)])
    fit_resuming(trainer, module, datamodule=dm, resume_from=ctx.resume_from)
    return {"run_id": run_id, "checkpoints": [str(p) for p in saver.saved]}


# -- CMR -----------------------------------------------------------------------------

class FoldsDone:
    """Which cross-validation folds of a run have finished (runs/<run>/folds_done.json, written atomically)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "folds_done.json"
        try:
            self.done = {int(f) for f in read_json(self.path, [])}
        except (CardioError, TypeError, ValueError):
            self.done = set()  # damaged: the folds are trained again (and the file rewritten whole)

    def __contains__(self, fold: int) -> bool:
        return fold in self.done

    def add(self, fold: int) -> None:
        self.done.add(int(fold))
        write_json(self.path, sorted(self.done))


def _fold_train_keep(view, labels, folds_of_record, fold: int, fraction, subset_seed: int):
    """Which records of fold `fold`'s training patients a label-efficiency run trains on: a nested share of them,
    stratified on the ACDC group (None: all of them)."""
    if fraction is None or fraction == 1:
        return None
    train = np.flatnonzero(folds_of_record != fold)
    keep = np.zeros(len(labels), dtype=bool)
    keep[train[nested_subset(view.records["record_id"].to_numpy()[train], labels[train], fraction,
                             seed=subset_seed)]] = True
    return keep


def finetune_cmr(ctx, *, parent_id: str | None = None, on_checkpoint: Hook | None = None) -> dict:
    """One model per cross-validation fold, trained on the other folds; returns the folds trained."""
    import torch
    from cardio_core.training.callbacks import (JobProgress, PeriodicCheckpoint, PreciseBatchNorm, ResumeState,
                                                early_stopping, fit_resuming)
    from cardio_core.training.datamodules import AcdcFoldDataModule, CmrDataset
    from cardio_core.training.modules import make_module

    store, spec = ctx.store, ctx.spec
    recipe_name, recipe = recipe_for(spec, "cmr")
    run_id = current_run_id(ctx)
    parent_id = parent_id or parent_weights(ctx, "cmr")
    view = load_view(store, "acdc")
    labels = view.Y.argmax(1).astype(np.int64)
    folds_of_record = view.records["fold"].to_numpy().astype(int)
    folds = spec.folds or sorted(set(folds_of_record.tolist()))
    fraction, subset_seed = train_fraction_of(spec.params)
    train_keep = {k: _fold_train_keep(view, labels, folds_of_record, k, fraction, subset_seed) for k in folds}
    n_train = {k: int(((folds_of_record != k) & (True if keep is None else keep)).sum())
               for k, keep in train_keep.items()}
    config = {"recipe_name": recipe_name, "recipe": recipe.to_dict(), "spec": spec.to_dict(),
              "parent_weights_id": parent_id, "folds": folds, "train_fraction": fraction or 1.0,
              "subset_seed": subset_seed, "n_train": sum(n_train.values()), "n_train_per_fold": n_train}
    if is_rank_zero(ctx):
        register_run(store, run_id, ctx.job_id, "cmr", "acdc", recipe_name, config, parent_id)
    run_dir = ctx.workspace.runs_dir / run_id
    done = FoldsDone(run_dir)
    resume_fold = None
    if ctx.resume_from and Path(ctx.resume_from).parent.name.startswith("fold"):
        resume_fold = int(Path(ctx.resume_from).parent.name[4:])
    images = np.stack([view.arrays[i] for i in range(len(view.arrays))])

    for k in folds:
        if k in done:
            continue
        torch.manual_seed(recipe.seed + k)
        model, _ = starting_model(store, parent_id, recipe, len(L.ACDC_GROUPS))
        dm = AcdcFoldDataModule(images, labels, folds_of_record, k, batch_size=recipe.batch_size,
                                augment=recipe.cmr_augment() if recipe.augment else False,
                                train_keep=train_keep[k])
        module = make_module(recipe, model)
        fold_dir = run_dir / "checkpoints" / f"fold{k}"

        def on_save(path: Path, meta: dict, k=k, module=module, val_index=dm.val_index) -> None:
            epoch = meta["epoch"]
            wid = f"{run_id}-f{k}-e{epoch:04d}"
            register_checkpoint(store, weights_id=wid, run_id=run_id, job_id=ctx.job_id, epoch=epoch,
                                step=meta["global_step"], fold=k, path=path, modality="cmr", parent_id=parent_id,
                                name=f"{run_id} fold {k} epoch {epoch}", metrics=meta.get("metrics"), config=config)
            event = CheckpointEvent(run_id, wid, epoch, meta["global_step"], k, path, module.model, parent_id, None,
                                    val_index=val_index)
            handle_checkpoint(module, on_checkpoint, event)

        saver = PeriodicCheckpoint(fold_dir, recipe.checkpoint_every,
                                   extra_meta={"run_id": run_id, "fold": k, "head_trained": True,
                                               "parent_weights_id": parent_id}, on_save=on_save)
        resume = ResumeState(fold_dir / "resume.ckpt", recipe.checkpoint_every,
                             on_written=lambda path, epoch, step: ctx.register_checkpoint(path, epoch=epoch, step=step))
        callbacks = [saver, resume, JobProgress(ctx, recipe.max_epochs, f"fine-tuning CMR fold {k}"),
                     *early_stopping(recipe.patience, recipe.monitor)]
        if recipe.precise_bn and not recipe.linear_probe:   # a linear probe keeps its frozen encoder's statistics
            train_images = CmrDataset(images[dm.train_index], labels[dm.train_index], train=False)
            callbacks.insert(0, PreciseBatchNorm(train_images, attribute="model", batch_size=recipe.batch_size))
        trainer = build_trainer(ctx, max_epochs=recipe.max_epochs, callbacks=callbacks,
                                validate_every=recipe.validation_interval)
        fit_resuming(trainer, module, datamodule=dm, resume_from=ctx.resume_from if resume_fold == k else None)
        if ctx.should_stop():
            return {"run_id": run_id, "stopped_in_fold": k, "folds": sorted(done.done)}
        if is_rank_zero(ctx):
            done.add(k)
        else:
            done.done.add(k)
    return {"run_id": run_id, "folds": sorted(done.done), "config": config}
