"""ACDC 5-fold fine-tune from the MMCL image encoder beside the same fine-tune from random weights, in one run.

`python -m bench acdc_init [--workspace=PATH] [--epochs=N] [--recipe=demo_cmr] [--seed=0] [--device=auto]`

Needs a workspace with a finished MMCL run (after `cardio demo`, or a `pretrain_mmcl` job); default
$CARDIO_WORKSPACE. Both fine-tunes are real `finetune` jobs with the same recipe, epochs, seed and input size
(the MMCL encoder's own), so the only difference is the starting weights. Prints the mean fold accuracy ± SE
of each run's best epoch (model selection as in method.md §4) and of its last epoch, the chance level (0.20)
and the wall time of each.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from cardio_core.config import Workspace
from cardio_core.metrics.summary import fold_summary
from cardio_core.store import Store

CHANCE = 0.2


def _mmcl_image_encoder(store: Store) -> tuple[str, int]:
    row = store.query("SELECT p.cmr_weights_id, w.path FROM encoder_pairs p JOIN weights w "
                      "ON w.weights_id = p.cmr_weights_id WHERE p.run_id IS NOT NULL ORDER BY p.created_at DESC "
                      "LIMIT 1")
    if not row:
        raise RuntimeError("no MMCL image encoder in this workspace: run `cardio demo` (or a pretrain_mmcl job) first")
    from cardio_core.models.weights import WeightsFile
    size = int(WeightsFile.read(row[0][1]).model_kwargs.get("input_size", 210))
    return row[0][0], size


def _fold_accuracies(store: Store, run_id: str) -> dict[int, list[float]]:
    """epoch -> the five folds' validation accuracies of a CMR run."""
    rows = store.query("SELECT c.epoch, m.fold, m.value FROM checkpoints c JOIN metrics m USING (weights_id) "
                       "WHERE c.run_id = ? AND c.fold IS NULL AND m.scope = 'acdc' AND m.name = 'accuracy' "
                       "AND m.fold >= 0 ORDER BY c.epoch, m.fold", [run_id])
    out: dict[int, list[float]] = {}
    for epoch, _, value in rows:
        out.setdefault(int(epoch), []).append(float(value))
    return out


def _run(runner, store, weights: str, args, size: int) -> tuple[str, float]:
    from jobs.spec import JobSpec
    spec = JobSpec(kind="finetune", modality="cmr", dataset="acdc", weights=weights, recipe=args.recipe,
                   overrides={"input_size": size}, epochs=args.epochs, checkpoint_every=1, device=args.device,
                   seed=args.seed, name=f"bench acdc_init from {weights}")
    t0 = time.perf_counter()
    job_id = runner.submit(spec)
    while True:
        runner.poll()
        status = store.scalar("SELECT status FROM jobs WHERE job_id = ?", [job_id])
        if status in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(2)
    if status != "succeeded":
        raise RuntimeError(f"fine-tune {job_id} from {weights} ended {status}: "
                         f"{store.scalar('SELECT error FROM jobs WHERE job_id = ?', [job_id])}")
    from cardio_core.pipeline.runs import run_id_of
    return run_id_of(store, job_id), time.perf_counter() - t0


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="bench acdc_init", description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", default=None, help="workspace with an MMCL run (default: CARDIO_WORKSPACE)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--recipe", default="demo_cmr")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args(argv)
    from jobs.runner import LocalRunner
    ws = Workspace(Path(args.workspace).expanduser().resolve()) if args.workspace else Workspace.from_env()
    store = Store(ws.db_path)
    mmcl, size = _mmcl_image_encoder(store)
    from cardio_core.catalog import ensure_random_weights
    random_id = ensure_random_weights(store, "cmr")
    runner = LocalRunner(ws, store, max_concurrent=1)
    results = {}
    for label, wid in (("MMCL image encoder", mmcl), ("random weights", random_id)):
        run_id, seconds = _run(runner, store, wid, args, size)
        per_epoch = _fold_accuracies(store, run_id)
        best_epoch = max(per_epoch, key=lambda e: (fold_summary(per_epoch[e]).mean, -e))
        last_epoch = max(per_epoch)
        results[label] = {"run": run_id, "seconds": seconds, "best": (best_epoch, fold_summary(per_epoch[best_epoch])),
                          "last": (last_epoch, fold_summary(per_epoch[last_epoch]))}
    print(f"ACDC 5-fold fine-tune, recipe {args.recipe}, {args.epochs} epochs, input {size} px, seed {args.seed}; "
          f"chance {CHANCE:.2f}")
    print(f"{'start':<20} {'best epoch':>10} {'acc mean ± SE':>16} {'last epoch':>10} {'acc mean ± SE':>16} "
          f"{'wall s':>8}")
    for label, r in results.items():
        (be, b), (le, last) = r["best"], r["last"]
        print(f"{label:<20} {be:>10} {b.mean:>9.3f} ± {b.se:.3f} {le:>10} {last.mean:>9.3f} ± {last.se:.3f} "
              f"{r['seconds']:>8.0f}")
    m, rnd = results["MMCL image encoder"]["best"][1].mean, results["random weights"]["best"][1].mean
    print(f"MMCL - random (best epochs): {m - rnd:+.3f}")
    return {k: {"run": v["run"], "best_mean": v["best"][1].mean, "best_se": v["best"][1].se,
                "last_mean": v["last"][1].mean, "seconds": v["seconds"]} for k, v in results.items()}
