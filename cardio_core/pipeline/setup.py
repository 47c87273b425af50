"""Getting a workspace's data ready.

`prepare_workspace` ingests the configured real datasets (CARDIO_CHAPMAN_DIR,
CARDIO_PTBXL_DIR, CARDIO_ACDC_DIR, and CARDIO_PAIRED_DIR for a paired ECG + CMR cohort)
and, for any dataset without one, generates and ingests the demo dataset in the
workspace. Re-running it does only what is missing.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable

from cardio_core.config import Workspace, configured_dataset_dir
from cardio_core.store import Store
from cardio_core.vocabulary import DATASETS, PAIRED_COHORT, PAIRED_DATASETS

SOURCES = DATASETS + (PAIRED_COHORT,)

# progress_bar(description) -> update(done, total): how a caller shows progress (the CLI's tqdm bar)
ProgressBar = Callable[[str], Callable[[int, int], None]]


def dataset_sources(ws: Workspace) -> dict[str, tuple[Path, bool]]:
    """dataset -> (folder, is_demo)."""
    out = {}
    for name in SOURCES:
        real = configured_dataset_dir(name)
        out[name] = (real, False) if real else (ws.demo_dir / name, True)
    return out


def prepare_workspace(ws: Workspace, *, size: str = "default", seed: int = 0,
                      progress_bar: ProgressBar | None = None) -> dict:
    from cardio_core.data.ingest import ingest_dataset
    from cardio_core.data.ingest_paired import ingest_paired
    ws.ensure()
    store = Store(ws.db_path)
    sources = dataset_sources(ws)
    if any(is_demo and not (folder / ".complete").exists() for folder, is_demo in sources.values()):
        from cardio_core.demo.generate import generate_demo_datasets
        generate_demo_datasets(ws.demo_dir, size=size, seed=seed, progress=progress_bar is not None)
        for name in SOURCES:
            (ws.demo_dir / name).mkdir(parents=True, exist_ok=True)
            (ws.demo_dir / name / ".complete").write_text(f"size={size} seed={seed}\n")
    results = {}
    for name, (folder, is_demo) in sources.items():
        stored_as = PAIRED_DATASETS["cmr"] if name == PAIRED_COHORT else name   # the cohort's last-written dataset
        ingested = store.query("SELECT source_dir, n_records FROM datasets WHERE dataset_id = ? "
                               "AND ingested_at IS NOT NULL", [stored_as])
        if ingested and ingested[0][0] == str(folder.resolve()):
            continue
        bar = progress_bar(f"ingest {name}") if progress_bar is not None else None
        ingest = ingest_paired if name == PAIRED_COHORT else partial(ingest_dataset, dataset_id=name)
        results[name] = ingest(store, ws, root=folder, is_demo=is_demo, seed=seed, progress=bar)
    return results
