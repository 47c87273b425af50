"""Preprocessed arrays on disk: float32 .npy shards, memory-mapped on read.

Layout: <workspace>/data/preprocessed/<dataset_id>/shard_00000.npy, ... each of shape
(n, 12, 5000) for ECG or (n, 3, 210, 210) for CMR. The store's `preprocessed` table is
the manifest (record_id -> shard, row_index). Shards are written to a temporary name
and renamed into place, so an interrupted run never leaves a half-written shard that a
later run would trust.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd


def write_shard(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array, dtype=np.float32))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class PreprocessedArrays:
    """Random access to preprocessed records by position or by record id.

    `manifest` has columns record_id, shard, row_index; its row order defines positions.
    Shards are opened lazily with mmap so worker processes share pages.
    """

    def __init__(self, directory: str | Path, manifest: pd.DataFrame):
        self.directory = Path(directory)
        self.manifest = manifest.reset_index(drop=True)[["record_id", "shard", "row_index"]]
        self._pos = {rid: i for i, rid in enumerate(self.manifest["record_id"])}
        self._shards: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.manifest)

    @property
    def record_ids(self) -> list[str]:
        return self.manifest["record_id"].tolist()

    def _shard(self, name: str) -> np.ndarray:
        arr = self._shards.get(name)
        if arr is None:
            arr = np.load(self.directory / name, mmap_mode="r")
            self._shards[name] = arr
        return arr

    def __getitem__(self, i: int) -> np.ndarray:
        row = self.manifest.iloc[i]
        return np.asarray(self._shard(row["shard"])[int(row["row_index"])])

    def get(self, record_id: str) -> np.ndarray:
        return self[self._pos[record_id]]

    def stack(self, positions=None) -> np.ndarray:
        positions = range(len(self)) if positions is None else positions
        return np.stack([self[i] for i in positions]) if len(positions) else np.empty((0,))

    @classmethod
    def from_store(cls, store, directory: str | Path, dataset_id: str, record_ids=None) -> "PreprocessedArrays":
        df = store.query_df(
            "SELECT record_id, shard, row_index FROM preprocessed WHERE dataset_id = ? ORDER BY shard, row_index",
            [dataset_id])
        if record_ids is not None:
            df = df.set_index("record_id").loc[list(record_ids)].reset_index()
        return cls(directory, df)
