"""The subjects of a paired ECG + CMR cohort as two aligned DatasetViews (data/ingest_paired.py stores them)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cardio_core.data.dataset_view import DatasetView, load_view
from cardio_core.errors import CardioError
from cardio_core.store import Store
from cardio_core.vocabulary import PAIRED_DATASETS


@dataclass
class PairedView:
    split: str | None
    subject_ids: list[str]      # sorted; row i of `ecg` and of `cmr` is subject_ids[i]
    ecg: DatasetView
    cmr: DatasetView

    def __len__(self) -> int:
        return len(self.subject_ids)


def load_paired_view(store: Store, split: str | None = None) -> PairedView:
    """Usable subjects of the paired cohort (both records usable), optionally of one split, aligned by subject id."""
    have = {r[0] for r in store.query("SELECT dataset_id FROM datasets WHERE list_contains(?, dataset_id)",
                                      [list(PAIRED_DATASETS.values())])}
    if have != set(PAIRED_DATASETS.values()):
        raise CardioError("no paired ECG + CMR cohort is ingested yet (cardio ingest paired PATH, or cardio setup "
                          "for the demo cohort)")
    where, params = ("r.split = ?", [split]) if split else ("TRUE", [])
    ecg = load_view(store, PAIRED_DATASETS["ecg"], where=where, params=params)
    cmr = load_view(store, PAIRED_DATASETS["cmr"], where=where, params=params)
    common = sorted(set(ecg.records["record_id"]) & set(cmr.records["record_id"]))
    return PairedView(split, common, _in_order(ecg, common), _in_order(cmr, common))


def _in_order(view: DatasetView, ids: list[str]) -> DatasetView:
    """The view's rows for `ids`, in that order."""
    from cardio_core.data.preprocessing.storage import PreprocessedArrays
    pos = {rid: i for i, rid in enumerate(view.records["record_id"])}
    take = np.array([pos[i] for i in ids], dtype=int)
    arrays = PreprocessedArrays(view.arrays.directory, view.arrays.manifest.iloc[take].reset_index(drop=True))
    return DatasetView(view.dataset_id, view.records.iloc[take].reset_index(drop=True), arrays, view.Y[take],
                       view.classes)
