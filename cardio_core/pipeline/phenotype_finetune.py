"""Fine-tuning the ECG encoder to predict CMR phenotypes on a paired cohort (issue 13; method.md §8: "fine-tuning
... early stopping on val ... Pearson r (regression)").

The paired cohort's train subjects train, its val subjects choose (the run's best checkpoint and early stopping,
on the mean validation Pearson r over the phenotypes), its test subjects score (analysis.phenotypes). Targets are
standardised with the training subjects' mean and SD; both are written into every checkpoint's metadata, so any
later reader of the file turns the head's outputs back into mL, %, g and L/min.

Training only, as pipeline/finetune.py: what happens to a checkpoint next is the caller's `on_checkpoint` hook.
"""
from __future__ import annotations

import warnings

import numpy as np

from cardio_core.data.splits import nested_subset
from cardio_core.errors import CardioError
from cardio_core.pipeline.finetune import Hook, starting_model, train_fraction_of, whole_run_checkpoints
from cardio_core.pipeline.runs import build_trainer, current_run_id, recipe_for, register_run
from cardio_core.training.distributed import is_rank_zero
from cardio_core.vocabulary import PAIRED_DATASETS

TASK = "phenotypes"          # the checkpoint metadata's `task` of a phenotype regressor


def target_scaling(Y_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-phenotype mean and SD of the training targets, over the subjects that have the value; an SD of 0 (or a
    phenotype nobody has) becomes 1, so standardising never divides by zero."""
    Y = np.asarray(Y_train, dtype=np.float64)
    with warnings.catch_warnings():   # a phenotype nobody has: "mean of empty slice", handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(Y, axis=0)
        sd = np.nanstd(Y, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    return mean, sd


def phenotype_head_meta(names, mean, sd) -> dict:
    """What a checkpoint says about its head: the phenotypes its outputs are, in order, and how to un-standardise."""
    return {"task": TASK, "targets": list(names), "target_mean": [float(v) for v in mean],
            "target_sd": [float(v) for v in sd]}


def finetune_ecg_phenotypes(ctx, *, parent_id: str, on_checkpoint: Hook | None = None,
                            head_out: dict | None = None) -> dict:
    """Train; `head_out` (a dict) is filled with the head's metadata (phenotype_head_meta) before the first
    checkpoint, for a hook that scores the model in memory."""
    import torch
    from cardio_core.analysis.phenotypes import phenotype_matrix
    from cardio_core.data.paired_view import PairedView, load_paired_view
    from cardio_core.metrics.phenotypes import PHENOTYPES
    from cardio_core.training.callbacks import JobProgress, early_stopping, fit_resuming
    from cardio_core.training.datamodules import ChapmanDataModule
    from cardio_core.training.modules import REGRESSION_MONITOR, EcgRegressionModule

    store, spec = ctx.store, ctx.spec
    recipe_name, recipe = recipe_for(spec, "ecg")
    torch.manual_seed(recipe.seed)
    run_id = current_run_id(ctx)
    views = {split: load_paired_view(store, split) for split in ("train", "val")}
    fraction, subset_seed = train_fraction_of(spec.params)
    if fraction is not None and fraction < 1:   # nested subsets of the training subjects (no label to stratify on)
        train = views["train"]
        keep = nested_subset(train.subject_ids, ["all"] * len(train), fraction, seed=subset_seed)
        views["train"] = PairedView(train.split, [s for s, k in zip(train.subject_ids, keep) if k],
                                    train.ecg.subset(keep), train.cmr.subset(keep))
    if len(views["train"]) < 2 or len(views["val"]) < 3:
        raise CardioError(f"the paired cohort has {len(views['train'])} train and {len(views['val'])} val subjects; "
                          "a phenotype fine-tune needs at least 2 and 3")
    Y = {split: phenotype_matrix(store, v.subject_ids) for split, v in views.items()}
    mean, sd = target_scaling(Y["train"])
    Z = {split: ((y - mean) / sd).astype(np.float32) for split, y in Y.items()}
    model, load_report = starting_model(store, parent_id, recipe, len(PHENOTYPES))
    dm = ChapmanDataModule((views["train"].ecg.arrays, Z["train"]), (views["val"].ecg.arrays, Z["val"]),
                           batch_size=recipe.batch_size, crop_length=recipe.crop_length,
                           augment=recipe.ecg_augment() if recipe.augment else False)
    module = EcgRegressionModule(model, names=PHENOTYPES, lr=recipe.lr, weight_decay=recipe.weight_decay,
                                 layer_decay=recipe.layer_decay, warmup_epochs=recipe.warmup_epochs,
                                 max_epochs=recipe.max_epochs, linear_probe=recipe.linear_probe,
                                 random_init=recipe.random_init)
    head = phenotype_head_meta(PHENOTYPES, mean, sd)
    if head_out is not None:
        head_out.update(head)
    config = {"recipe_name": recipe_name, "recipe": recipe.to_dict(), "spec": spec.to_dict(), "task": TASK,
              "parent_weights_id": parent_id, "load_report": load_report, "n_train": len(views["train"]),
              "n_val": len(views["val"]), "train_fraction": fraction or 1.0, "subset_seed": subset_seed,
              "monitor": REGRESSION_MONITOR, **head}
    if is_rank_zero(ctx):
        register_run(store, run_id, ctx.job_id, "ecg", PAIRED_DATASETS["ecg"], recipe_name, config, parent_id)
    # head_trained False: the head regresses phenotypes, it is not a Chapman classifier to score
    saver, resume = whole_run_checkpoints(ctx, run_id=run_id, parent_id=parent_id, recipe=recipe, module=module,
                                          config=config, on_checkpoint=on_checkpoint,
                                          extra_meta={"head_trained": False, **head}, name_suffix=" (phenotypes)")
    callbacks = [saver, resume, JobProgress(ctx, recipe.max_epochs, "fine-tuning ECG on CMR phenotypes"),
                 *early_stopping(recipe.patience, REGRESSION_MONITOR)]
    trainer = build_trainer(ctx, max_epochs=recipe.max_epochs, validate_every=recipe.validation_interval,
                            callbacks=callbacks)
    fit_resuming(trainer, module, datamodule=dm, resume_from=ctx.resume_from)
    return {"run_id": run_id, "checkpoints": [str(p) for p in saver.saved], "stopped_early_at":
            trainer.current_epoch if recipe.patience and trainer.should_stop else None}
