"""Multimodal contrastive pre-training (MMCL, method.md §8) as a run: an ECG encoder and a CMR encoder trained
together on a paired cohort's train split, checkpointed every N epochs as an encoder pair.

Training only; what happens to each checkpoint next (the pair's retrieval and joint layout, each encoder's own
analysis) is the caller's hook (pipeline/workflows.py).

Per checkpoint epoch, three files in runs/<run>/checkpoints/epoch_NNNN/: the ECG encoder (ecg.pth, the released
signal-encoder layout, pre-training pooling), the CMR encoder (cmr.pth, the ResNet-50 trunk at its training
size) and both projectors (projectors.pth). They register in one transaction as two weights rows (kind
'checkpoint', family = the run, stage 'mmcl', lineage to the encoders the run started from), two checkpoints
rows and one encoder pair, so a kill in between leaves no half-registered checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from cardio_core.analysis.paired import EncoderPair, register_pair
from cardio_core.catalog import default_mmcl_parent, get_weights, resolve_weights
from cardio_core.errors import CardioError, ParameterError
from cardio_core.pipeline.runs import build_trainer, current_run_id, register_run, write_checkpoint_rows
from cardio_core.store import Store
from cardio_core.training.distributed import is_rank_zero
from cardio_core.vocabulary import PAIRED_COHORT




@dataclass
class PairCheckpointEvent:
    """What the hook of each MMCL checkpoint receives: the registered pair and the models in memory."""
    run_id: str
    pair_id: str
    epoch: int
    ecg_weights_id: str
    cmr_weights_id: str
    module: object          # the MmclPretrainModule (encoders and projectors, as trained so far)
    previous_ecg: str       # the ECG weights before this checkpoint (the run's parent, then each checkpoint)
    previous_cmr: str


Hook = Callable[[PairCheckpointEvent], None]


def mmcl_recipe_for(spec):
    """(name, MmclRecipe) of a spec: its recipe (default 'mmcl') with its overrides, epochs and checkpoint
    interval. A bad value fails here, before any data is read."""
    from cardio_core.training.mmcl_recipes import get_mmcl_recipe
    name = spec.recipe or "mmcl"
    overrides = dict(spec.overrides or {})
    if spec.epochs:
        overrides["max_epochs"] = int(spec.epochs)
    if spec.checkpoint_every:
        overrides["checkpoint_every"] = int(spec.checkpoint_every)
    overrides.setdefault("seed", int(spec.seed))
    try:
        return name, get_mmcl_recipe(name, **overrides)
    except (KeyError, ValueError) as exc:
        raise ParameterError("recipe", str(exc).strip("'\"")) from None


def mmcl_parents(ctx) -> tuple[str, str]:
    """(ECG parent, CMR parent) of an MMCL job: the spec's weights / params.cmr_weights, else the defaults."""
    spec = ctx.spec
    ecg = resolve_weights(ctx.store, ctx.workspace, spec.weights, "ecg") if spec.weights else \
        default_mmcl_parent(ctx.store, "ecg")
    cmr_name = spec.params.get("cmr_weights")
    cmr = resolve_weights(ctx.store, ctx.workspace, cmr_name, "cmr") if cmr_name else \
        default_mmcl_parent(ctx.store, "cmr")
    return ecg, cmr


def _weights_file(store: Store, weights_id: str):
    w = get_weights(store, weights_id)
    return None if w["kind"] == "random" else w["path"]


def register_pair_checkpoint(store: Store, *, run_id: str, job_id: str, epoch: int, step: int, paths: dict,
                             parents: tuple[str, str], metrics: dict, config: dict) -> EncoderPair:
    """Both encoders of an MMCL checkpoint and their pair, in one transaction."""
    from cardio_core.catalog import write_weights_row
    pair = EncoderPair(pair_id=f"{run_id}-e{epoch:04d}", ecg_weights_id=f"{run_id}-e{epoch:04d}-ecg",
                       cmr_weights_id=f"{run_id}-e{epoch:04d}-cmr", projectors_path=str(paths["projectors"]),
                       run_id=run_id, epoch=epoch, family=run_id, stage="mmcl")
    with store.write() as con:
        for modality, wid, parent in (("ecg", pair.ecg_weights_id, parents[0]), ("cmr", pair.cmr_weights_id,
                                                                                 parents[1])):
            write_weights_row(con, weights_id=wid, modality=modality, kind="checkpoint", path=str(paths[modality]),
                              name=f"{run_id} epoch {epoch} ({modality.upper()} encoder, MMCL)",
                              parent_weights_id=parent)
            con.execute("UPDATE weights SET family = ?, stage = 'mmcl' WHERE weights_id = ?", [run_id, wid])
            write_checkpoint_rows(con, weights_id=wid, run_id=run_id, job_id=job_id, epoch=epoch, step=step,
                                  fold=None, path=paths[modality], metrics=metrics, config=config)
        register_pair(con, pair)
    return pair


def pretrain_mmcl(ctx, *, on_checkpoint: Hook | None = None) -> dict:
    """Train an ECG and a CMR encoder contrastively on the paired cohort; every checkpoint registered as a pair."""
    import torch
    from cardio_core.data.paired_view import load_paired_view
    from cardio_core.training.callbacks import (JobProgress, PeriodicEncoderPair, PreciseBatchNorm, ResumeState,
                                                fit_resuming)
    from cardio_core.training.datamodules import PairedDataModule, PairedDataset
    from cardio_core.training.mmcl import MmclPretrainModule, build_mmcl_encoders

    store, spec = ctx.store, ctx.spec
    recipe_name, recipe = mmcl_recipe_for(spec)
    torch.manual_seed(recipe.seed)
    run_id = current_run_id(ctx)
    ecg_parent, cmr_parent = mmcl_parents(ctx)
    train = load_paired_view(store, "train")
    val = load_paired_view(store, "val")
    if len(train.subject_ids) < 2:
        raise CardioError(f"contrastive pre-training needs an ingested paired cohort (cardio ingest paired PATH, or "
                          f"cardio setup for the demo); found {len(train.subject_ids)} usable training pairs")
    index = np.arange(len(train.subject_ids))
    if recipe.train_subset and recipe.train_subset < len(index):
        # a seeded subset (the demo's budget on 2 CPU cores), independent of the query's row order
        order = np.argsort(np.asarray(train.subject_ids, dtype=str), kind="stable")
        index = np.sort(order[np.random.default_rng(recipe.seed).permutation(len(order))[:recipe.train_subset]])
    ecg, cmr, reports = build_mmcl_encoders(_weights_file(store, ecg_parent), _weights_file(store, cmr_parent),
                                            signal_length=recipe.crop_length, seed=recipe.seed,
                                            cmr_size=recipe.cmr_size)
    dm = PairedDataModule(train.ecg.arrays, train.cmr.arrays, train_index=index,
                          val_ecg=val.ecg.arrays if len(val.subject_ids) else None,
                          val_cmr=val.cmr.arrays if len(val.subject_ids) else None, **recipe.datamodule_kwargs())
    module = MmclPretrainModule(ecg, cmr, **recipe.module_kwargs())
    config = {"recipe_name": recipe_name, "recipe": recipe.to_dict(), "spec": spec.to_dict(),
              "parent_weights_id": ecg_parent, "cmr_parent_weights_id": cmr_parent, "n_train_pairs": int(len(index)),
              "load_report": {k: (v.to_dict() if v is not None else None) for k, v in reports.items()}}
    if is_rank_zero(ctx):
        register_run(store, run_id, ctx.job_id, "paired", PAIRED_COHORT, recipe_name, config, ecg_parent)
    ckpt_dir = ctx.workspace.runs_dir / run_id / "checkpoints"
    previous = {"ecg": ecg_parent, "cmr": cmr_parent}
    if ctx.resume_from:
        prev = store.query("SELECT p.ecg_weights_id, p.cmr_weights_id FROM encoder_pairs p "
                           "JOIN analysis_complete a ON a.weights_id = p.pair_id WHERE p.run_id = ? "
                           "ORDER BY p.epoch DESC LIMIT 1", [run_id])
        if prev:
            previous = {"ecg": prev[0][0], "cmr": prev[0][1]}

    def on_save(paths: dict, meta: dict) -> None:
        epoch = meta["epoch"]
        pair = register_pair_checkpoint(store, run_id=run_id, job_id=ctx.job_id, epoch=epoch,
                                        step=meta["global_step"], paths=paths, parents=(ecg_parent, cmr_parent),
                                        metrics=meta.get("metrics"), config=config)
        ctx.report_progress(message=f"analysing MMCL checkpoint epoch {epoch}", force=True)
        if on_checkpoint is not None:
            was_training = module.training
            try:
                on_checkpoint(PairCheckpointEvent(run_id, pair.pair_id, epoch, pair.ecg_weights_id,
                                                  pair.cmr_weights_id, module, previous["ecg"], previous["cmr"]))
            finally:
                module.train(was_training)
        previous.update(ecg=pair.ecg_weights_id, cmr=pair.cmr_weights_id)

    saver = PeriodicEncoderPair(ckpt_dir, recipe.checkpoint_every,
                                extra_meta={"run_id": run_id, "ecg_parent_weights_id": ecg_parent,
                                            "cmr_parent_weights_id": cmr_parent},
                                on_save=on_save)
    resume = ResumeState(ckpt_dir / "resume.ckpt", recipe.checkpoint_every,
                         on_written=lambda path, epoch, step: ctx.register_checkpoint(path, epoch=epoch, step=step))
    callbacks = [saver, resume, JobProgress(ctx, recipe.max_epochs, "contrastive ECG-CMR pre-training")]
    if recipe.precise_bn:
        # the training pairs' images, unaugmented, at the encoder's input size
        train_pairs = PairedDataset(dm.train_dataset.ecg_arrays, dm.train_dataset.cmr_arrays, train=False,
                                    crop_length=recipe.crop_length, cmr_size=recipe.cmr_size)
        callbacks.insert(0, PreciseBatchNorm(train_pairs, attribute="cmr_encoder", input_index=1,
                                             batch_size=recipe.batch_size))
    trainer = build_trainer(ctx, max_epochs=recipe.max_epochs, callbacks=callbacks)
    fit_resuming(trainer, module, datamodule=dm, resume_from=ctx.resume_from)
    return {"run_id": run_id, "pairs": [str(p) for p in saver.saved], "parents": [ecg_parent, cmr_parent]}
