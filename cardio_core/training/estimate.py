"""How long a fine-tune would take here: records x epochs / training throughput.

Throughput comes from this workspace's own finished fine-tunes when there are some (samples
seen / seconds), else from `bench train` as measured on the project's 2-core CPU machines
(README, Benchmarks); a CUDA GPU is assumed 20x faster than those CPUs until a GPU run is
measured. Estimates are for planning a launch, not promises.
"""
from __future__ import annotations

from dataclasses import dataclass

# bench train on 2 CPU cores (README): ECG ViT 12.2 samples/s; ResNet-50 at 210x210, about 3 samples/s.
CPU_SAMPLES_PER_S = {"ecg": 12.0, "cmr": 3.0}
GPU_SPEEDUP = 20.0
LONG_RUN_S = 30 * 60   # beyond this the form asks for a confirmation


@dataclass(frozen=True)
class Estimate:
    seconds: float
    samples_per_s: float
    source: str        # where the throughput comes from

    @property
    def long(self) -> bool:
        return self.seconds > LONG_RUN_S

    def text(self) -> str:
        minutes = self.seconds / 60
        when = f"{minutes / 60:.1f} h" if minutes >= 90 else f"{max(1, round(minutes))} min"
        return f"about {when} ({self.samples_per_s:.1f} samples/s, {self.source})"


def estimate_training(modality: str, *, n_train: int, epochs: int, folds: int = 1, cuda: bool = False,
                      measured_samples_per_s: float | None = None) -> Estimate:
    """Seconds to train `epochs` epochs over `n_train` records (per fold, times `folds` for CMR)."""
    if modality not in CPU_SAMPLES_PER_S:
        raise ValueError(f"modality must be ecg or cmr, got {modality!r}")
    if n_train < 0 or epochs < 1 or folds < 1:
        raise ValueError(f"need n_train >= 0, epochs >= 1, folds >= 1; got {n_train}, {epochs}, {folds}")
    if measured_samples_per_s:
        rate, source = measured_samples_per_s, "measured in this workspace"
    else:
        rate = CPU_SAMPLES_PER_S[modality] * (GPU_SPEEDUP if cuda else 1.0)
        source = "bench estimate for a GPU" if cuda else "bench train on 2 CPU cores"
    return Estimate(seconds=n_train * epochs * folds / rate, samples_per_s=rate, source=source)
