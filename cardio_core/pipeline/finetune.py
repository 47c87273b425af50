"""Fine-tuning and pre-training as background jobs: data from the store, Lightning runs,
every checkpoint registered with lineage and then embedded, evaluated and projected.

Two files per checkpoint epoch: a CardioScope weights file (epoch_NNNN.pth, the model
only: what the catalogue, embeddings and the app load) and a full Lightning state
(resume.ckpt: optimiser, schedule, epoch) that a resumed job continues from. Both are
written to a temporary name and renamed, and the job registers the resume point only
once the file is complete.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .. import labels as L
from ..catalog import ensure_random_weights, get_weights, register_weights
from ..errors import CardioError
from ..store import Store, to_json
from .data import load_view
from .embed import DEFAULT_MODEL, embed_sets, instantiate, resolve_device
from .evaluate import evaluate_cmr, evaluate_ecg, store_cmr_accuracy
from .project import MODALITY_VIEWS, project_weights, projection_id


# -- helpers ---------------------------------------------------------------------------

def run_id_of(store: Store, job_id: str) -> str:
    """A resumed job continues its original run: follow resume_of back to the first job."""
    current = job_id
    for _ in range(100):
        row = store.query("SELECT resume_of FROM jobs WHERE job_id = ?", [current])
        if not row or not row[0][0]:
            return current
        current = row[0][0]
    return current


def default_parent(store: Store, modality: str) -> str:
    """The newest released or pre-trained weights of a modality, else the random baseline."""
    row = store.query("SELECT weights_id FROM weights WHERE modality = ? AND kind IN ('released', 'pretrained') "
                      "ORDER BY kind = 'released' DESC, created_at DESC LIMIT 1", [modality])
    return row[0][0] if row else ensure_random_weights(store, modality)


def resolve_parent(ctx, modality: str) -> str:
    """The spec's weights as a weights_id (registering a dropped-in file on first use)."""
    name = ctx.spec.weights
    if not name:
        return default_parent(ctx.store, modality)
    if ctx.store.scalar("SELECT count(*) FROM weights WHERE weights_id = ?", [name]):
        return name
    from ..catalog import scan_weights_dir
    scan_weights_dir(ctx.store, ctx.workspace)
    row = ctx.store.query("SELECT weights_id FROM weights WHERE path = ?", [str(ctx.workspace.weights_dir / name)])
    if not row:
        raise CardioError(f"weights {name!r}: not a registered weights id nor a loadable file in "
                          f"{ctx.workspace.weights_dir} (see `cardio problems`)")
    return row[0][0]


def analyse_weights(store: Store, weights_id: str, *, model=None, device: str = "cpu", align_to: str | None = None,
                    head_trained: bool = False, seed: int = 0) -> None:
    """Embeddings -> metrics -> projections of one set of weights (skips what is stored)."""
    w = get_weights(store, weights_id)
    modality = w["modality"]
    if model is None:
        model, _, head_trained = instantiate(store, weights_id)
    embed_sets(store, model, weights_id, modality, device=device, head_trained=head_trained)
    if modality == "ecg":
        evaluate_ecg(store, weights_id, seed=seed)
    else:
        evaluate_cmr(store, weights_id, seed=seed)
    for view in MODALITY_VIEWS[modality]:
        prev = projection_id(align_to, view) if align_to else None
        project_weights(store, weights_id, view, modality=modality, align_to=prev)


def ensure_analysed(store: Store, weights_id: str, *, device: str = "cpu") -> None:
    if not store.scalar("SELECT count(*) FROM projections WHERE weights_id = ?", [weights_id]):
        analyse_weights(store, weights_id, device=device)


def _callbacks(ctx, total_epochs: int, label: str):
    import lightning as Lg

    class JobProgress(Lg.Callback):
        """Progress to progress.json; a cancel request stops the Trainer after the current step."""

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            ctx.report_progress(epoch=trainer.current_epoch, step=trainer.global_step, total_epochs=total_epochs,
                                total_steps=trainer.estimated_stepping_batches, message=label)
            if ctx.should_stop():
                trainer.should_stop = True

        def on_validation_epoch_end(self, trainer, pl_module):
            metrics = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items()
                       if hasattr(v, "numel") and v.numel() == 1 and "/" in k and k.count("/") == 1}
            ctx.report_progress(epoch=trainer.current_epoch + 1, step=trainer.global_step, total_epochs=total_epochs,
                                metrics=metrics, message=label, force=True)

    return [JobProgress()]


def _save_resume_state(trainer, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    trainer.save_checkpoint(tmp)
    os.replace(tmp, path)
    return path


def training_precision(cuda: bool) -> str:
    """bf16 mixed precision on CUDA, and on CPUs with native bf16 (AVX512-BF16/AMX: ~1.6x faster
    training of the ECG ViT measured here); full fp32 elsewhere. CARDIO_CPU_BF16=0 turns the CPU case off."""
    import torch
    if cuda:
        return "bf16-mixed"
    native = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()
    return "bf16-mixed" if native and os.environ.get("CARDIO_CPU_BF16", "1") != "0" else "32-true"


def _trainer(ctx, recipe, callbacks, *, default_root: Path):
    import lightning as Lg
    import torch
    kwargs = ctx.trainer_kwargs()
    cuda = kwargs["accelerator"] in ("gpu", "auto") and torch.cuda.is_available()
    if kwargs["accelerator"] == "auto":
        kwargs["accelerator"] = "gpu" if cuda else "cpu"
    return Lg.Trainer(max_epochs=recipe.max_epochs, callbacks=callbacks, logger=False,
                      enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False,
                      default_root_dir=str(default_root), precision=training_precision(cuda),
                      deterministic=False, num_sanity_val_steps=0, **kwargs)


def _recipe(ctx, modality: str):
    from ..training.recipes import get_recipe
    spec = ctx.spec
    name = spec.recipe or f"demo_{modality}"
    overrides = dict(spec.overrides)
    overrides["max_epochs"] = spec.epochs
    overrides["checkpoint_every"] = spec.checkpoint_every or min(10, spec.epochs)
    overrides["seed"] = spec.seed
    try:
        recipe = get_recipe(name, **overrides)
    except ValueError as exc:
        from jobs.spec import SpecError
        raise SpecError("overrides" if "recipe" not in str(exc) else "recipe", str(exc)) from None
    if recipe.modality != modality:
        from jobs.spec import SpecError
        raise SpecError("recipe", f"preset {name!r} is for {recipe.modality.upper()}, the job is {modality.upper()}")
    return name, recipe


def _build_model(store: Store, parent_id: str, modality: str, recipe, num_classes: int):
    from ..models.registry import create_model
    from ..models.weights import load_weights
    w = get_weights(store, parent_id)
    kwargs = {"num_classes": num_classes}
    if modality == "ecg":
        kwargs.update(drop_path_rate=recipe.drop_path, signal_length=recipe.crop_length)
    model = create_model(DEFAULT_MODEL[modality], **kwargs)
    report = None
    if w["kind"] != "random" and w.get("path") and not recipe.random_init:
        # the head of a parent fine-tune is not this task's head: start it fresh
        report = load_weights(model, w["path"], modality=modality, load_head=False).to_dict()
    return model, report


def _register_checkpoint(store: Store, *, weights_id, run_id, job_id, epoch, step, fold, path, modality,
                         parent_id, name, meta, config) -> None:
    register_weights(store, weights_id=weights_id, modality=modality, name=name, kind="checkpoint",
                     path=str(path) if path else None, parent_weights_id=parent_id)
    with store.write() as con:
        con.execute("DELETE FROM checkpoints WHERE weights_id = ?", [weights_id])
        con.execute("INSERT INTO checkpoints (weights_id, run_id, job_id, epoch, step, fold, path, val_metrics, config) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [weights_id, run_id, job_id, epoch, step, fold, str(path) if path else "",
                     to_json(meta.get("metrics", {})), to_json(config)])


def _register_run(store: Store, run_id, job_id, modality, dataset_id, recipe_name, config, parent_id, fold=None):
    with store.write() as con:
        con.execute("DELETE FROM runs WHERE run_id = ?", [run_id])
        con.execute("INSERT INTO runs (run_id, job_id, modality, dataset_id, recipe, config, parent_weights_id, fold) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [run_id, job_id, modality, dataset_id, recipe_name, to_json(config), parent_id, fold])


# -- ECG -----------------------------------------------------------------------------

def finetune_ecg(ctx) -> dict:
    import torch
    from ..training.datamodules import ChapmanDataModule
    from ..training.modules import PeriodicCheckpoint, compute_pos_weight, make_module

    store, spec = ctx.store, ctx.spec
    recipe_name, recipe = _recipe(ctx, "ecg")
    torch.manual_seed(recipe.seed)
    device = resolve_device(spec.device)
    run_id = getattr(ctx, "run_id", None) or run_id_of(store, ctx.job_id)
    parent_id = resolve_parent(ctx, "ecg")
    ctx.report_progress(message=f"baseline analysis of {parent_id}", force=True)
    ensure_analysed(store, parent_id, device=device)

    view = load_view(store, "chapman")
    split = view.records["split"].to_numpy()
    train, val, test = (view.subset(split == s) for s in ("train", "val", "test"))
    if len(train.records) == 0 or len(val.records) == 0:
        raise CardioError("the Chapman dataset has no train/val split yet (cardio setup / cardio ingest chapman)")
    limit = spec.params.get("max_train_records")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            from jobs.spec import SpecError
            raise SpecError("params.max_train_records", f"must be a positive integer, got {limit!r}")
        if limit < len(train.records):
            # a seeded subset of the train split (the demo's budget on 2 CPU cores)
            keep = np.zeros(len(train.records), dtype=bool)
            keep[np.random.default_rng(recipe.seed).choice(len(keep), size=limit, replace=False)] = True
            train = train.subset(keep)
    model, load_report = _build_model(store, parent_id, "ecg", recipe, len(L.CLASSES))
    dm = ChapmanDataModule((train.arrays, train.Y), (val.arrays, val.Y), (test.arrays, test.Y),
                           batch_size=recipe.batch_size, crop_length=recipe.crop_length,
                           augment=recipe.ecg_augment() if recipe.augment else False)
    module = make_module(recipe, model, pos_weight=compute_pos_weight(train.Y))
    config = {"recipe_name": recipe_name, "recipe": recipe.to_dict(), "spec": spec.to_dict(),
              "parent_weights_id": parent_id, "load_report": load_report}
    _register_run(store, run_id, ctx.job_id, "ecg", "chapman", recipe_name, config, parent_id)
    ckpt_dir = ctx.workspace.runs_dir / run_id / "checkpoints"
    state = {"previous": parent_id}

    def on_save(path: Path, meta: dict) -> None:
        epoch = meta["epoch"]
        wid = f"{run_id}-e{epoch:04d}"
        _register_checkpoint(store, weights_id=wid, run_id=run_id, job_id=ctx.job_id, epoch=epoch,
                             step=meta["global_step"], fold=None, path=path, modality="ecg", parent_id=parent_id,
                             name=f"{run_id} epoch {epoch}", meta=meta, config=config)
        was_training = module.training
        ctx.report_progress(message=f"analysing checkpoint epoch {epoch}", force=True)
        analyse_weights(store, wid, model=module.model, device=device, align_to=state["previous"],
                        head_trained=True, seed=recipe.seed)
        module.train(was_training)
        state["previous"] = wid
        resume = _save_resume_state(trainer, ckpt_dir / "resume.ckpt")
        ctx.register_checkpoint(resume, epoch=epoch, step=meta["global_step"])

    saver = PeriodicCheckpoint(ckpt_dir, recipe.checkpoint_every,
                               extra_meta={"run_id": run_id, "head_trained": True, "parent_weights_id": parent_id},
                               on_save=on_save)
    trainer = _trainer(ctx, recipe, [saver, *_callbacks(ctx, recipe.max_epochs, "fine-tuning ECG")],
                       default_root=ctx.job_dir)
    if ctx.resume_from:
        prev = store.query("SELECT weights_id FROM checkpoints WHERE run_id = ? ORDER BY epoch DESC LIMIT 1", [run_id])
        if prev:
            state["previous"] = prev[0][0]
    trainer.fit(module, datamodule=dm, ckpt_path=str(ctx.resume_from) if ctx.resume_from else None,
                weights_only=False)
    return {"run_id": run_id, "checkpoints": [str(p) for p in saver.saved]}


# -- CMR -----------------------------------------------------------------------------

def finetune_cmr(ctx) -> dict:
    import torch
    from ..training.datamodules import AcdcFoldDataModule
    from ..training.modules import PeriodicCheckpoint, make_module
    from ..embeddings import compute_embeddings, store_embeddings

    store, spec = ctx.store, ctx.spec
    recipe_name, recipe = _recipe(ctx, "cmr")
    device = resolve_device(spec.device)
    run_id = getattr(ctx, "run_id", None) or run_id_of(store, ctx.job_id)
    parent_id = resolve_parent(ctx, "cmr")
    ctx.report_progress(message=f"baseline analysis of {parent_id}", force=True)
    ensure_analysed(store, parent_id, device=device)
    view = load_view(store, "acdc")
    labels = view.Y.argmax(1).astype(np.int64)
    folds_of_record = view.records["fold"].to_numpy().astype(int)
    folds = spec.folds or sorted(set(folds_of_record.tolist()))
    config = {"recipe_name": recipe_name, "recipe": recipe.to_dict(), "spec": spec.to_dict(),
              "parent_weights_id": parent_id, "folds": folds}
    _register_run(store, run_id, ctx.job_id, "cmr", "acdc", recipe_name, config, parent_id)
    acc_file = ctx.workspace.runs_dir / run_id / "fold_accuracy.json"
    accuracy = json.loads(acc_file.read_text()) if acc_file.exists() else {}
    done_folds = {int(f) for f in json.loads((ctx.workspace.runs_dir / run_id / "folds_done.json").read_text())} \
        if (ctx.workspace.runs_dir / run_id / "folds_done.json").exists() else set()
    resume_fold = None
    if ctx.resume_from and Path(ctx.resume_from).parent.name.startswith("fold"):
        resume_fold = int(Path(ctx.resume_from).parent.name[4:])
    images = np.stack([view.arrays[i] for i in range(len(view.arrays))])
    epochs_saved: set[int] = set()

    for k in folds:
        if k in done_folds:
            continue
        torch.manual_seed(recipe.seed + k)
        model, _ = _build_model(store, parent_id, "cmr", recipe, len(L.ACDC_GROUPS))
        dm = AcdcFoldDataModule(images, labels, folds_of_record, k, batch_size=recipe.batch_size,
                                augment=recipe.cmr_augment() if recipe.augment else False)
        module = make_module(recipe, model)
        fold_dir = ctx.workspace.runs_dir / run_id / "checkpoints" / f"fold{k}"
        val_idx = dm.val_index

        def on_save(path: Path, meta: dict, k=k, module=module, fold_dir=fold_dir, val_idx=val_idx) -> None:
            epoch = meta["epoch"]
            wid = f"{run_id}-f{k}-e{epoch:04d}"
            _register_checkpoint(store, weights_id=wid, run_id=run_id, job_id=ctx.job_id, epoch=epoch,
                                 step=meta["global_step"], fold=k, path=path, modality="cmr", parent_id=parent_id,
                                 name=f"{run_id} fold {k} epoch {epoch}", meta=meta, config=config)
            was_training = module.training
            X, probs = compute_embeddings(module.model, images[val_idx], modality="cmr", device=device,
                                          with_head=True)
            module.train(was_training)
            group = f"{run_id}-e{epoch:04d}"
            store_embeddings(store, group, "acdc", view.records["record_id"].iloc[val_idx].tolist(), X, fold=k)
            accuracy.setdefault(str(epoch), {})[str(k)] = float((probs.argmax(1) == labels[val_idx]).mean())
            acc_file.parent.mkdir(parents=True, exist_ok=True)
            acc_file.write_text(json.dumps(accuracy))
            epochs_saved.add(epoch)
            resume = _save_resume_state(trainer, fold_dir / "resume.ckpt")
            ctx.register_checkpoint(resume, epoch=epoch, step=meta["global_step"])

        saver = PeriodicCheckpoint(fold_dir, recipe.checkpoint_every,
                                   extra_meta={"run_id": run_id, "fold": k, "head_trained": True,
                                               "parent_weights_id": parent_id}, on_save=on_save)
        trainer = _trainer(ctx, recipe, [saver, *_callbacks(ctx, recipe.max_epochs, f"fine-tuning CMR fold {k}")],
                           default_root=ctx.job_dir)
        ckpt = str(ctx.resume_from) if resume_fold == k else None
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt, weights_only=False)
        if ctx.should_stop():
            return {"run_id": run_id, "stopped_in_fold": k}
        done_folds.add(k)
        (ctx.workspace.runs_dir / run_id / "folds_done.json").write_text(json.dumps(sorted(done_folds)))

    # One entry per epoch: all folds' validation patients, each embedded by its own fold's model.
    previous = parent_id
    groups = sorted(int(e) for e in accuracy)
    for epoch in groups:
        group = f"{run_id}-e{epoch:04d}"
        ctx.report_progress(message=f"analysing epoch {epoch} over folds", force=True)
        _register_checkpoint(store, weights_id=group, run_id=run_id, job_id=ctx.job_id, epoch=epoch, step=0,
                             fold=None, path=None, modality="cmr", parent_id=parent_id,
                             name=f"{run_id} epoch {epoch} ({len(accuracy[str(epoch)])} folds)",
                             meta={"metrics": {"val/accuracy_mean": float(np.mean(list(accuracy[str(epoch)].values())))}},
                             config=config)
        evaluate_cmr(store, group, seed=recipe.seed)
        store_cmr_accuracy(store, group, {int(f): a for f, a in accuracy[str(epoch)].items()})
        project_weights(store, group, "acdc", modality="cmr", align_to=projection_id(previous, "acdc"))
        previous = group
    return {"run_id": run_id, "epochs": groups}


def run_finetune_job(spec, ctx) -> dict:
    from ..projections import configure_numba_cache
    configure_numba_cache(ctx.workspace.cache_dir)
    if spec.modality == "ecg":
        return finetune_ecg(ctx)
    return finetune_cmr(ctx)


def run_pretrain_job(spec, ctx) -> dict:
    from .pretrain import pretrain_ecg
    from ..projections import configure_numba_cache
    configure_numba_cache(ctx.workspace.cache_dir)
    if spec.modality != "ecg":
        from jobs.spec import SpecError
        raise SpecError("modality", "masked data modelling pre-training exists for ECG only")
    return pretrain_ecg(ctx)
