"""Reader for PTB-XL 1.0.3: the metadata tables and the 500 Hz records (`filename_hr`)."""
from __future__ import annotations

import ast
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from cardio_core import labels as L
from cardio_core.errors import DatasetError, RecordError
from cardio_core.data.records import EcgRecord
from cardio_core.data.readers.chapman import read_signal

DATABASE_CSV = "ptbxl_database.csv"
STATEMENTS_CSV = "scp_statements.csv"
TOP_LEVEL_NAMES = (
    "ptb-xl-a-large-publicly-available-electrocardiography-dataset-1.0.3",
    "physionet.org/files/ptb-xl/1.0.3",
)
AGE_OVER_89 = 300      # how 1.0.3 stores ages above 89
AGE_SHOWN_FOR_OVER_89 = 90
_REQUIRED_COLUMNS = ("ecg_id", "patient_id", "age", "sex", "scp_codes", "filename_hr")


def find_root(root: Path) -> Path:
    """The folder holding ptbxl_database.csv: `root` itself or a download folder inside it."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "PTB-XL folder does not exist")
    for candidate in (root, *(root / name for name in TOP_LEVEL_NAMES)):
        if (candidate / DATABASE_CSV).is_file():
            return candidate
    raise DatasetError(root, f"no {DATABASE_CSV} here")


def _parse_scp_codes(csv_path: Path, ecg_id, text) -> dict[str, float]:
    try:
        codes = ast.literal_eval(text) if isinstance(text, str) else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        codes = None
    if not isinstance(codes, dict) or not all(isinstance(k, str) for k in codes):
        raise RecordError(csv_path, f"ecg_id {ecg_id}: malformed scp_codes {text!r} (expected a dict literal)")
    try:
        return {k: float(v) for k, v in codes.items()}
    except (TypeError, ValueError):
        raise RecordError(csv_path, f"ecg_id {ecg_id}: scp_codes likelihoods are not numbers: {text!r}") from None


def rhythm_labels(scp_codes: dict) -> list[str]:
    """Chapman rhythm classes of a record's SCP statements (BIGU/TRIGU have none)."""
    found = {L.PTBXL_RHYTHM_MAP[c] for c in scp_codes if c in L.PTBXL_RHYTHM_MAP}
    return sorted(found, key=L.CLASS_INDEX.__getitem__)


def read_database(root: Path) -> tuple[pd.DataFrame, list[RecordError]]:
    """ptbxl_database.csv indexed by ecg_id, with parsed scp_codes, age, sex and rhythm_labels.

    Rows whose scp_codes cannot be parsed, or whose ecg_id repeats, are left out and
    reported in the returned problems instead of stopping the whole dataset.
    """
    csv_path = find_root(root) / DATABASE_CSV
    try:
        raw = pd.read_csv(csv_path, dtype={"scp_codes": str, "filename_hr": str, "filename_lr": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(csv_path, f"cannot parse CSV: {exc}") from None
    missing = [c for c in _REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise DatasetError(csv_path, f"missing columns {missing}")
    ecg_ids = pd.to_numeric(raw["ecg_id"], errors="coerce")
    if ecg_ids.isna().any() or (ecg_ids != ecg_ids.round()).any():
        bad = raw.loc[ecg_ids.isna() | (ecg_ids != ecg_ids.round()), "ecg_id"].tolist()[:5]
        raise DatasetError(csv_path, f"ecg_id values that are not integers: {bad}")
    raw["ecg_id"] = ecg_ids.astype(int)

    problems: list[RecordError] = []
    dup = raw["ecg_id"].duplicated(keep="first")
    for eid in raw.loc[dup, "ecg_id"]:
        problems.append(RecordError(csv_path, f"ecg_id {eid} appears more than once; the first row is kept"))
    raw = raw.loc[~dup]

    parsed, keep = [], []
    for eid, text in zip(raw["ecg_id"], raw["scp_codes"]):
        try:
            parsed.append(_parse_scp_codes(csv_path, eid, text))
            keep.append(True)
        except RecordError as err:
            problems.append(err)
            keep.append(False)
    df = raw.loc[keep].copy()
    df["scp_codes"] = parsed

    age = pd.to_numeric(df["age"], errors="coerce").astype(float)
    df["age_over_89"] = age >= AGE_OVER_89
    df["age"] = age.where(~df["age_over_89"], float(AGE_SHOWN_FOR_OVER_89))
    df["sex"] = pd.to_numeric(df["sex"], errors="coerce").map({0: "M", 1: "F"}).astype(object)
    df["sex"] = df["sex"].where(df["sex"].notna(), None)
    df["patient_id"] = pd.to_numeric(df["patient_id"], errors="coerce")
    for col in ("height", "weight"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["rhythm_labels"] = [rhythm_labels(c) for c in df["scp_codes"]]
    return df.set_index("ecg_id").sort_index(), problems


def read_scp_statements(root: Path) -> pd.DataFrame:
    """scp_statements.csv, indexed by statement code (its first header cell is empty)."""
    path = find_root(root) / STATEMENTS_CSV
    if not path.is_file():
        raise DatasetError(path, f"{STATEMENTS_CSV} is missing")
    try:
        return pd.read_csv(path, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(path, f"cannot parse CSV: {exc}") from None


def select_one_per_patient(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One seeded random record per patient_id; rows without a patient_id are all kept.

    Deterministic for a seed regardless of the row order of `df`.
    """
    if "patient_id" not in df.columns:
        raise ValueError("df needs a 'patient_id' column")
    ordered = df.sort_index()
    draw = pd.Series(np.random.default_rng(seed).random(len(ordered)), index=ordered.index)
    has_patient = ordered["patient_id"].notna()
    chosen = draw[has_patient].groupby(ordered.loc[has_patient, "patient_id"]).idxmin()
    keep = ordered.index[~has_patient].union(pd.Index(chosen.values))
    return ordered.loc[keep].sort_index()


# read_record is called once per record by ingest; parse the CSV once per file version.
_DB_CACHE: dict[Path, tuple[tuple[int, int], pd.DataFrame]] = {}
_DB_LOCK = threading.Lock()


def _cached_database(root: Path) -> pd.DataFrame:
    csv_path = find_root(root) / DATABASE_CSV
    stat = csv_path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    with _DB_LOCK:
        hit = _DB_CACHE.get(csv_path)
        if hit is None or hit[0] != key:
            hit = (key, read_database(root)[0])
            _DB_CACHE[csv_path] = hit
        return hit[1]


def _none_if_nan(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def read_record(root: Path, ecg_id_or_row) -> EcgRecord:
    """One 500 Hz record, given its ecg_id or its row of `read_database`."""
    root = Path(root)
    if isinstance(ecg_id_or_row, pd.Series):
        row, ecg_id = ecg_id_or_row, int(ecg_id_or_row.name)
    else:
        ecg_id = int(ecg_id_or_row)
        db = _cached_database(root)
        if ecg_id not in db.index:
            raise RecordError(find_root(root) / DATABASE_CSV, f"ecg_id {ecg_id} is not in {DATABASE_CSV} "
                                                             "(or its row could not be parsed)")
        row = db.loc[ecg_id]
    rel = row.get("filename_hr")
    if not isinstance(rel, str) or not rel.strip():
        raise RecordError(find_root(root) / DATABASE_CSV, f"ecg_id {ecg_id}: filename_hr is empty")
    hea = find_root(root) / f"{rel.strip()}.hea"
    if not hea.is_file():
        raise RecordError(hea, f"record named in {DATABASE_CSV} (ecg_id {ecg_id}, filename_hr) is missing")
    warnings: list[str] = []
    signal, fs, _ = read_signal(hea, warnings)
    scp = dict(row["scp_codes"])
    age = _none_if_nan(row.get("age"))
    if age is None:
        warnings.append("age missing in ptbxl_database.csv")
    patient = _none_if_nan(row.get("patient_id"))
    return EcgRecord(
        record_id=str(ecg_id), dataset="ptbxl", signal=signal, fs=fs, source_path=str(hea),
        age=None if age is None else float(age), sex=_none_if_nan(row.get("sex")),
        labels=list(row["rhythm_labels"]), codes=list(scp),
        patient_id=None if patient is None else str(int(patient)),
        height=_none_if_nan(row.get("height")), weight=_none_if_nan(row.get("weight")),
        extra={"scp_codes": scp, "age_over_89": bool(row.get("age_over_89", False)),
               "strat_fold": _none_if_nan(row.get("strat_fold"))},
        warnings=warnings,
    )
