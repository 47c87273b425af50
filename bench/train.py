"""Training throughput: the Lightning fine-tuning pipeline vs a bare torch loop, same model and batch.

`python -m bench train [--model=ecg|cmr] [--batch-size=32] [--steps=10] [--warmup=3] [--device=auto] [--workers=0]`

Three timings of optimiser steps (forward, backward, AdamW with layer-decay groups, per-step
schedule), each after `warmup` untimed steps:
  bare         pre-built batches already on the device: model compute only
  bare+loader  the same loop fed by the project's Dataset/DataLoader (random crop + augmentation)
  lightning    EcgFinetuneModule / CmrFinetuneModule under L.Trainer with the same data module
The overhead ratio is bare / lightning samples per second. On CUDA all three use bf16 autocast.
"""
from __future__ import annotations

import argparse
import time

import lightning as L
import numpy as np
import torch

from cardio_core.models import create_model
from cardio_core.training.datamodules import AcdcFoldDataModule, ChapmanDataModule
from cardio_core.training.modules import CmrFinetuneModule, EcgFinetuneModule, compute_pos_weight
from cardio_core.training.optim import WarmupCosineLR, build_optimizer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _data(kind: str, n: int, seed: int):
    rng = np.random.default_rng(seed)
    if kind == "ecg":
        x = rng.standard_normal((n, 12, 5000), dtype=np.float32)
        y = (rng.random((n, 20)) < 0.15).astype(np.float32)
        return x, y
    x = rng.random((n, 3, 210, 210), dtype=np.float32)
    return x, np.arange(n) % 5


def _datamodule(kind: str, x, y, batch_size: int, workers: int):
    if kind == "ecg":
        return ChapmanDataModule((x, y), (x[:batch_size], y[:batch_size]), batch_size=batch_size,
                                 num_workers=workers)
    folds = np.zeros(len(x), dtype=int)
    folds[:batch_size] = 1                      # fold 1 validates; everything else trains
    return AcdcFoldDataModule(x, y, folds, 1, batch_size=batch_size, num_workers=workers)


def _model(kind: str):
    return create_model("ecg_vit_small", drop_path_rate=0.1) if kind == "ecg" else create_model("cmr_resnet50")


def _loss_fn(kind: str, pos_weight):
    if kind == "ecg":
        return lambda logits, y: torch.nn.functional.binary_cross_entropy_with_logits(
            logits.float(), y, pos_weight=pos_weight)
    return lambda logits, y: torch.nn.functional.cross_entropy(logits.float(), y)


def _bare(kind, batches, device, warmup, pos_weight) -> float:
    """Samples/s of a plain loop over `batches` (an iterable of (x, y) already batched)."""
    model = _model(kind).to(device).train()
    opt = build_optimizer(model, lr=1e-4, weight_decay=0.05, layer_decay=0.75 if kind == "ecg" else 1.0)
    sched = WarmupCosineLR(opt, peak_lr=1e-4, warmup_steps=1, total_steps=10_000)
    loss_fn = _loss_fn(kind, None if pos_weight is None else pos_weight.to(device))
    seen, t0 = 0, None
    for step, (x, y) in enumerate(batches):
        if step == warmup:
            _sync(device)
            t0 = time.perf_counter()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step >= warmup:
            seen += len(x)
    _sync(device)
    return seen / (time.perf_counter() - t0)


class _Timer(L.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.seen, self.t0, self.t1 = warmup, 0, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            _sync(pl_module.device)
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx >= self.warmup:
            self.seen += len(batch[1])
            _sync(pl_module.device)
            self.t1 = time.perf_counter()


def _lightning(kind, dm, device, warmup, steps, pos_weight) -> float:
    model = _model(kind)
    if kind == "ecg":
        module = EcgFinetuneModule(model, pos_weight=pos_weight, lr=1e-4, warmup_epochs=1, max_epochs=100)
    else:
        module = CmrFinetuneModule(model, lr=1e-4, warmup_epochs=1, max_epochs=100)
    timer = _Timer(warmup)
    trainer = L.Trainer(accelerator=device.type, devices=1, max_epochs=1, limit_train_batches=warmup + steps,
                        callbacks=[timer],
                        limit_val_batches=0, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        precision="bf16-mixed" if device.type == "cuda" else "32-true")
    trainer.fit(module, datamodule=dm)
    return _finish(timer)


def _finish(timer) -> float:
    if timer.t0 is None or timer.seen == 0:
        raise RuntimeError("Lightning ran fewer batches than the warm-up; increase the dataset or lower --warmup")
    return timer.seen / (timer.t1 - timer.t0)


def run(kind: str, device: torch.device, batch_size: int, steps: int, warmup: int, workers: int, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    n = batch_size * (steps + warmup)
    x, y = _data(kind, n, seed)
    dm = _datamodule(kind, x, y, batch_size, workers)
    pos_weight = torch.from_numpy(compute_pos_weight(y)) if kind == "ecg" else None
    # pre-built, pre-cropped batches on the device: the model's own cost
    first = dm.val_dataset[0][0]
    xb = torch.stack([first] * batch_size).to(device)
    yb = (torch.from_numpy(y[:batch_size]) if kind == "ecg" else torch.from_numpy(np.asarray(y[:batch_size]))).to(device)
    results = {
        "bare": _bare(kind, [(xb, yb)] * (steps + warmup), device, warmup, pos_weight),
        "bare+loader": _bare(kind, dm.train_dataloader(), device, warmup, pos_weight),
        "lightning": _lightning(kind, dm, device, warmup, steps, pos_weight),
    }
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="bench train", description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("ecg", "cmr"), default="ecg")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed optimiser steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error("need --steps >= 1, --warmup >= 0, --batch-size >= 1")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if args.device != "auto":
        if args.device == "cuda" and not torch.cuda.is_available():
            parser.error("--device=cuda but no CUDA device is available")
        devices = [args.device]
    out = {}
    for name in devices:
        device = torch.device(name)
        res = run(args.model, device, args.batch_size, args.steps, args.warmup, args.workers)
        out[name] = res
        ratio = res["bare"] / res["lightning"]
        print(f"[{args.model} {name}{' bf16' if name == 'cuda' else ''}] batch {args.batch_size}, "
              f"{args.steps} timed steps after {args.warmup} warm-up, torch {torch.get_num_threads()} threads")
        for key, value in res.items():
            print(f"  {key:<12} {value:10.1f} samples/s")
        print(f"  overhead     bare / lightning = {ratio:.2f}x; "
              f"bare+loader / lightning = {res['bare+loader'] / res['lightning']:.2f}x")
    return out


if __name__ == "__main__":
    main()
