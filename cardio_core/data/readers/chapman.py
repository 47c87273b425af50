"""Reader for Chapman-Shaoxing-Ningbo (PhysioNet `ecg-arrhythmia` 1.0.0), via wfdb.

Labels come from the Cha et al. table in `labels` (never from ConditionNames, which
misses 43 of the codes in use). A record whose codes all fall outside the table is
read normally with `labels == []`; the ingest step excludes it.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import wfdb
from scipy.signal import resample_poly

from cardio_core import labels as L
from cardio_core.errors import DatasetError, RecordError
from cardio_core.data.records import EcgRecord

FS = 500
MIN_SECONDS = 10.0
# The folder names a download usually leaves above WFDBRecords/ (zip and wget -r).
TOP_LEVEL_NAMES = (
    "a-large-scale-12-lead-electrocardiogram-database-for-arrhythmia-study-1.0.0",
    "physionet.org/files/ecg-arrhythmia/1.0.0",
)
_SEX = {"male": "M", "m": "M", "female": "F", "f": "F", "unknown": None}
_LEAD_INDEX = {name.lower(): i for i, name in enumerate(L.LEADS)}


def _records_dir(root: Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "Chapman folder does not exist")
    if root.name == "WFDBRecords":
        return root
    for candidate in (root, *(root / name for name in TOP_LEVEL_NAMES)):
        if (candidate / "WFDBRecords").is_dir():
            return candidate / "WFDBRecords"
    raise DatasetError(root, "no WFDBRecords/ folder here (expected <root>/WFDBRecords/NN/NNN/*.hea)")


def list_records(root: Path) -> list[Path]:
    """All `.hea` files under `WFDBRecords/*/*/`, sorted. Does not rely on RECORDS or the folder rule."""
    records = sorted(_records_dir(root).glob("*/*/*.hea"))
    if not records:
        raise DatasetError(root, "no .hea files under WFDBRecords/*/*/")
    return records


# -- header --------------------------------------------------------------------------

def _comment_fields(comments: list[str]) -> dict[str, str]:
    """`Age: 70` / ` Age:70` -> {'age': '70'}; the first occurrence of a key wins."""
    fields: dict[str, str] = {}
    for line in comments:
        key, sep, value = line.lstrip("#").partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def parse_dx(path: Path | str, value: str | None) -> list[str]:
    """Split a `#Dx:` value into SNOMED codes, dropping empty tokens (`a,,b,` occurs in the data)."""
    if value is None:
        raise RecordError(path, "header has no #Dx line")
    codes = [tok.strip() for tok in value.split(",") if tok.strip()]
    if not codes:
        raise RecordError(path, "#Dx line is empty")
    bad = [c for c in codes if not c.isdigit()]
    if bad:
        raise RecordError(path, f"malformed #Dx: {', '.join(map(repr, bad))} is not a SNOMED code")
    return codes


def _parse_age(value: str | None, warnings: list[str]) -> int | None:
    if value is None:
        warnings.append("age missing: header has no #Age line")
        return None
    if value.lower() == "nan" or value == "":
        warnings.append("age missing (#Age: NaN)")
        return None
    try:
        age = float(value)
    except ValueError:
        age = math.nan
    if not math.isfinite(age) or age != int(age) or not 0 <= age <= 150:
        warnings.append(f"malformed #Age: {value!r}; age set to missing")
        return None
    return int(age)


def _parse_sex(value: str | None, warnings: list[str]) -> str | None:
    if value is None:
        warnings.append("sex missing: header has no #Sex line")
        return None
    if value.lower() not in _SEX:
        warnings.append(f"malformed #Sex: {value!r}; sex set to missing")
        return None
    sex = _SEX[value.lower()]
    if sex is None:
        warnings.append("sex missing (#Sex: Unknown)")
    return sex


def _rdheader(hea_path: Path) -> wfdb.Record:
    if not hea_path.is_file():
        raise RecordError(hea_path, "header file does not exist")
    try:
        return wfdb.rdheader(str(hea_path.with_suffix("")))
    except Exception as exc:  # wfdb raises several types for a broken header
        raise RecordError(hea_path, f"cannot parse WFDB header: {exc}") from None


def read_header(hea_path: Path) -> dict:
    """Header fields, demographics and mapped labels, without reading the signal file."""
    hea_path = Path(hea_path)
    return _header_info(hea_path, _rdheader(hea_path))


def _header_info(hea_path: Path, header: wfdb.Record) -> dict:
    fields = _comment_fields(header.comments or [])
    warnings: list[str] = []
    codes = parse_dx(hea_path, fields.get("dx"))
    mapped, unmapped = L.map_snomed_codes(codes)
    return dict(
        record_id=hea_path.stem,
        fs=header.fs,
        n_samples=header.sig_len,
        lead_names=list(header.sig_name or []),
        age=_parse_age(fields.get("age"), warnings),
        sex=_parse_sex(fields.get("sex"), warnings),
        codes=codes,
        labels=mapped,
        unmapped_codes=unmapped,
        warnings=warnings,
    )


# -- signal (shared with the PTB-XL reader) --------------------------------------------

def lead_order(path: Path | str, lead_names: list[str]) -> list[int]:
    """Column index of each of `labels.LEADS` in the file, matched case-insensitively."""
    if len(lead_names) < len(L.LEADS):
        raise RecordError(path, f"record has {len(lead_names)} leads; 12 required")
    lowered = [str(n).strip().lower() for n in lead_names]
    unknown = [n for n, low in zip(lead_names, lowered) if low not in _LEAD_INDEX]
    if unknown:
        raise RecordError(path, f"unknown lead names {unknown}; expected {list(L.LEADS)}")
    if len(set(lowered)) != len(lowered):
        raise RecordError(path, f"duplicate lead names in {lead_names}")
    return [lowered.index(name.lower()) for name in L.LEADS]


def check_duration(path: Path | str, n_samples: int | None, fs: float | None) -> None:
    if not fs or fs <= 0:
        raise RecordError(path, f"invalid sampling rate {fs!r}")
    if n_samples is None or n_samples / fs < MIN_SECONDS - 1e-9:
        seconds = 0.0 if n_samples is None else n_samples / fs
        raise RecordError(path, f"record is {seconds:.1f} s; {MIN_SECONDS:.0f} s required")


def _check_signal_file_size(path: Path, header: wfdb.Record) -> None:
    """For format 16 the file size is fixed by the header; a mismatch means truncation or a wrong header."""
    files = set(header.file_name or [])
    if len(files) != 1 or set(header.fmt or []) != {"16"}:
        return  # other layouts: rely on wfdb's own checks
    data_file = path.parent / files.pop()
    if not data_file.is_file():
        raise RecordError(path, f"signal file {data_file.name} is missing")
    offset = max(header.byte_offset or [0], key=lambda b: b or 0) or 0
    expected = offset + 2 * header.n_sig * header.sig_len
    actual = data_file.stat().st_size
    if actual != expected:
        raise RecordError(path, f"header/data length mismatch: header says {header.sig_len} samples x "
                                f"{header.n_sig} leads ({expected} bytes), {data_file.name} has {actual} bytes")


def _load_wfdb(path: Path) -> wfdb.Record:
    """rdrecord once (header parsing dominates the cost); on failure, diagnose from the header alone."""
    if not path.is_file():
        raise RecordError(path, "header file does not exist")
    try:
        return wfdb.rdrecord(str(path.with_suffix("")))
    except Exception as exc:  # truncated/corrupt files surface as ValueError, IndexError, ...
        header = _rdheader(path)
        lead_order(path, list(header.sig_name or []))
        for name in sorted(set(header.file_name or [])):
            if not (path.parent / name).is_file():
                raise RecordError(path, f"signal file {name} is missing") from None
        _check_signal_file_size(path, header)
        raise RecordError(path, f"cannot read signal file: {type(exc).__name__}: {exc}") from None


def read_signal(path: Path, warnings: list[str]) -> tuple[np.ndarray, int, wfdb.Record]:
    """(12, n) float32 mV in LEADS order at 500 Hz with NaN samples kept, the output rate, and the
    wfdb record (its header fields and comments)."""
    record = _load_wfdb(path)
    order = lead_order(path, list(record.sig_name or []))
    check_duration(path, record.sig_len, record.fs)
    _check_signal_file_size(path, record)
    p_signal = record.p_signal
    if p_signal is None or p_signal.ndim != 2 or p_signal.shape[1] != len(record.sig_name):
        raise RecordError(path, "signal file did not yield a (samples, leads) array")
    if p_signal.shape[0] != record.sig_len:
        raise RecordError(path, f"header/data length mismatch: header says {record.sig_len} samples, "
                                f"file holds {p_signal.shape[0]}")
    signal = np.ascontiguousarray(p_signal[:, order].T, dtype=np.float32)

    nan_leads = [L.LEADS[i] for i in range(len(L.LEADS)) if np.isnan(signal[i]).any()]
    if nan_leads:
        warnings.append(f"{int(np.isnan(signal).sum())} invalid (NaN) samples in leads {', '.join(nan_leads)}")
    with np.errstate(invalid="ignore"):
        span = np.nanmax(signal, axis=1, initial=-np.inf) - np.nanmin(signal, axis=1, initial=np.inf)
    flat = [L.LEADS[i] for i in range(len(L.LEADS)) if not span[i] > 0]
    if flat:
        warnings.append(f"flat lead(s): {', '.join(flat)}")

    fs = record.fs
    if fs != FS:
        if float(fs) != int(fs):
            raise RecordError(path, f"sampling rate {fs} Hz is not an integer; cannot resample to {FS} Hz")
        g = math.gcd(int(fs), FS)
        up, down = FS // g, int(fs) // g
        if max(up, down) > 50:
            raise RecordError(path, f"sampling rate {fs} Hz cannot be resampled to {FS} Hz by a small ratio")
        nan_mask = np.isnan(signal)
        # resample_poly would smear a NaN over the filter length; zero it as preprocessing would.
        signal = resample_poly(np.where(nan_mask, 0.0, signal), up, down, axis=1).astype(np.float32)
        warnings.append(f"resampled from {fs:g} Hz to {FS} Hz" + (" (NaN samples zero-filled first)"
                                                                    if nan_mask.any() else ""))
    return signal, FS, record


def read_record(hea_path: Path) -> EcgRecord:
    """One Chapman record. Raises RecordError naming the file for anything unreadable."""
    hea_path = Path(hea_path)
    signal_warnings: list[str] = []
    signal, fs, record = read_signal(hea_path, signal_warnings)
    info = _header_info(hea_path, record)
    warnings = info["warnings"] + signal_warnings
    if info["unmapped_codes"]:
        warnings.append(f"SNOMED codes outside the 20-class table (ignored): {', '.join(info['unmapped_codes'])}")
    return EcgRecord(
        record_id=info["record_id"], dataset="chapman", signal=signal, fs=fs, source_path=str(hea_path),
        age=info["age"], sex=info["sex"], labels=info["labels"], codes=info["codes"],
        patient_id=info["record_id"],  # one record per patient in this release
        warnings=warnings,
    )
