"""Shared fixtures: one small demo dataset folder per session, and a clean ingest of it.

Tests that change files copy the folder first (`demo_copy`); nothing may modify
`demo_root` or `ingested_ws` in place.
"""
from __future__ import annotations

import os

# AppTest runs pages in this process: no background job scheduler thread there.
os.environ.setdefault("CARDIO_APP_SCHEDULER", "0")

# xdist workers share the cores: each gets its share of threads (torch, BLAS, numba), which the job and
# demo subprocesses inherit. Without this, two workers each running 2-thread torch on 2 cores
# oversubscribe and the suite takes a quarter longer.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)))
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(_var, _threads)

import shutil
from pathlib import Path

# One numba JIT cache for the whole run (both workers and every job subprocess they start), instead of one per
# test workspace: UMAP's numba functions cost about 20 s to compile, and a dozen tests each make a fresh
# workspace (the app keeps its cache in the workspace; configure_numba_cache leaves a set variable alone).
# numba writes cache files atomically, so the two workers can fill it at once. The bench tests that measure a
# cold cache set their own.
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "numba"))

import pytest

# Small enough to generate in a few seconds, big enough for every quirk of the Chapman
# plan, PTB-XL patients with several records, and the 5 ACDC folds.
DEMO_SIZE = {"chapman": 16, "ptbxl": 12, "acdc": 6}
DEMO_SEED = 0


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    from cardio_core.demo.generate import generate_demo_datasets
    root = tmp_path_factory.mktemp("demo_data")
    generate_demo_datasets(root, size=DEMO_SIZE, seed=DEMO_SEED, workers=1)
    return root


@pytest.fixture
def demo_copy(demo_root, tmp_path) -> Path:
    """A private copy of the demo folder that a test may break."""
    dst = tmp_path / "demo"
    shutil.copytree(demo_root, dst)
    return dst


@pytest.fixture(scope="session")
def ingested_ws(demo_root, tmp_path_factory):
    """A workspace with the three demo datasets ingested once (seed 0). Read only."""
    from cardio_core.config import Workspace
    from cardio_core.data.ingest import ingest_dataset
    from cardio_core.store import Store
    ws = Workspace(tmp_path_factory.mktemp("ingested_ws")).ensure()
    store = Store(ws.db_path)
    results = {name: ingest_dataset(store, ws, name, demo_root / name, seed=0)
               for name in ("chapman", "ptbxl", "acdc")}
    return ws, store, results


# Longest files first (measured on 2 cores: the demo chain about 4 min, the demo effect about 2.5 min), then
# the other slow ones: `./run test` distributes whole files (--dist loadfile --no-loadscope-reorder), so the
# long ones start at once on both workers and the quick files fill in around them.
LONGEST_FIRST = ("test_demo_chain.py", "test_demo_effect.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        if name in LONGEST_FIRST:
            return LONGEST_FIRST.index(name)
        return len(LONGEST_FIRST) + (0 if item.get_closest_marker("slow") else 1)
    items.sort(key=rank)  # stable: the order within a file is kept


@pytest.fixture
def disk_full_on(monkeypatch):
    """disk_full_on(store, "INSERT INTO metrics"): that statement fails inside the store's transaction with the
    I/O error a full disk gives, as it would half-way through a real write; everything else runs as usual."""
    import contextlib

    import duckdb

    def arm(store, sql_prefix: str):
        real_write = store.write.__func__

        class Proxy:
            def __init__(self, con):
                self._con = con

            def execute(self, sql, *args, **kwargs):
                if sql.lstrip().startswith(sql_prefix):
                    raise duckdb.IOException('Could not write file "cardioscope.duckdb": No space left on device')
                return self._con.execute(sql, *args, **kwargs)

            def __getattr__(self, name):
                return getattr(self._con, name)

        @contextlib.contextmanager
        def write(self):
            with real_write(self) as con:
                yield Proxy(con)
        monkeypatch.setattr(type(store), "write", write)
    return arm
