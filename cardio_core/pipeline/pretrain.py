"""Masked data modelling pre-training as a job: produces the ECG baseline encoder when no
released MMCL weights are available, so baseline-vs-fine-tuned comparisons are real."""
from __future__ import annotations

from pathlib import Path

from ..catalog import register_weights
from ..errors import CardioError
from .data import load_view
from .embed import resolve_device
from .finetune import _callbacks, _save_resume_state, analyse_weights, run_id_of, training_precision

# What a spec's overrides may change for pre-training, with defaults and allowed ranges.
MDM_DEFAULTS = {"lr": (1e-3, 1e-7, 1.0), "weight_decay": (0.05, 0.0, 10.0), "mask_ratio": (0.8, 0.05, 0.95),
                "batch_size": (32, 1, 4096), "warmup_epochs": (1.0, 0.0, 1000.0)}


def _mdm_options(overrides: dict) -> dict:
    from jobs.spec import SpecError
    unknown = sorted(set(overrides) - set(MDM_DEFAULTS))
    if unknown:
        raise SpecError("overrides", f"unknown pre-training option(s) {', '.join(unknown)}; "
                                     f"allowed: {', '.join(MDM_DEFAULTS)}")
    out = {}
    for key, (default, low, high) in MDM_DEFAULTS.items():
        value = overrides.get(key, default)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            raise SpecError(f"overrides.{key}", f"must be a number in {low}..{high}, got {value!r}")
        out[key] = int(value) if key == "batch_size" else float(value)
    return out


def pretrain_ecg(ctx) -> dict:
    import lightning as Lg
    import torch
    from ..models.registry import create_model
    from ..training.datamodules import EcgDataset
    from ..training.mdm import MdmPretrainModule

    store, spec = ctx.store, ctx.spec
    opts = _mdm_options(dict(spec.overrides))
    torch.manual_seed(spec.seed)
    device = resolve_device(spec.device)
    run_id = getattr(ctx, "run_id", None) or run_id_of(store, ctx.job_id)
    where = "r.split = 'train'" if spec.dataset == "chapman" else "TRUE"
    view = load_view(store, spec.dataset, where=where)
    if len(view.records) < 2:
        raise CardioError(f"pre-training needs ingested {spec.dataset} records; found {len(view.records)}")
    train = torch.utils.data.DataLoader(EcgDataset(view.arrays, view.Y, train=True, augment=False),
                                        batch_size=opts["batch_size"], shuffle=True, drop_last=len(view.records) > opts["batch_size"])
    encoder = create_model("ecg_vit_small")
    module = MdmPretrainModule(encoder, mask_ratio=opts["mask_ratio"], lr=opts["lr"],
                               weight_decay=opts["weight_decay"], warmup_epochs=opts["warmup_epochs"],
                               max_epochs=spec.epochs)
    run_dir = ctx.workspace.runs_dir / run_id
    every = spec.checkpoint_every or spec.epochs

    class ResumePoints(Lg.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            epoch = trainer.current_epoch + 1
            if epoch % every == 0 or epoch == spec.epochs:
                path = _save_resume_state(trainer, run_dir / "resume.ckpt")
                ctx.register_checkpoint(path, epoch=epoch, step=trainer.global_step)

    import torch.cuda
    cuda = device == "cuda"
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = Lg.Trainer(max_epochs=spec.epochs, logger=False, enable_checkpointing=False,
                         enable_model_summary=False, enable_progress_bar=False, default_root_dir=str(ctx.job_dir),
                         accelerator="gpu" if cuda else "cpu", devices=1, precision=training_precision(cuda),
                         callbacks=[ResumePoints(), *_callbacks(ctx, spec.epochs, f"MDM pre-training on {spec.dataset}")])
    trainer.fit(module, train_dataloaders=train, ckpt_path=str(ctx.resume_from) if ctx.resume_from else None,
                weights_only=False)
    if ctx.should_stop():
        return {"run_id": run_id, "stopped": True}
    path = Path(module.save_encoder(run_dir / "mdm_encoder.pth",
                                    meta={"head_trained": False, "pretraining": "mdm", "dataset": spec.dataset,
                                          "epochs": spec.epochs, "run_id": run_id, **opts}))
    wid = f"{run_id}-mdm"
    register_weights(store, weights_id=wid, modality="ecg", name=f"MDM pre-trained on {spec.dataset} ({run_id})",
                     kind="pretrained", path=str(path))
    ctx.report_progress(message="analysing the pre-trained baseline", force=True)
    analyse_weights(store, wid, device=device, seed=spec.seed)
    return {"run_id": run_id, "weights_id": wid, "path": str(path)}
