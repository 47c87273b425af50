"""Contrastive (MMCL) pre-training throughput: MmclPretrainModule under the Lightning Trainer vs a bare loop.

`python -m bench mmcl [--batch-size=16] [--steps=8] [--warmup=2] [--cmr-size=96] [--device=auto]
[--precision=auto] [--workers=0]`

Three timings of optimiser steps over ECG (12 x 2,500) + CMR (3 x cmr_size^2) pairs: both encoders, both
projectors, the CLIP loss, AdamW and the per-step schedule; each after `warmup` untimed steps:
  bare         pre-built batches already on the device: model compute only
  bare+loader  the same loop fed by PairedDataModule's training loader (random crop, pre-training augmentations)
  lightning    MmclPretrainModule under L.Trainer with the same data module (the same batches: same seed)
The overhead is bare+loader / lightning pairs per second (goal: at most 1.10). Precision "auto" is bf16
autocast on CUDA and on CPUs with native bf16 (what the project's Trainer uses, pipeline.runs), else fp32.
"""
from __future__ import annotations

import argparse
import time

import lightning as L
import numpy as np
import torch

from bench.train import _finish, _sync, _Timer
from cardio_core.training.datamodules import PairedDataModule
from cardio_core.training.mmcl import MmclPretrainModule, build_mmcl_encoders
from cardio_core.training.optim import WarmupCosineLR, build_optimizer, schedule_steps

LR, WEIGHT_DECAY, MAX_EPOCHS = 1e-4, 1e-4, 100


def _data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 12, 5000), dtype=np.float32), rng.random((n, 3, 210, 210), dtype=np.float32))


def _module(steps_per_epoch: int) -> MmclPretrainModule:
    ecg, cmr, _ = build_mmcl_encoders(seed=0)
    return MmclPretrainModule(ecg, cmr, lr=LR, weight_decay=WEIGHT_DECAY, max_epochs=MAX_EPOCHS,
                              steps_per_epoch=steps_per_epoch, seed=0)


def _bare(batches, device, warmup: int, bf16: bool, steps_per_epoch: int) -> float:
    """Pairs/s of a plain loop: the module's own forward and loss, the same optimiser and schedule."""
    module = _module(steps_per_epoch).to(device).train()
    opt = build_optimizer(module, lr=LR, weight_decay=WEIGHT_DECAY, layer_decay=1.0)
    warm, total = schedule_steps(0.1 * MAX_EPOCHS, MAX_EPOCHS, steps_per_epoch)
    sched = WarmupCosineLR(opt, peak_lr=LR, warmup_steps=warm, total_steps=total)
    seen, t0, t1 = 0, None, None
    for step, (ecg, cmr) in enumerate(batches):
        if step == warmup:
            _sync(device)
            t0 = time.perf_counter()
        ecg, cmr = ecg.to(device, non_blocking=True), cmr.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            z_ecg, z_cmr = module(ecg, cmr)
        loss, _ = module.loss(z_ecg, z_cmr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step >= warmup:
            seen += len(ecg)
            _sync(device)
            t1 = time.perf_counter()
    if t0 is None or seen == 0:
        raise RuntimeError("fewer batches than the warm-up; raise --steps or lower --warmup")
    return seen / (t1 - t0)


def _lightning(dm, device, warmup: int, steps: int, bf16: bool, steps_per_epoch: int) -> float:
    module = _module(steps_per_epoch)
    timer = _Timer(warmup)
    trainer = L.Trainer(accelerator=device.type, devices=1, max_epochs=1, limit_train_batches=warmup + steps,
                        callbacks=[timer], limit_val_batches=0, num_sanity_val_steps=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        precision="bf16-mixed" if bf16 else "32-true")
    trainer.fit(module, datamodule=dm)
    return _finish(timer)


def _use_bf16(device: torch.device, precision: str) -> bool:
    if precision != "auto":
        return precision == "bf16"
    from cardio_core.pipeline.runs import training_precision
    return training_precision(device.type == "cuda") == "bf16-mixed"


def run(device: torch.device, batch_size: int, steps: int, warmup: int, cmr_size: int, precision: str = "auto",
        workers: int = 0, seed: int = 0) -> dict:
    n = batch_size * (steps + warmup)
    ecg, cmr = _data(n, seed)
    bf16 = _use_bf16(device, precision)

    def datamodule():   # a fresh one per path: the same seed, so the same shuffles and augmentations
        torch.manual_seed(seed)
        return PairedDataModule(ecg, cmr, batch_size=batch_size, cmr_size=cmr_size, seed=seed, num_workers=workers)

    dm = datamodule()
    first = [dm.train_dataset[i] for i in range(batch_size)]
    pre = (torch.stack([e for e, _ in first]).to(device), torch.stack([c for _, c in first]).to(device))
    steps_per_epoch = steps + warmup
    results = {"bare": _bare([pre] * (steps + warmup), device, warmup, bf16, steps_per_epoch)}
    dm = datamodule()
    results["bare+loader"] = _bare(dm.train_dataloader(), device, warmup, bf16, steps_per_epoch)
    dm = datamodule()
    results["lightning"] = _lightning(dm, device, warmup, steps, bf16, steps_per_epoch)
    return {"pairs_per_s": results, "bf16": bf16, "overhead": results["bare+loader"] / results["lightning"]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="bench mmcl", description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="timed optimiser steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--cmr-size", type=int, default=96, help="CMR input size (210 = the paper's)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--precision", choices=("auto", "32", "bf16"), default="auto")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 2 or args.cmr_size < 32:
        parser.error("need --steps >= 1, --warmup >= 0, --batch-size >= 2, --cmr-size >= 32")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if args.device != "auto":
        if args.device == "cuda" and not torch.cuda.is_available():
            parser.error("--device=cuda but no CUDA device is available")
        devices = [args.device]
    out = {}
    for name in devices:
        res = run(torch.device(name), args.batch_size, args.steps, args.warmup, args.cmr_size, args.precision,
                  args.workers)
        out[name] = res
        print(f"[mmcl {name}{' bf16' if res['bf16'] else ' fp32'}] batch {args.batch_size}, ECG 12 x 2500 + CMR "
              f"3 x {args.cmr_size}^2, {args.steps} timed steps after {args.warmup} warm-up, "
              f"torch {torch.get_num_threads()} threads")
        for key, value in res["pairs_per_s"].items():
            print(f"  {key:<12} {value:10.1f} pairs/s")
        verdict = "within" if res["overhead"] <= 1.10 else "ABOVE"
        print(f"  overhead     bare+loader / lightning = {res['overhead']:.2f}x ({verdict} the 1.10x goal); "
              f"bare / lightning = {res['pairs_per_s']['bare'] / res['pairs_per_s']['lightning']:.2f}x")
    return out


if __name__ == "__main__":
    main()
