"""Embedding throughput: cardio_core.analysis.embeddings.compute_embeddings vs a bare torch loop, same model, same batches.

`python -m bench embed [--n=N] [--batch-size=256] [--repeats=3] [--device=auto] [--threads=0]`

The model is the real EcgViT (`create_model("ecg_vit_small")`, random weights: the speed
does not depend on them). Records are (12, 5000) float32 like the preprocessed store;
both paths embed the evaluation crop (samples 0..2499). Timed, interleaved, best of
`repeats` after one untimed warm-up pass:
  bare          batch slices of the same array -> device -> model.forward_features under
                torch.inference_mode -> host (the loop one would write by hand)
  bare compute  the same forward on batches already on the device (model time only)
  pipeline      compute_embeddings(model, arrays, modality='ecg', ...)
On CUDA the bare loops run in fp32 and in bf16 autocast; the pipeline uses bf16 autocast,
so its overhead is measured against bare bf16. Goals: overhead <= 10 %; on an H100
>= 20k records/s.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from cardio_core.analysis.embeddings import compute_embeddings
from cardio_core.models import create_model

CROP = 2500


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(model, arrays: np.ndarray, batch_size: int, device: torch.device, bf16: bool) -> np.ndarray:
    out = []
    with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(arrays), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(arrays[start:start + batch_size, None, :, :CROP]))
            out.append(model.forward_features(x.to(device, non_blocking=True)).float().cpu().numpy())
    return np.concatenate(out)


def bare_compute(model, batches: list[torch.Tensor], device: torch.device, bf16: bool) -> None:
    with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
        for x in batches:
            model.forward_features(x)
    _sync(device)


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _table(rows: list[tuple[str, float]], n: int, reference: float | None) -> None:
    print(f"  {'path':<22s} {'seconds':>9s} {'records/s':>11s} {'vs bare':>9s}")
    for name, seconds in rows:
        ratio = f"{seconds / reference - 1:+8.1%}" if reference else ""
        print(f"  {name:<22s} {seconds:9.3f} {n / seconds:11.0f} {ratio:>9s}")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="bench embed")
    parser.add_argument("--n", type=int, default=None, help="records (default 512 on CPU, 32768 on CUDA)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    args, _ = parser.parse_known_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench embed: --device cuda asked for, but torch sees no CUDA device")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    n = args.n or (32768 if device.type == "cuda" else 512)
    if n < 1 or args.batch_size < 1 or args.repeats < 1:
        raise SystemExit("bench embed: --n, --batch-size and --repeats must be >= 1")

    torch.manual_seed(args.seed)
    model = create_model("ecg_vit_small").to(device).eval()
    arrays = np.random.default_rng(args.seed).standard_normal((n, 12, 5000), dtype=np.float32)
    on_device = [torch.from_numpy(np.ascontiguousarray(arrays[s:s + args.batch_size, None, :, :CROP])).to(device)
                 for s in range(0, n, args.batch_size)]
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"EcgViT (ecg_vit_small) embeddings: {n} records, batch {args.batch_size}, {name}, "
          f"best of {args.repeats}")

    paths = {"bare fp32": lambda: (bare_loop(model, arrays, args.batch_size, device, False), _sync(device)),
             "bare compute fp32": lambda: bare_compute(model, on_device, device, False)}
    if cuda:
        paths["bare bf16"] = lambda: (bare_loop(model, arrays, args.batch_size, device, True), _sync(device))
        paths["bare compute bf16"] = lambda: bare_compute(model, on_device, device, True)
    paths["pipeline" + (" (bf16)" if cuda else "")] = lambda: (compute_embeddings(
        model, arrays, modality="ecg", batch_size=args.batch_size, device=str(device), crop_length=CROP),
        _sync(device))

    # the two paths must give the same vectors, or the comparison means nothing
    check = min(n, args.batch_size)
    ref = bare_loop(model, arrays[:check], args.batch_size, device, cuda)
    got, _ = compute_embeddings(model, arrays[:check], modality="ecg", batch_size=args.batch_size,
                                device=str(device), crop_length=CROP)
    if not np.allclose(ref, got, atol=1e-2 if cuda else 1e-5, rtol=1e-2 if cuda else 1e-5):
        raise RuntimeError("compute_embeddings and the bare loop disagree on the same records")

    for fn in paths.values():  # warm-up: cuDNN/kernel selection, allocator, first-touch pages
        fn()
    best = {k: float("inf") for k in paths}
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits every path alike
        for k, fn in paths.items():
            best[k] = min(best[k], _timed(fn))
    reference = best["bare bf16" if cuda else "bare fp32"]
    _table(list(best.items()), n, reference)
    pipeline_key = next(k for k in best if k.startswith("pipeline"))
    overhead = best[pipeline_key] / reference - 1
    print(f"  pipeline overhead vs bare loop: {overhead:+.1%} (goal <= +10%)")
    if cuda:
        rate = n / best[pipeline_key]
        print(f"  pipeline records/s on {name}: {rate:.0f} (goal >= 20000 on an H100)")
    return {"n": n, "device": str(device), "seconds": best, "overhead": overhead,
            "records_per_s": {k: n / v for k, v in best.items()}}


if __name__ == "__main__":
    main()
