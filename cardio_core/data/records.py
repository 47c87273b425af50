"""In-memory records returned by the dataset readers."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class EcgRecord:
    """One 12-lead ECG as read from disk, before preprocessing.

    `signal` is (12, n_samples) float32 in mV, leads in `labels.LEADS` order
    (reordered from the file if needed). NaN samples are kept as NaN here:
    preprocessing step 2 zero-fills them.
    """
    record_id: str
    dataset: str                    # "chapman" | "ptbxl"
    signal: np.ndarray
    fs: int
    source_path: str
    age: float | None = None
    sex: str | None = None          # "M" | "F" | None
    labels: list[str] = field(default_factory=list)   # mapped classes (labels.CLASSES)
    codes: list[str] = field(default_factory=list)    # raw SNOMED codes / SCP statements
    patient_id: str | None = None
    height: float | None = None
    weight: float | None = None
    extra: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # non-fatal problems (flat lead, NaN, unknown code)


@dataclass
class CmrRecord:
    """One ACDC exam: the 4-D cine volume (x, y, z, t) and its Info.cfg."""
    record_id: str                  # "patient001"
    dataset: str                    # "acdc"
    volume: np.ndarray              # (x, y, z, t) float32
    spacing: tuple[float, float, float]
    ed: int                         # 1-based, as in Info.cfg
    es: int                         # 1-based
    n_frames: int
    source_path: str
    group: str | None = None
    height: float | None = None     # cm
    weight: float | None = None     # kg
    bmi: float | None = None
    bmi_category: str | None = None
    warnings: list[str] = field(default_factory=list)
