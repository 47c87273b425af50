"""Reader for ACDC cine-MRI exams: Info.cfg and the 4-D NIfTI, via nibabel.

Accepts both releases: the 2017 challenge layout (`training/`, `testing/`) and the
Human Heart Project zip (`database/training|testing/`).
"""
from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np

from cardio_core import labels as L
from cardio_core.errors import DatasetError, RecordError
from cardio_core.data.records import CmrRecord

_PATIENT_DIR = re.compile(r"patient\d+")
_SPLITS = ("training", "testing")
_NEEDED_KEYS = ("ED", "ES", "NbFrame", "Height", "Weight")


def _patient_dirs(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_dir() and _PATIENT_DIR.fullmatch(p.name)]


def list_patients(root: Path) -> list[Path]:
    """Patient folders under `root`, which may hold training/ and testing/, database/, or patientNNN/ directly."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "ACDC folder does not exist")
    base = root / "database" if (root / "database").is_dir() else root
    patients = [p for split in _SPLITS if (base / split).is_dir() for p in _patient_dirs(base / split)]
    patients += _patient_dirs(base)
    if not patients:
        raise DatasetError(root, "no patientNNN folders here (expected training/, testing/ or database/ "
                                 "holding patientNNN/)")
    return sorted(patients, key=lambda p: (p.name, str(p)))


def read_info(cfg_path: Path) -> dict:
    """Info.cfg as {'ED', 'ES', 'NbFrame': int, 'Height', 'Weight': float, 'Group': str | None}."""
    cfg_path = Path(cfg_path)
    if not cfg_path.is_file():
        raise RecordError(cfg_path, "Info.cfg is missing")
    try:
        text = cfg_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise RecordError(cfg_path, "Info.cfg is not text") from None
    raw: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            raw[key.strip()] = value.strip()
    missing = [k for k in _NEEDED_KEYS if not raw.get(k)]
    if missing:
        raise RecordError(cfg_path, f"Info.cfg lacks {', '.join(missing)}")
    info: dict = {}
    for key in _NEEDED_KEYS:
        try:
            number = float(raw[key])
        except ValueError:
            raise RecordError(cfg_path, f"Info.cfg {key} is not a number: {raw[key]!r}") from None
        if key in ("ED", "ES", "NbFrame"):
            if number != int(number):
                raise RecordError(cfg_path, f"Info.cfg {key} is not an integer: {raw[key]!r}")
            number = int(number)
        info[key] = number
    group = raw.get("Group") or None
    if group is not None and group not in L.ACDC_GROUPS:
        raise RecordError(cfg_path, f"Info.cfg Group {group!r} is not one of {list(L.ACDC_GROUPS)}")
    info["Group"] = group
    return info


def _load_4d(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    if not path.is_file():
        raise RecordError(path, "4-D cine NIfTI is missing")
    try:
        img = nib.load(str(path))
        shape = img.shape
        if len(shape) != 4:
            raise RecordError(path, f"NIfTI is {len(shape)}-D with shape {shape}; a 4-D cine (x, y, z, t) "
                                    "is required")
        volume = np.asarray(img.get_fdata(dtype=np.float32))
        spacing = tuple(float(z) for z in img.header.get_zooms()[:3])
    except RecordError:
        raise
    except Exception as exc:  # gzip/EOF/header errors come in many types
        raise RecordError(path, f"cannot read NIfTI (corrupt or truncated?): {type(exc).__name__}: {exc}") from None
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise RecordError(path, f"invalid voxel spacing {spacing}")
    return volume, spacing


def read_cine(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A 4-D short-axis cine NIfTI (x, y, slices, time) as float32 and its voxel spacing (mm).

    RecordError naming the file when it is missing, not 4-D, unreadable or has a bad spacing.
    Shared with the paired-cohort reader."""
    return _load_4d(Path(path))


def cine_path(folder: Path) -> Path:
    """The patient's 4-D cine: `<patient>_4d.nii.gz`, or the uncompressed `<patient>_4d.nii` some copies hold.

    When neither exists the .nii.gz name is returned, so the error names the file the dataset documents."""
    gz = folder / f"{folder.name}_4d.nii.gz"
    plain = folder / f"{folder.name}_4d.nii"
    return plain if not gz.exists() and plain.exists() else gz


def read_patient(folder: Path) -> CmrRecord:
    """One exam: the 4-D cine as float32 (x, y, z, t), ED/ES (1-based) and the Info.cfg demographics."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RecordError(folder, "patient folder does not exist")
    info = read_info(folder / "Info.cfg")
    nifti = cine_path(folder)
    volume, spacing = _load_4d(nifti)
    n_frames = volume.shape[3]
    if info["NbFrame"] != n_frames:
        raise RecordError(nifti, f"Info.cfg NbFrame is {info['NbFrame']} but the cine has {n_frames} frames")
    for key in ("ED", "ES"):
        if not 1 <= info[key] <= n_frames:
            raise RecordError(folder / "Info.cfg", f"{key} {info[key]} is outside 1..{n_frames}")
    warnings: list[str] = []
    if info["Group"] is None:
        warnings.append("Info.cfg has no Group")
    height, weight = info["Height"], info["Weight"]
    bmi = None
    if height > 0 and weight > 0:
        bmi = weight / (height / 100.0) ** 2
    else:
        warnings.append(f"cannot compute BMI from Height {height} and Weight {weight}")
    return CmrRecord(
        record_id=folder.name, dataset="acdc", volume=volume, spacing=spacing,
        ed=info["ED"], es=info["ES"], n_frames=n_frames, source_path=str(folder),
        group=info["Group"], height=height, weight=weight, bmi=bmi, bmi_category=L.bmi_category(bmi),
        warnings=warnings,
    )
