"""Pull arrays, targets and splits of an ingested dataset out of the store."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cardio_core import labels as L
from cardio_core.errors import CardioError
from cardio_core.data.preprocessing.storage import PreprocessedArrays
from cardio_core.store import Store


@dataclass
class DatasetView:
    dataset_id: str
    records: pd.DataFrame          # one row per usable record, in array order
    arrays: PreprocessedArrays     # preprocessed arrays in the same order
    Y: np.ndarray                  # (n, n_classes) 0/1 targets
    classes: tuple[str, ...]

    def subset(self, mask) -> "DatasetView":
        mask = np.asarray(mask, dtype=bool)
        recs = self.records[mask].reset_index(drop=True)
        arrays = PreprocessedArrays(self.arrays.directory, self.arrays.manifest[mask].reset_index(drop=True))
        return DatasetView(self.dataset_id, recs, arrays, self.Y[mask], self.classes)


def load_view(store: Store, dataset_id: str, *, where: str = "TRUE", params=()) -> DatasetView:
    """Usable, preprocessed records of a dataset (optionally filtered by a SQL condition on r.*)."""
    info = store.query("SELECT preprocessed_dir, modality FROM datasets WHERE dataset_id = ?", [dataset_id])
    if not info:
        raise CardioError(f"dataset {dataset_id!r} is not ingested yet (cardio setup / cardio ingest)")
    directory, modality = info[0]
    recs = store.query_df(
        f"SELECT r.*, p.shard, p.row_index FROM records r JOIN preprocessed p USING (dataset_id, record_id) "
        f"WHERE r.dataset_id = ? AND NOT r.excluded AND ({where}) ORDER BY r.record_id",
        [dataset_id, *params])
    labs = store.query_df("SELECT record_id, class FROM labels WHERE dataset_id = ?", [dataset_id])
    classes = L.ACDC_GROUPS if modality == "cmr" else L.CLASSES
    ids = recs["record_id"].tolist()
    Y = pd.crosstab(labs["record_id"], labs["class"]).reindex(index=ids, columns=list(classes), fill_value=0)
    arrays = PreprocessedArrays(directory, recs[["record_id", "shard", "row_index"]])
    return DatasetView(dataset_id, recs.drop(columns=["shard", "row_index"]), arrays,
                       (Y.values > 0).astype(np.float32), tuple(classes))
