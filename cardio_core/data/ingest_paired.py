"""Ingest a paired ECG + CMR cohort (a folder with manifest.csv, readers/paired.py) into the store.

The cohort becomes two datasets, `paired_ecg` and `paired_cmr` (vocabulary.PAIRED_DATASETS), whose record id
is the subject id in both, so the i-th ECG and the i-th CMR of a split are one subject's. A subject is usable
only when both its files read and preprocess; otherwise both of its records are excluded with the reason, and
the problem is stored against the file that failed. Manifest rows that fail validation (duplicate ids, bad
phenotypes, ...) are stored as problems of the cohort (dataset id `paired`, the manifest as the file) and the
batch goes on. Phenotypes and outcome columns land in `subject_values`.

Chunks, shards, resumption and the worker pool work as in data/ingest.py (whose chunk storage this reuses):
each chunk of subjects writes one ECG shard and one CMR shard of the same name, each stored in its own
transaction; a re-run skips a chunk whose two shards are stored and reads again one whose files changed.
Splits are 70/15/15 per subject, seeded (splits.paired_split), and the same in both datasets.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import multiprocessing as mp
import pandas as pd

from cardio_core import labels as L
from cardio_core.config import Workspace
from cardio_core.data.ingest import _fingerprint, _is_empty_shard, _store_chunk
from cardio_core.data.readers import paired as paired_reader
from cardio_core.data.splits import PAIRED_FRACTIONS, paired_split
from cardio_core.errors import DatasetError, RecordError
from cardio_core.store import Store
from cardio_core.vocabulary import DEMOGRAPHICS_MODEL, PAIRED_COHORT, PAIRED_DATASETS

CHUNK_SIZE = 64
ECG, CMR = PAIRED_DATASETS["ecg"], PAIRED_DATASETS["cmr"]


@dataclass
class PairedIngestResult:
    n_rows: int = 0              # manifest rows
    n_rejected: int = 0          # rows the manifest validation rejected
    n_ok: int = 0                # usable subjects (both files read and preprocessed)
    n_excluded: int = 0          # valid rows whose ECG or CMR could not be used
    n_problems: int = 0
    n_skipped_chunks: int = 0
    splits: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    # the attribute names the CLI prints for a single-modality ingest
    @property
    def n_files(self) -> int:
        return self.n_rows


def _record_row(dataset_id: str, row: paired_reader.ManifestRow, path: Path) -> dict:
    bmi = None
    if row.height and row.weight:
        bmi = round(row.weight / (row.height / 100.0) ** 2, 2)
    return dict(dataset_id=dataset_id, record_id=row.subject_id, patient_id=row.subject_id, age=row.age,
                sex=row.sex, height=row.height, weight=row.weight, bmi=bmi, bmi_category=L.bmi_category(bmi),
                source_path=str(path), n_labels=0, excluded=False, exclusion_reason=None,
                flags=",".join(row.warnings) if row.warnings else None)


def _empty_result() -> dict:
    return dict(rows=[], labels=[], codes=[], problems=[], manifest=[], failed=[])


def _process_chunk(rows: list, shard_name: str, dirs: dict) -> dict:
    """Read + preprocess one chunk of subjects. Returns {dataset_id: result rows}; writes both shards."""
    import numpy as np
    from cardio_core.data.preprocessing.storage import write_shard

    out = {ECG: _empty_result(), CMR: _empty_result()}
    arrays = {ECG: [], CMR: []}
    for row in rows:
        got, failures = {}, {}
        for dataset_id, path, read in ((ECG, row.ecg_path, _ecg_array), (CMR, row.cmr_path, _cmr_array)):
            try:
                got[dataset_id] = read(row)
            except RecordError as exc:
                failures[dataset_id] = (exc.path, exc.problem)
            except Exception as exc:  # a reader bug must not stop the batch either
                failures[dataset_id] = (str(path), f"unexpected error while reading: {exc!r}")
        for dataset_id, path in ((ECG, row.ecg_path), (CMR, row.cmr_path)):
            rec = _record_row(dataset_id, row, path)
            res = out[dataset_id]
            if dataset_id in failures:
                file, problem = failures[dataset_id]
                res["problems"].append((dataset_id, str(file), problem, "read"))
                rec.update(excluded=True, exclusion_reason=f"unreadable: {problem}")
            elif failures:
                other = "ECG" if ECG in failures else "CMR"
                rec.update(excluded=True, exclusion_reason=f"the subject's {other} is unusable (see problems)")
            else:
                res["manifest"].append(dict(dataset_id=dataset_id, record_id=row.subject_id, shard=shard_name,
                                            row_index=len(arrays[dataset_id])))
                arrays[dataset_id].append(got[dataset_id])
            res["rows"].append(rec)
    for dataset_id, arrs in arrays.items():
        if arrs:
            write_shard(Path(dirs[dataset_id]) / shard_name, np.stack(arrs))
    return out


def _ecg_array(row):
    from cardio_core.data.preprocessing.ecg import preprocess_ecg
    signal, fs, _, _ = paired_reader.read_ecg(row)
    try:
        return preprocess_ecg(signal, fs=fs, source=str(row.ecg_path))
    except ValueError as exc:
        raise RecordError(row.ecg_path, f"{row.where}: preprocessing failed: {exc}") from None


def _cmr_array(row):
    from cardio_core.data.preprocessing.cmr import preprocess_cmr
    volume, _, ed, es = paired_reader.read_cmr(row)
    try:
        return preprocess_cmr(volume, ed, es, source=str(row.cmr_path))
    except ValueError as exc:
        raise RecordError(row.cmr_path, f"{row.where}: preprocessing failed: {exc}") from None


def _chunk_name(i: int, rows: list) -> str:
    # Every row's values and the size and mtime of both its files name the chunk: a chunk whose manifest
    # rows or files changed since it was stored is read again, not skipped.
    parts = []
    for r in rows:
        parts += [r.subject_id, repr(sorted(vars(r).items(), key=lambda kv: kv[0])),
                  _fingerprint(r.ecg_path), _fingerprint(r.cmr_path)]
        if r.ecg_path.suffix.lower() == ".hea":
            parts.append(_fingerprint(r.ecg_path.with_suffix(".mat")))
    digest = hashlib.sha1("\n".join(parts).encode()).hexdigest()[:10]
    return f"shard_{i:05d}_{digest}.npy"


def ingest_paired(store: Store, workspace: Workspace, root: str | Path, *, is_demo: bool = False, seed: int = 0,
                  workers: int | None = None, progress: Callable[[int, int], None] | None = None
                  ) -> PairedIngestResult:
    """Ingest a paired cohort folder into the datasets paired_ecg / paired_cmr, subject_values and the problems."""
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise DatasetError(root, "paired cohort folder does not exist")
    manifest = paired_reader.read_manifest(root)
    rows = manifest.rows
    result = PairedIngestResult(n_rows=len(rows) + len(manifest.rejected), n_rejected=len(manifest.rejected))
    dirs = {d: workspace.preprocessed_dir / d for d in (ECG, CMR)}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)

    with store.write() as con:
        con.execute("DELETE FROM problems WHERE dataset_id = ? AND stage = 'list'", [PAIRED_COHORT])
        for p in manifest.problems:
            con.execute("INSERT INTO problems (dataset_id, file, problem, stage) VALUES (?, ?, ?, 'list')",
                        [PAIRED_COHORT, p.path, p.problem])
        # non-fatal: a missing demographic or phenotype is a missing value, kept as a warning
        warnings = [(PAIRED_COHORT, str(manifest.path), f"line {r.line}, subject {r.subject_id}: {w}")
                    for r in rows for w in r.warnings]
        if warnings:
            con.executemany("INSERT INTO problems (dataset_id, file, problem, stage) VALUES (?, ?, ?, 'list')",
                            [list(w) for w in warnings])
        # The demographics-only baseline is a property of the cohort, not of any weights: a re-ingested cohort
        # (other subjects, corrected values) computes it again on the next phenotype probe.
        con.execute("DELETE FROM metrics WHERE weights_id = ?", [DEMOGRAPHICS_MODEL])
        con.execute("DELETE FROM phenotype_predictions WHERE model_id = ?", [DEMOGRAPHICS_MODEL])
        for dataset_id, modality in ((ECG, "ecg"), (CMR, "cmr")):
            con.execute("DELETE FROM datasets WHERE dataset_id = ?", [dataset_id])
            con.execute("INSERT INTO datasets (dataset_id, modality, source_dir, is_demo, n_files, "
                        "preprocessed_dir, split_seed) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [dataset_id, modality, str(root), is_demo, result.n_rows, str(dirs[dataset_id]), seed])
    result.problems += [str(p) for p in manifest.problems]

    chunks = [rows[i:i + CHUNK_SIZE] for i in range(0, len(rows), CHUNK_SIZE)]
    names = [_chunk_name(i, c) for i, c in enumerate(chunks)]

    def stored(dataset_id: str) -> set:
        return set(r[0] for r in store.query("SELECT DISTINCT shard FROM preprocessed WHERE dataset_id = ?",
                                             [dataset_id]))

    done = {d: stored(d) for d in dirs}

    def chunk_done(i: int) -> bool:
        return all((names[i] in done[d] and (dirs[d] / names[i]).exists()) or _is_empty_shard(dirs[d] / names[i])
                   for d in dirs)

    todo = [(i, c) for i, c in enumerate(chunks) if not chunk_done(i)]
    result.n_skipped_chunks = len(chunks) - len(todo)
    keep = set(names)
    for d in dirs.values():
        for f in d.glob("shard_*.npy"):
            if f.name not in keep:
                f.unlink()
        for f in d.glob("shard_*.npy.tmp*"):
            f.unlink(missing_ok=True)
    with store.write() as con:
        for d in dirs:
            con.execute("DELETE FROM preprocessed WHERE dataset_id = ? AND NOT list_contains(?, shard)", [d, names])

    def store_chunk(i: int, chunk: list, out: dict) -> None:
        for d in (ECG, CMR):
            _store_chunk(store, d, [str(r.ecg_path if d == ECG else r.cmr_path) for r in chunk], out[d],
                         shard_path=dirs[d] / names[i])

    n_workers = workers or min(2, os.cpu_count() or 1)
    finished = result.n_skipped_chunks
    if progress:
        progress(finished, len(chunks))
    str_dirs = {d: str(p) for d, p in dirs.items()}
    if n_workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(n_workers, mp_context=mp.get_context("fork")) as pool:
            futures = [(i, c, pool.submit(_process_chunk, c, names[i], str_dirs)) for i, c in todo]
            for i, c, fut in futures:
                store_chunk(i, c, fut.result())
                finished += 1
                if progress:
                    progress(finished, len(chunks))
    else:
        for i, c in todo:
            store_chunk(i, c, _process_chunk(c, names[i], str_dirs))
            finished += 1
            if progress:
                progress(finished, len(chunks))

    _finish(store, manifest, seed=seed, result=result)
    return result


def _finish(store: Store, manifest: paired_reader.Manifest, *, seed: int, result: PairedIngestResult) -> None:
    """Rejected rows, rows no longer listed, subject values, splits and counts; after every chunk is stored."""
    valid_ids = [r.subject_id for r in manifest.rows]
    rejected = {}
    for sid, _, problem in manifest.rejected:
        if sid and sid not in valid_ids:
            rejected.setdefault(sid, problem)   # a duplicated id keeps its first problem
    with store.write() as con:
        for d, path_of in ((ECG, "ecg"), (CMR, "cmr")):
            for sid, problem in rejected.items():
                con.execute("INSERT INTO records (dataset_id, record_id, patient_id, source_path, excluded, "
                            "exclusion_reason) VALUES (?, ?, ?, ?, TRUE, ?) ON CONFLICT (dataset_id, record_id) "
                            "DO UPDATE SET excluded = TRUE, exclusion_reason = excluded.exclusion_reason, "
                            "split = NULL, fold = NULL",
                            [d, sid, sid, str(manifest.path), f"manifest: {problem}"])
            # rows of an earlier manifest that this one no longer holds have no array any more
            con.execute("UPDATE records SET excluded = TRUE, split = NULL, fold = NULL, exclusion_reason = "
                        "'no longer in the manifest (see problems)' WHERE dataset_id = ? AND NOT excluded AND "
                        "record_id NOT IN (SELECT record_id FROM preprocessed WHERE dataset_id = ?)", [d, d])
            con.execute("DELETE FROM preprocessed WHERE dataset_id = ? AND record_id IN "
                        "(SELECT record_id FROM records WHERE dataset_id = ? AND excluded)", [d, d])
        values = [(PAIRED_COHORT, r.subject_id, name, None if v != v else float(v), kind)
                  for r in manifest.rows
                  for kind, group in (("phenotype", r.phenotypes), ("outcome", r.outcomes))
                  for name, v in group.items()]
        con.execute("DELETE FROM subject_values WHERE cohort = ?", [PAIRED_COHORT])
        if values:
            df = pd.DataFrame(values, columns=["cohort", "subject_id", "name", "value", "kind"])
            con.register("_values", df)
            con.execute("INSERT INTO subject_values SELECT * FROM _values")
            con.unregister("_values")
    result.splits = assign_paired_splits(store, seed=seed)
    usable = store.query("SELECT count(*) FROM records e JOIN records c ON c.record_id = e.record_id "
                         "AND c.dataset_id = ? WHERE e.dataset_id = ? AND NOT e.excluded AND NOT c.excluded",
                         [CMR, ECG])[0][0]
    result.n_ok = int(usable)
    result.n_excluded = len(manifest.rows) - result.n_ok
    result.n_problems = int(store.scalar("SELECT count(*) FROM problems WHERE list_contains(?, dataset_id)",
                                         [[PAIRED_COHORT, ECG, CMR]]))
    for d in (ECG, CMR):
        store.execute("UPDATE datasets SET n_records = ?, ingested_at = current_timestamp WHERE dataset_id = ?",
                      [result.n_ok, d])


def assign_paired_splits(store: Store, *, seed: int = 0) -> dict:
    """The seeded 70/15/15 split of the usable subjects, written to both datasets; returns the counts per split.

    A subject is usable when neither of its records is excluded; the others get no split in either dataset."""
    ids = [r[0] for r in store.query(
        "SELECT e.record_id FROM records e JOIN records c ON c.record_id = e.record_id AND c.dataset_id = ? "
        "WHERE e.dataset_id = ? AND NOT e.excluded AND NOT c.excluded ORDER BY e.record_id", [CMR, ECG])]
    split = paired_split(ids, seed=seed)
    update = pd.DataFrame({"record_id": ids, "split": split})
    rule = {"rule": "a seeded permutation of the usable subjects' sorted ids, cut 70/15/15 (train/val/test)",
            "fractions": list(PAIRED_FRACTIONS), "seed": seed}
    with store.write() as con:
        for d in (ECG, CMR):
            con.execute("UPDATE records SET split = NULL, fold = NULL WHERE dataset_id = ?", [d])
            if len(update):
                con.register("_splits", update)
                con.execute("UPDATE records SET split = s.split FROM _splits s "
                            "WHERE records.dataset_id = ? AND records.record_id = s.record_id", [d])
                con.unregister("_splits")
            con.execute("UPDATE datasets SET split_seed = ?, split_rule = ? WHERE dataset_id = ?",
                        [seed, json.dumps(rule), d])
    return {name: int((split == name).sum()) for name in ("train", "val", "test")}
