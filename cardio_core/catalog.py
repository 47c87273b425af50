"""The weights catalogue: every loadable encoder the workspace knows, with lineage.

Rows live in the `weights` table. Files dropped into <workspace>/weights/ are found by
`scan_weights_dir` and registered as kind 'released' after a trial load that checks the
layout (problems go to the problems table with the file named, and the scan goes on).
Fine-tuned checkpoints are registered by the training job as kind 'checkpoint' with
their parent; the random-init baseline is kind 'random' and has no file.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from .config import Workspace
from .errors import CardioError
from .store import Store, to_json

WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80] or "weights"


def register_weights(store: Store, *, weights_id: str, modality: str, name: str, kind: str,
                     path: str | None = None, sha256: str | None = None, parent_weights_id: str | None = None,
                     load_report: dict | None = None) -> str:
    if kind not in ("released", "pretrained", "random", "checkpoint"):
        raise ValueError(f"kind must be released|pretrained|random|checkpoint, got {kind!r}")
    if modality not in ("ecg", "cmr"):
        raise ValueError(f"modality must be ecg|cmr, got {modality!r}")
    with store.write() as con:
        con.execute("DELETE FROM weights WHERE weights_id = ?", [weights_id])
        con.execute("INSERT INTO weights (weights_id, modality, name, kind, path, sha256, parent_weights_id, "
                    "load_report) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [weights_id, modality, name, kind, path, sha256, parent_weights_id,
                     to_json(load_report) if load_report is not None else None])
    return weights_id


def get_weights(store: Store, weights_id: str) -> dict:
    rows = store.query_df("SELECT * FROM weights WHERE weights_id = ?", [weights_id])
    if rows.empty:
        raise CardioError(f"unknown weights {weights_id!r}; see `cardio weights list`")
    row = rows.iloc[0].to_dict()
    if row.get("load_report"):
        row["load_report"] = json.loads(row["load_report"])
    return row


def ensure_random_weights(store: Store, modality: str) -> str:
    """The randomly initialised baseline (seeded at instantiation time)."""
    wid = f"random-{modality}"
    if store.scalar("SELECT count(*) FROM weights WHERE weights_id = ?", [wid]) == 0:
        register_weights(store, weights_id=wid, modality=modality, name=f"random init ({modality.upper()})",
                         kind="random")
    return wid


def scan_weights_dir(store: Store, ws: Workspace) -> list[str]:
    """Register every new weights file in <workspace>/weights/. Returns the registered ids."""
    from .models.weights import inspect_checkpoint  # noqa: WPS433 (torch is imported lazily)
    ws.weights_dir.mkdir(parents=True, exist_ok=True)
    known = {r[0]: r[1] for r in store.query("SELECT path, sha256 FROM weights WHERE path IS NOT NULL")}
    registered = []
    for path in sorted(ws.weights_dir.iterdir()):
        if not path.is_file() or path.suffix not in WEIGHT_SUFFIXES:
            continue
        digest = sha256_file(path)
        if known.get(str(path)) == digest:
            continue
        try:
            info = inspect_checkpoint(path)
        except CardioError as exc:
            store.record_problem(str(path), str(exc).removeprefix(f"{path}: "), "weights")
            continue
        wid = f"{slug(path.stem)}-{digest[:8]}"
        register_weights(store, weights_id=wid, modality=info["modality"], name=path.name,
                         kind="released" if info["layout"].startswith("released") else "pretrained",
                         path=str(path), sha256=digest, load_report=info)
        registered.append(wid)
    return registered
