"""Reader for a paired ECG + CMR cohort (UK Biobank-like): a folder with `manifest.csv`.

The manifest has one row per subject:

- `subject_id`; `ecg_path`, `cmr_path` (relative to the folder, or absolute);
- `age`, `sex` (M/F, Male/Female, or UK Biobank's 1 = male / 0 = female), `height` (cm), `weight` (kg);
- the CMR phenotypes `labels.CMR_PHENOTYPES` (mL, %, L/min, g);
- optional `ed_frame`, `es_frame`: 1-based frame numbers, as in ACDC's Info.cfg;
- optional outcome columns: any other column whose values are all 0, 1 or empty.

ECG files are WFDB (`.hea` + signal file, read by the Chapman reader's code) or UK Biobank's
CardioSoft XML (`.xml`, `cardiosoft_xml`). CMR files are 4-D short-axis cine NIfTIs (x, y, slices,
time), read like ACDC's. Without `ed_frame`/`es_frame`, ED = frame 1 and ES = round(0.35 T) + 1
(0.35 T is where systole ends in a cine that starts at the R wave, as the demo's cines do).

Validation: a row with a non-numeric phenotype, an LVEF or RVEF outside 5-95 %, a negative volume,
mass or output, an LVSV (RVSV) that differs from LVEDV - LVESV (RVEDV - RVESV) by more than 5 %, a bad
frame number, or a subject id used twice (every row with that id) is rejected with a problem naming
the manifest line and subject; the other rows go on. Empty demographics or phenotypes are missing
values (a warning), never an error.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cardio_core import labels as L
from cardio_core.errors import DatasetError, RecordError
from cardio_core.data.readers import acdc, cardiosoft_xml, chapman

MANIFEST = "manifest.csv"
ID_COLUMNS = ("subject_id", "ecg_path", "cmr_path")
DEMOGRAPHIC_COLUMNS = ("age", "sex", "height", "weight")
REQUIRED_COLUMNS = ID_COLUMNS + DEMOGRAPHIC_COLUMNS + L.CMR_PHENOTYPES
FRAME_COLUMNS = ("ed_frame", "es_frame")
EF_RANGE = (5.0, 95.0)
SV_TOLERANCE = 0.05
ES_FRACTION = 0.35
_NON_NEGATIVE = ("LVEDV", "LVESV", "LVSV", "LVCO", "LVM", "RVEDV", "RVESV", "RVSV")
_SEX = {"m": "M", "male": "M", "1": "M", "f": "F", "female": "F", "0": "F"}
_PLAUSIBLE = {"age": (0, 120), "height": (50, 250), "weight": (10, 400)}
_BINARY = {"", "0", "1", "0.0", "1.0"}


@dataclass
class ManifestRow:
    """One validated manifest row. Phenotypes and outcomes are NaN where the manifest leaves them empty."""
    subject_id: str
    line: int                                   # line number in manifest.csv (the header is line 1)
    ecg_path: Path
    cmr_path: Path
    age: float | None
    sex: str | None
    height: float | None
    weight: float | None
    phenotypes: dict[str, float]
    outcomes: dict[str, float]
    ed_frame: int | None = None
    es_frame: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"subject {self.subject_id} (manifest line {self.line})"


@dataclass
class Manifest:
    path: Path
    rows: list[ManifestRow]                     # valid rows, in file order
    problems: list[RecordError]                 # rejected rows: the error names manifest.csv, line and subject
    rejected: list[tuple[str, int, str]]        # (subject id or '', line, problem) of each rejected row
    outcome_columns: tuple[str, ...]
    ignored_columns: tuple[str, ...]            # extra columns that are not 0/1 outcomes


@dataclass
class PairedSubject:
    """One subject's ECG and CMR as read from disk, before preprocessing."""
    subject_id: str
    ecg: np.ndarray                             # (12, n) float32 mV, labels.LEADS order, at `fs`
    fs: int
    ecg_path: str
    ecg_format: str                             # 'wfdb' | 'cardiosoft_xml'
    cmr: np.ndarray                             # (x, y, slices, time) float32
    spacing: tuple[float, float, float]
    cmr_path: str
    ed: int                                     # 1-based
    es: int                                     # 1-based
    n_frames: int
    row: ManifestRow
    warnings: list[str] = field(default_factory=list)


def default_frames(n_frames: int) -> tuple[int, int]:
    """(ED, ES), 1-based, for a cine without ed_frame / es_frame: ED = 1, ES = round(0.35 T) + 1."""
    return 1, int(round(ES_FRACTION * n_frames)) + 1


def _number(text: str) -> float:
    """float(text); NaN for an empty field; ValueError for anything else that is not a finite number."""
    text = text.strip()
    if text == "" or text.lower() in ("nan", "na"):
        return math.nan
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _resolve(root: Path, value: str) -> Path:
    p = Path(value.strip()).expanduser()
    return p if p.is_absolute() else root / p


def _demographics(raw: dict, warnings: list[str]) -> dict:
    out: dict = {}
    for col in ("age", "height", "weight"):
        text = (raw.get(col) or "").strip()
        try:
            value = _number(text)
        except ValueError:
            warnings.append(f"{col} {text!r} is not a number; set to missing")
            value = math.nan
        lo, hi = _PLAUSIBLE[col]
        if not math.isnan(value) and not lo <= value <= hi:
            warnings.append(f"{col} {value:g} is outside {lo}-{hi}; set to missing")
            value = math.nan
        if math.isnan(value):
            if not text:
                warnings.append(f"{col} missing")
            out[col] = None
        else:
            out[col] = value
    sex = (raw.get("sex") or "").strip()
    out["sex"] = _SEX.get(sex.lower().removesuffix(".0"))
    if out["sex"] is None:
        warnings.append(f"sex {sex!r} is not M/F; set to missing" if sex else "sex missing")
    return out


def _phenotype_problems(ph: dict[str, float]) -> list[str]:
    problems = []
    negative = [k for k in _NON_NEGATIVE if ph[k] < 0]
    if negative:
        problems.append("negative " + ", ".join(f"{k} {ph[k]:g}" for k in negative))
    for k in ("LVEF", "RVEF"):
        if not math.isnan(ph[k]) and not EF_RANGE[0] <= ph[k] <= EF_RANGE[1]:
            problems.append(f"{k} {ph[k]:g} % is outside {EF_RANGE[0]:g}-{EF_RANGE[1]:g} %")
    for side in ("LV", "RV"):
        edv, esv, sv = ph[f"{side}EDV"], ph[f"{side}ESV"], ph[f"{side}SV"]
        if any(math.isnan(v) for v in (edv, esv, sv)):
            continue
        diff = edv - esv
        if abs(sv - diff) > SV_TOLERANCE * abs(diff):
            problems.append(f"{side}SV {sv:g} differs from {side}EDV - {side}ESV = {diff:g} by more than "
                            f"{SV_TOLERANCE:.0%}")
    return problems


def read_manifest(root: str | Path) -> Manifest:
    """Read and validate `<root>/manifest.csv`. DatasetError when the folder, the file or a required
    column is missing; a bad row is rejected (Manifest.problems) and the rest is returned."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "paired cohort folder does not exist")
    path = root / MANIFEST
    if not path.is_file():
        raise DatasetError(path, "the paired cohort has no manifest.csv")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="iso-8859-1")
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in (reader.fieldnames or [])]
    reader.fieldnames = columns
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise DatasetError(path, f"manifest.csv lacks the columns {', '.join(missing)}")
    raw_rows = []
    for raw in reader:
        raw_rows.append((reader.line_num, {k: (v or "") for k, v in raw.items() if k is not None}))
    extra = [c for c in columns if c not in REQUIRED_COLUMNS and c not in FRAME_COLUMNS]
    outcomes = tuple(c for c in extra if all(r[c].strip() in _BINARY for _, r in raw_rows))
    ignored = tuple(c for c in extra if c not in outcomes)

    ids: dict[str, list[int]] = {}
    for line, raw in raw_rows:
        ids.setdefault(raw["subject_id"].strip(), []).append(line)
    rows, problems, rejected = [], [], []

    def reject(sid: str, line: int, problem: str):
        who = f"subject {sid}" if sid else "no subject_id"
        problems.append(RecordError(path, f"line {line}, {who}: {problem}"))
        rejected.append((sid, line, problem))

    for line, raw in raw_rows:
        sid = raw["subject_id"].strip()
        if not sid:
            reject(sid, line, "subject_id is empty")
            continue
        if len(ids[sid]) > 1:
            reject(sid, line, f"subject id {sid} appears on lines {', '.join(map(str, ids[sid]))}; "
                              "every row with it is left out")
            continue
        bad = []
        for col in ("ecg_path", "cmr_path"):
            if not raw[col].strip():
                bad.append(f"{col} is empty")
        ph: dict[str, float] = {}
        for col in L.CMR_PHENOTYPES:
            try:
                ph[col] = _number(raw[col])
            except ValueError:
                bad.append(f"{col} {raw[col].strip()!r} is not a number")
                ph[col] = math.nan
        if not bad:
            bad += _phenotype_problems(ph)
        frames = {}
        for col in FRAME_COLUMNS:
            text = raw.get(col, "").strip()
            if not text:
                frames[col] = None
                continue
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not (math.isfinite(value) and value == int(value) and value >= 1):
                bad.append(f"{col} {text!r} is not a frame number (1, 2, ...)")
            else:
                frames[col] = int(value)
        if bad:
            reject(sid, line, "; ".join(bad))
            continue
        warnings: list[str] = []
        demo = _demographics(raw, warnings)
        empty = [c for c in L.CMR_PHENOTYPES if math.isnan(ph[c])]
        if empty:
            warnings.append(f"phenotypes missing: {', '.join(empty)}")
        outcome_values = {c: _number(raw[c]) for c in outcomes}
        rows.append(ManifestRow(
            subject_id=sid, line=line, ecg_path=_resolve(root, raw["ecg_path"]),
            cmr_path=_resolve(root, raw["cmr_path"]), phenotypes=ph, outcomes=outcome_values,
            ed_frame=frames.get("ed_frame"), es_frame=frames.get("es_frame"), warnings=warnings, **demo))
    return Manifest(path=path, rows=rows, problems=problems, rejected=rejected, outcome_columns=outcomes,
                    ignored_columns=ignored)


def _named(row: ManifestRow, exc: RecordError) -> RecordError:
    return RecordError(exc.path, f"{row.where}: {exc.problem}")


def read_ecg(row: ManifestRow) -> tuple[np.ndarray, int, str, list[str]]:
    """(signal (12, n) float32 mV at 500 Hz, fs, format, warnings) of a row's ECG; RecordError names the file."""
    path = row.ecg_path
    suffix = path.suffix.lower()
    warnings: list[str] = []
    try:
        if suffix == ".xml":
            signal, fs = cardiosoft_xml.read_record(path)
            return signal, fs, "cardiosoft_xml", warnings
        if suffix == ".hea" or (suffix == "" and path.with_suffix(".hea").is_file()):
            signal, fs, _ = chapman.read_signal(path.with_suffix(".hea"), warnings)
            return signal, fs, "wfdb", warnings
    except RecordError as exc:
        raise _named(row, exc) from None
    if not path.exists():
        raise RecordError(path, f"{row.where}: ECG file does not exist")
    raise RecordError(path, f"{row.where}: unsupported ECG file type {suffix or '(none)'!r}; expected a WFDB "
                            "header (.hea) or a CardioSoft XML (.xml)")


def read_cmr(row: ManifestRow) -> tuple[np.ndarray, tuple[float, float, float], int, int]:
    """(cine (x, y, z, t) float32, spacing, ED, ES) of a row's CMR, ED/ES 1-based (the manifest's, or
    `default_frames`). RecordError names the file: missing, not 4-D, unreadable, frames out of range."""
    try:
        volume, spacing = acdc.read_cine(row.cmr_path)
    except RecordError as exc:
        raise _named(row, exc) from None
    n_frames = volume.shape[3]
    ed, es = default_frames(n_frames)
    ed = row.ed_frame if row.ed_frame is not None else ed
    es = row.es_frame if row.es_frame is not None else es
    for name, value in (("ed_frame", ed), ("es_frame", es)):
        if not 1 <= value <= n_frames:
            raise RecordError(row.cmr_path, f"{row.where}: {name} {value} is outside the cine's frames "
                                            f"1..{n_frames}")
    return volume, spacing, ed, es


def read_subject(root: str | Path, row: ManifestRow) -> PairedSubject:
    """Both files of one manifest row. `root` is the cohort folder (the row's paths are already
    resolved against it by read_manifest; it is kept for symmetry with the other readers)."""
    del root
    ecg, fs, fmt, ecg_warnings = read_ecg(row)
    cmr, spacing, ed, es = read_cmr(row)
    return PairedSubject(
        subject_id=row.subject_id, ecg=ecg, fs=fs, ecg_path=str(row.ecg_path), ecg_format=fmt,
        cmr=cmr, spacing=spacing, cmr_path=str(row.cmr_path), ed=ed, es=es, n_frames=cmr.shape[3],
        row=row, warnings=list(row.warnings) + ecg_warnings)
