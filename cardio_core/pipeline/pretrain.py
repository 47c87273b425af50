"""Masked data modelling pre-training as a run: produces the ECG baseline encoder when no released MMCL
weights are available, so baseline-vs-fine-tuned comparisons are real. Training only; the job
analyses the result (pipeline/workflows.py)."""
from __future__ import annotations

from pathlib import Path

from cardio_core.catalog import register_weights
from cardio_core.data.dataset_view import load_view
from cardio_core.errors import CardioError, ParameterError
from cardio_core.pipeline.runs import build_trainer, current_run_id
from cardio_core.training.distributed import is_rank_zero

# What a spec's overrides may change for pre-training, with defaults and allowed ranges.
MDM_DEFAULTS = {"lr": (1e-3, 1e-7, 1.0), "weight_decay": (0.05, 0.0, 10.0), "mask_ratio": (0.8, 0.05, 0.95),
                "batch_size": (32, 1, 4096), "warmup_epochs": (1.0, 0.0, 1000.0)}


def mdm_options(overrides: dict) -> dict:
    """The pre-training options of a spec's overrides, validated against MDM_DEFAULTS."""
    unknown = sorted(set(overrides) - set(MDM_DEFAULTS))
    if unknown:
        raise ParameterError("overrides", f"unknown pre-training option(s) {', '.join(unknown)}; "
                                          f"allowed: {', '.join(MDM_DEFAULTS)}")
    out = {}
    for key, (default, low, high) in MDM_DEFAULTS.items():
        value = overrides.get(key, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            raise ParameterError(f"overrides.{key}", f"must be a number in {low}..{high}, got {value!r}")
        out[key] = int(value) if key == "batch_size" else float(value)
    return out


def pretrain_ecg(ctx) -> dict:
    """Pre-train the ECG ViT with masked data modelling; registers the encoder as 'pretrained' weights."""
    import torch
    from cardio_core.models.registry import create_model
    from cardio_core.training.callbacks import JobProgress, ResumeState, fit_resuming
    from cardio_core.training.datamodules import PretrainDataModule
    from cardio_core.training.mdm import MdmPretrainModule

    store, spec = ctx.store, ctx.spec
    if spec.modality != "ecg":
        raise ParameterError("modality", "masked data modelling pre-training exists for ECG only")
    opts = mdm_options(dict(spec.overrides))
    torch.manual_seed(spec.seed)
    run_id = current_run_id(ctx)
    where = "r.split = 'train'" if spec.dataset == "chapman" else "TRUE"
    view = load_view(store, spec.dataset, where=where)
    if len(view.records) < 2:
        raise CardioError(f"pre-training needs ingested {spec.dataset} records; found {len(view.records)}")
    dm = PretrainDataModule(view.arrays, batch_size=opts["batch_size"])
    module = MdmPretrainModule(create_model("ecg_vit_small"), mask_ratio=opts["mask_ratio"], lr=opts["lr"],
                               weight_decay=opts["weight_decay"], warmup_epochs=opts["warmup_epochs"],
                               max_epochs=spec.epochs)
    run_dir = ctx.workspace.runs_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    resume = ResumeState(run_dir / "resume.ckpt", spec.checkpoint_every or spec.epochs,
                         on_written=lambda path, epoch, step: ctx.register_checkpoint(path, epoch=epoch, step=step))
    trainer = build_trainer(ctx, max_epochs=spec.epochs,
                            callbacks=[resume, JobProgress(ctx, spec.epochs, f"MDM pre-training on {spec.dataset}")])
    fit_resuming(trainer, module, datamodule=dm, resume_from=ctx.resume_from)
    if ctx.should_stop():
        return {"run_id": run_id, "stopped": True}
    if not is_rank_zero(ctx):
        return {"run_id": run_id, "rank": "not zero"}  # rank zero saves and registers the encoder
    path = Path(module.save_encoder(run_dir / "mdm_encoder.pth",
                                    meta={"head_trained": False, "pretraining": "mdm", "dataset": spec.dataset,
                                          "epochs": spec.epochs, "run_id": run_id, **opts}))
    wid = f"{run_id}-mdm"
    register_weights(store, weights_id=wid, modality="ecg", name=f"MDM pre-trained on {spec.dataset} ({run_id})",
                     kind="pretrained", path=str(path))
    return {"run_id": run_id, "weights_id": wid, "path": str(path)}
