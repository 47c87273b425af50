"""One record as the preview shows it: its row and classes, and its signal (raw from the dataset files,
or preprocessed), read only from under the workspace's data roots."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from cardio_core.queries.points import check_choice


def record_info(store, dataset_id: str, record_id: str) -> dict[str, Any] | None:
    """The record row plus its dataset's source/preprocessed folders and its classes, or None."""
    rows = store.query_df(
        "SELECT r.*, d.modality, d.source_dir, d.preprocessed_dir FROM records r JOIN datasets d USING (dataset_id) "
        "WHERE r.dataset_id = ? AND r.record_id = ?", [dataset_id, record_id])
    if rows.empty:
        return None
    info = rows.iloc[0].to_dict()
    info["classes"] = [r[0] for r in store.query(
        "SELECT class FROM labels WHERE dataset_id = ? AND record_id = ? ORDER BY class", [dataset_id, record_id])]
    info["has_preprocessed"] = bool(store.scalar(
        "SELECT count(*) FROM preprocessed WHERE dataset_id = ? AND record_id = ?", [dataset_id, record_id]))
    return info


def load_record_signal(store, info: dict[str, Any], which: str, roots: Iterable[Path]) -> tuple[np.ndarray, float]:
    """(array, sampling rate) of a record from record_info(), raw or preprocessed; files must lie under `roots`.

    Preprocessed ECG is (12, 5000) at 500 Hz, CMR (3, 210, 210) ED / mid / ES (rate 0).

    Raises ValueError (path outside the roots) or the reader's RecordError / ImportError.
    """
    check_choice("which", which, ("raw", "preprocessed"))
    roots = [Path(r).resolve() for r in roots]

    def inside(path) -> Path:
        p = Path(path).resolve()
        if not any(p.is_relative_to(r) for r in roots):
            raise ValueError(f"{p}: outside the workspace's data roots; refusing to read it")
        return p

    if which == "preprocessed":
        from cardio_core.data.preprocessing.storage import PreprocessedArrays
        directory = inside(info["preprocessed_dir"])
        arrays = PreprocessedArrays.from_store(store, directory, info["dataset_id"], [info["record_id"]])
        array = arrays.get(info["record_id"])
        return array, (500.0 if info.get("modality") != "cmr" else 0.0)
    if info["dataset_id"] == "ptbxl":
        from cardio_core.data.readers import ptbxl
        record = ptbxl.read_record(inside(info["source_dir"]), int(info["record_id"]))
    elif info["dataset_id"] == "acdc":
        raise ValueError("raw CMR volumes are not previewed; choose 'preprocessed' for the ED / mid / ES frames")
    else:
        from cardio_core.data.readers import chapman
        record = chapman.read_record(inside(info["source_path"]))
    return np.asarray(record.signal), float(record.fs)


def identifiers(store) -> frozenset[str]:
    """Every record id and patient id in the store: what review mode removes from free text."""
    rows = store.query("SELECT DISTINCT record_id FROM records UNION SELECT DISTINCT patient_id FROM records "
                       "WHERE patient_id IS NOT NULL")
    return frozenset(str(r[0]) for r in rows if r[0] is not None and str(r[0]).strip())


_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\w.\-~]*[/\\])+[\w.\-]*")
_TOKEN = re.compile(r"[A-Za-z0-9_\-]+")


def redact_text(text: str | None, ids: Iterable[str]) -> str:
    """Free text (a log tail, an error) de-identified: file paths become '<path>', record and patient ids
    '<id>'. Purely numeric ids (PTB-XL's ecg_id) are removed when they have 3 or more digits, so epochs,
    counts and percentages in a log stay readable."""
    if not text:
        return ""
    ids = ids if isinstance(ids, (set, frozenset)) else set(ids)
    out = _PATH.sub("<path>", str(text))

    def token(m):
        t = m.group(0)
        if t in ids and (not t.isdigit() or len(t) >= 3):
            return "<id>"
        return t
    return _TOKEN.sub(token, out)
