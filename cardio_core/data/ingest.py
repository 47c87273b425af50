"""Ingest a dataset folder: read every record, preprocess it, store arrays and metadata.

Work is cut into chunks of records; each chunk becomes one .npy shard (written to a
temporary name and renamed into place) and one store transaction (records, labels,
codes, manifest rows, problems). A chunk whose manifest rows are already in the store
is skipped, so re-running after an interruption resumes where it stopped, and a bad
record only costs its own row in the problems table. Chunks are processed by a pool of
worker processes (both cores by default).
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import multiprocessing as mp
import numpy as np
import pandas as pd

from cardio_core import labels as L
from cardio_core.config import Workspace
from cardio_core.errors import CardioError, DatasetError, RecordError
from cardio_core.data.preprocessing.storage import write_shard
from cardio_core.data.readers import acdc, ptbxl
from cardio_core.data.splits import (DISPLAY_FRACTION, DISPLAY_MIN_PER_LABEL, acdc_folds, chapman_split,
                                     display_subset_rule, stratified_subset, top_up_subset)
from cardio_core.vocabulary import DEMOGRAPHICS_MODEL, DEMOGRAPHICS_SCOPE, MODALITY_DATASETS
from cardio_core.store import Store

CHUNK_SIZE = 128
MODALITY = {d: m for m, datasets in MODALITY_DATASETS.items() for d in datasets}


@dataclass
class IngestResult:
    dataset_id: str
    n_files: int = 0
    n_ok: int = 0
    n_excluded: int = 0
    n_problems: int = 0
    n_skipped_chunks: int = 0
    problems: list[str] = field(default_factory=list)


# -- per-record work (runs in worker processes) -------------------------------------

def _record_row(dataset_id, rec, *, excluded=False, reason=None):
    return dict(
        dataset_id=dataset_id, record_id=rec.record_id, patient_id=getattr(rec, "patient_id", None),
        age=rec.age if hasattr(rec, "age") else None, sex=getattr(rec, "sex", None),
        height=rec.height, weight=rec.weight,
        bmi=getattr(rec, "bmi", None), bmi_category=getattr(rec, "bmi_category", None),
        source_path=rec.source_path, n_labels=None, excluded=excluded, exclusion_reason=reason,
        flags=",".join(rec.warnings) if rec.warnings else None,
    )


def _process_chunk(dataset_id: str, items: list, shard_path: str, options: dict) -> dict:
    """Read + preprocess one chunk. Returns plain rows; writes the shard atomically."""
    from cardio_core.data.readers import acdc, chapman, ptbxl
    from cardio_core.data.preprocessing.cmr import preprocess_cmr
    from cardio_core.data.preprocessing.ecg import preprocess_ecg

    rows, label_rows, code_rows, problems, arrays, manifest, failed = [], [], [], [], [], [], []
    for item in items:
        try:
            if dataset_id == "chapman":
                rec = chapman.read_record(Path(item))
                labels = list(rec.labels)
                codes = [(c, None, L.SNOMED_TO_CLASS.get(c)) for c in rec.codes]
            elif dataset_id == "ptbxl":
                rec = ptbxl.read_record(Path(options["root"]), item)
                labels = [lab for lab in rec.labels]
                scp = rec.extra.get("scp_codes", {}) or {}
                codes = [(c, lik, L.PTBXL_RHYTHM_MAP.get(c)) for c, lik in scp.items()]
            else:
                rec = acdc.read_patient(Path(item))
                labels = [rec.group] if rec.group else []
                codes = [(rec.group, None, rec.group)] if rec.group else []
        except RecordError as exc:
            problems.append((dataset_id, exc.path, exc.problem, "read"))
            failed.append((_item_record_id(dataset_id, item), exc.path, exc.problem))
            continue
        except Exception as exc:  # a reader bug must not stop the batch either
            problem = f"unexpected error while reading: {exc!r}"
            problems.append((dataset_id, str(item), problem, "read"))
            failed.append((_item_record_id(dataset_id, item), str(item), problem))
            continue
        for w in rec.warnings:
            problems.append((dataset_id, rec.source_path, w, "read"))
        row = _record_row(dataset_id, rec)
        row["n_labels"] = len(labels)
        for code, lik, mapped in codes:
            code_rows.append(dict(dataset_id=dataset_id, record_id=rec.record_id, code=str(code),
                                  likelihood=lik, mapped_class=mapped))
        if dataset_id == "chapman" and not labels:
            row.update(excluded=True, exclusion_reason="no mapped SNOMED code")
            rows.append(row)
            continue
        if dataset_id == "acdc" and not labels:
            row.update(excluded=True, exclusion_reason="no Group in Info.cfg")
            rows.append(row)
            continue
        try:
            if MODALITY[dataset_id] == "ecg":
                arr = preprocess_ecg(rec.signal, fs=rec.fs, source=rec.source_path)
            else:
                arr = preprocess_cmr(rec.volume, rec.ed, rec.es, source=rec.source_path)
        except (ValueError, RecordError) as exc:
            problems.append((dataset_id, rec.source_path, f"preprocessing failed: {exc}", "preprocess"))
            row.update(excluded=True, exclusion_reason=f"preprocessing failed: {exc}")
            rows.append(row)
            continue
        rows.append(row)
        for lab in labels:
            group = L.CLASS_GROUP.get(lab, "ACDC" if dataset_id == "acdc" else "Rhythm")
            label_rows.append(dict(dataset_id=dataset_id, record_id=rec.record_id, **{"class": lab},
                                   class_group=group))
        manifest.append(dict(dataset_id=dataset_id, record_id=rec.record_id,
                             shard=os.path.basename(shard_path), row_index=len(arrays)))
        arrays.append(arr)
    if arrays:
        write_shard(Path(shard_path), np.stack(arrays))
    return dict(rows=rows, labels=label_rows, codes=code_rows, problems=problems, manifest=manifest,
                failed=failed)


def _item_record_id(dataset_id: str, item) -> str:
    """The record id a work item would get, known even when the item cannot be read."""
    if dataset_id == "chapman":
        return Path(item).stem
    if dataset_id == "acdc":
        return Path(item).name
    return str(item)


# -- orchestration ------------------------------------------------------------------

def _item_files(dataset_id: str, path: str) -> list[Path]:
    """The files one work item is read from (by its key path)."""
    p = Path(path)
    if dataset_id == "chapman":
        return [p, p.with_suffix(".mat")]
    if dataset_id == "ptbxl":
        return [p, p.with_suffix(".dat")]
    return [p / "Info.cfg", acdc.cine_path(p)]


def _fingerprint(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return f"{path}:missing"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def _chunk_name(i: int, items: Sequence, files: Sequence[str] = (), dataset_id: str = "", salt: str = "") -> str:
    # Size and mtime of every file are part of the name: a chunk whose files changed
    # since it was stored (edited, truncated, replaced) is read again, not skipped.
    parts = [*map(str, items), salt] + [_fingerprint(f) for key in files for f in _item_files(dataset_id, key)]
    digest = hashlib.sha1("\n".join(parts).encode()).hexdigest()[:10]
    return f"shard_{i:05d}_{digest}.npy"


def _is_empty_shard(path: Path) -> bool:
    """True for the 0-row shard that marks a stored chunk without a usable record."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape = read_header(fh)[0]
    except (OSError, ValueError):
        return False
    return len(shape) > 0 and shape[0] == 0


def _store_chunk(store: Store, dataset_id: str, items: Sequence, result: dict,
                 item_files: Sequence[str] = (), shard_path: Path | None = None) -> None:
    ids = [r["record_id"] for r in result["rows"]]
    failed = result.get("failed", [])
    with store.write() as con:
        if ids or failed:
            for table in ("records", "labels", "record_codes", "preprocessed"):
                # failed records keep their records row (marked excluded below)
                drop = ids if table == "records" else ids + [f[0] for f in failed]
                con.execute(f"DELETE FROM {table} WHERE dataset_id = ? AND list_contains(?, record_id)",
                            [dataset_id, drop])
        files = [str(i) for i in items] + [str(f) for f in item_files]
        con.execute("DELETE FROM problems WHERE dataset_id = ? AND stage IN ('read', 'preprocess') "
                    "AND list_contains(?, file)", [dataset_id, files + [r["source_path"] for r in result["rows"]]])
        for table, key in (("records", "rows"), ("labels", "labels"), ("record_codes", "codes"),
                           ("preprocessed", "manifest")):
            df = pd.DataFrame(result[key])
            if len(df):
                cols = ", ".join(f'"{c}"' for c in df.columns)
                con.register("_incoming", df)
                con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _incoming")
                con.unregister("_incoming")
        if result["problems"]:
            con.executemany("INSERT INTO problems (dataset_id, file, problem, stage) VALUES (?, ?, ?, ?)",
                            [list(p) for p in result["problems"]])
        # An unreadable record is excluded with its problem as the reason; a row stored by
        # an earlier run keeps its demographics but loses its split, labels and array.
        for record_id, path, problem in failed:
            con.execute("INSERT INTO records (dataset_id, record_id, source_path, excluded, exclusion_reason) "
                        "VALUES (?, ?, ?, TRUE, ?) ON CONFLICT (dataset_id, record_id) DO UPDATE SET "
                        "excluded = TRUE, exclusion_reason = excluded.exclusion_reason, split = NULL, fold = NULL",
                        [dataset_id, record_id, path, f"unreadable: {problem}"])
    if shard_path is not None and not result["manifest"]:
        # No manifest row can say this chunk is done; an empty shard written after the
        # commit does (a crash before it only costs re-reading the chunk).
        write_shard(Path(shard_path), np.empty((0,), dtype=np.float32))


def _list_items(dataset_id: str, root: Path, seed: int):
    """The work items of a dataset, the file each item is read from, and any dataset-level
    problems found while listing."""
    from cardio_core.data.readers import acdc, chapman, ptbxl
    if dataset_id == "chapman":
        items = [str(p) for p in chapman.list_records(root)]
        return items, items, [], None
    if dataset_id == "acdc":
        items = [str(p) for p in acdc.list_patients(root)]
        return items, items, [], None
    db, problems = ptbxl.read_database(root)
    chosen = ptbxl.select_one_per_patient(db, seed=seed)
    not_chosen = db.index.difference(chosen.index)
    base = ptbxl.find_root(root)
    files = [str(base / f"{str(rel).strip()}.hea") for rel in chosen["filename_hr"]]
    return [int(i) for i in chosen.index], files, problems, (db, not_chosen)


def ingest_dataset(store: Store, workspace: Workspace, dataset_id: str, root: str | Path, *,
                   is_demo: bool = False, seed: int = 0, workers: int | None = None,
                   progress: Callable[[int, int], None] | None = None) -> IngestResult:
    """Ingest one dataset folder into the store and the workspace's preprocessed arrays."""
    if dataset_id not in MODALITY:
        raise CardioError(f"unknown dataset {dataset_id!r}; expected one of {sorted(MODALITY)}")
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise DatasetError(root, "dataset folder does not exist")
    items, item_files, list_problems, ptbxl_extra = _list_items(dataset_id, root, seed)
    out_dir = workspace.preprocessed_dir / dataset_id
    out_dir.mkdir(parents=True, exist_ok=True)
    result = IngestResult(dataset_id, n_files=len(items))

    with store.write() as con:
        con.execute("DELETE FROM problems WHERE dataset_id = ? AND stage = 'list'", [dataset_id])
        for p in list_problems:
            con.execute("INSERT INTO problems (dataset_id, file, problem, stage) VALUES (?, ?, ?, 'list')",
                        [dataset_id, p.path, p.problem])
        # the demographics-only baseline of this dataset's labels is a property of its records and splits:
        # a new ingest computes it again (analysis.demographic_baselines)
        con.execute("DELETE FROM metrics WHERE weights_id = ? AND scope = ?",
                    [DEMOGRAPHICS_MODEL, DEMOGRAPHICS_SCOPE.get(dataset_id, "")])
        con.execute("DELETE FROM datasets WHERE dataset_id = ?", [dataset_id])
        con.execute("INSERT INTO datasets (dataset_id, modality, source_dir, is_demo, n_files, "
                    "preprocessed_dir, split_seed) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [dataset_id, MODALITY[dataset_id], str(root), is_demo, len(items), str(out_dir), seed])
    result.problems += [str(p) for p in list_problems]

    chunks = [items[i:i + CHUNK_SIZE] for i in range(0, len(items), CHUNK_SIZE)]
    chunk_files = [item_files[i:i + CHUNK_SIZE] for i in range(0, len(items), CHUNK_SIZE)]
    # PTB-XL labels come from the CSV: editing it makes every chunk stale.
    salt = _fingerprint(ptbxl.find_root(root) / ptbxl.DATABASE_CSV) if dataset_id == "ptbxl" else ""
    names = [_chunk_name(i, c, chunk_files[i], dataset_id, salt) for i, c in enumerate(chunks)]
    done = set(r[0] for r in store.query(
        "SELECT DISTINCT shard FROM preprocessed WHERE dataset_id = ?", [dataset_id]))
    todo = [(i, c) for i, c in enumerate(chunks)
            if not ((names[i] in done and (out_dir / names[i]).exists()) or _is_empty_shard(out_dir / names[i]))]
    result.n_skipped_chunks = len(chunks) - len(todo)
    # Shards of an earlier, different listing of this folder are stale.
    keep = set(names)
    for f in out_dir.glob("shard_*.npy"):
        if f.name not in keep:
            f.unlink()
    for f in out_dir.glob("shard_*.npy.tmp*"):  # left by a process killed mid-write
        f.unlink(missing_ok=True)
    with store.write() as con:
        con.execute("DELETE FROM preprocessed WHERE dataset_id = ? AND NOT list_contains(?, shard)",
                    [dataset_id, names])

    options = {"root": str(root)}
    n_workers = workers or min(2, os.cpu_count() or 1)
    finished = result.n_skipped_chunks
    if progress:
        progress(finished, len(chunks))
    if n_workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(n_workers, mp_context=mp.get_context("fork")) as pool:
            futures = [(i, c, pool.submit(_process_chunk, dataset_id, c, str(out_dir / names[i]), options))
                       for i, c in todo]
            for i, c, fut in futures:
                _store_chunk(store, dataset_id, c, fut.result(), chunk_files[i], out_dir / names[i])
                finished += 1
                if progress:
                    progress(finished, len(chunks))
    else:
        for i, c in todo:
            _store_chunk(store, dataset_id, c, _process_chunk(dataset_id, c, str(out_dir / names[i]), options),
                         chunk_files[i], out_dir / names[i])
            finished += 1
            if progress:
                progress(finished, len(chunks))

    if ptbxl_extra is not None:
        _store_ptbxl_unselected(store, *ptbxl_extra)
    # Records of an earlier run that this listing no longer yields (file removed, CSV row
    # now malformed) have no array any more; exclude them rather than leave them usable.
    with store.write() as con:
        con.execute("UPDATE records SET excluded = TRUE, split = NULL, fold = NULL, exclusion_reason = "
                    "'no longer in the dataset listing (see problems)' WHERE dataset_id = ? AND NOT excluded "
                    "AND record_id NOT IN (SELECT record_id FROM preprocessed WHERE dataset_id = ?)",
                    [dataset_id, dataset_id])
        # an excluded record (now unselected, unlisted, unreadable) keeps no labels or array
        for table in ("labels", "preprocessed"):
            con.execute(f"DELETE FROM {table} WHERE dataset_id = ? AND record_id IN "
                        "(SELECT record_id FROM records WHERE dataset_id = ? AND excluded)", [dataset_id, dataset_id])
    assign_splits(store, dataset_id, seed=seed)
    counts = store.query(
        "SELECT count(*) FILTER (WHERE NOT excluded), count(*) FILTER (WHERE excluded) "
        "FROM records WHERE dataset_id = ?", [dataset_id])[0]
    result.n_ok, result.n_excluded = int(counts[0]), int(counts[1])
    result.n_problems = int(store.scalar("SELECT count(*) FROM problems WHERE dataset_id = ?", [dataset_id]))
    store.execute("UPDATE datasets SET n_records = ?, ingested_at = current_timestamp WHERE dataset_id = ?",
                  [result.n_ok, dataset_id])
    return result


def _store_ptbxl_unselected(store: Store, db: pd.DataFrame, not_chosen) -> None:
    """Records of patients with several ECGs that the seeded draw did not pick."""
    if len(not_chosen) == 0:
        return
    sub = db.loc[not_chosen]
    df = pd.DataFrame(dict(
        dataset_id="ptbxl", record_id=[str(i) for i in sub.index],
        patient_id=[None if pd.isna(p) else str(int(p)) for p in sub["patient_id"]],
        age=sub["age"].astype(float).values, sex=sub["sex"].values,
        source_path=sub["filename_hr"].astype(str).values, excluded=True,
        exclusion_reason="another record of this patient was drawn (one record per patient)",
    ))
    store.insert_df("records", df, replace_where=("dataset_id = 'ptbxl' AND list_contains(?, record_id)",
                                                  [df["record_id"].tolist()]))


def assign_splits(store: Store, dataset_id: str, *, seed: int = 0) -> None:
    """Persist the seeded splits of a dataset's usable records in records.split / records.fold."""
    recs = store.query_df("SELECT record_id FROM records WHERE dataset_id = ? AND NOT excluded ORDER BY record_id",
                          [dataset_id])
    if recs.empty:
        return
    labs = store.query_df("SELECT record_id, class FROM labels WHERE dataset_id = ?", [dataset_id])
    ids = recs["record_id"].tolist()
    if dataset_id == "chapman":
        Y = pd.crosstab(labs["record_id"], labs["class"]).reindex(index=ids, columns=list(L.CLASSES), fill_value=0)
        split = chapman_split((Y.values > 0).astype(int), seed=seed)
        update = pd.DataFrame({"record_id": ids, "split": split, "fold": None})
    elif dataset_id == "ptbxl":
        first = labs.groupby("record_id")["class"].agg(lambda s: "+".join(sorted(s)))
        strata = [first.get(i, "none") for i in ids]
        display = stratified_subset(strata, fraction=DISPLAY_FRACTION, seed=seed)
        # single-labelled rhythm records per label (how the silhouettes and shares count them)
        rhythm = labs[labs["class"].isin(L.RHYTHM_LABELS)].groupby("record_id")["class"].agg(list)
        single = [rhythm[i][0] if i in rhythm.index and len(rhythm[i]) == 1 else "" for i in ids]
        n_before = int(display.sum())
        display = top_up_subset(display, single, min_per_label=DISPLAY_MIN_PER_LABEL, seed=seed)
        counts = {lab: int(sum(1 for d, s in zip(display, single) if d and s == lab)) for lab in L.RHYTHM_LABELS}
        rule = {"display": display_subset_rule(), "fraction": DISPLAY_FRACTION,
                "min_per_label": DISPLAY_MIN_PER_LABEL, "n_stratified": n_before,
                "n_added": int(display.sum()) - n_before, "n_display": int(display.sum()),
                "single_labelled_per_label": counts}
        update = pd.DataFrame({"record_id": ids, "split": np.where(display, "display", "pool"), "fold": None})
    else:
        groups = labs.set_index("record_id")["class"].reindex(ids).values
        folds = acdc_folds(groups, seed=seed) if len(ids) >= 5 else np.zeros(len(ids), dtype=int)
        update = pd.DataFrame({"record_id": ids, "split": "cv", "fold": folds})
    with store.write() as con:
        con.register("_splits", update)
        con.execute("UPDATE records SET split = s.split, fold = s.fold FROM _splits s "
                    "WHERE records.dataset_id = ? AND records.record_id = s.record_id", [dataset_id])
        con.unregister("_splits")
        con.execute("UPDATE datasets SET split_seed = ? WHERE dataset_id = ?", [seed, dataset_id])
        if dataset_id == "ptbxl":
            con.execute("UPDATE datasets SET split_rule = ? WHERE dataset_id = ?", [json.dumps(rule), dataset_id])
