import multiprocessing as mp
import os
import signal
import time

import pandas as pd
import pytest

from cardio_core.store import Store, StoreBusy
from cardio_core.store.schema import LATEST_VERSION, MIGRATIONS


def test_migrations_apply_once_and_are_versioned(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    assert store.schema_version() == LATEST_VERSION
    Store(tmp_path / "s.duckdb")  # re-opening does not re-apply
    assert store.scalar("SELECT count(*) FROM schema_version") == len(MIGRATIONS)
    tables = {r[0] for r in store.query("SELECT table_name FROM information_schema.tables")}
    for t in ("datasets", "records", "labels", "problems", "weights", "checkpoints", "jobs",
              "embeddings", "projections", "projection_points", "metrics", "bookmarks"):
        assert t in tables


def test_write_transaction_rolls_back_on_error(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    store.record_problem("a.hea", "first", "read")
    with pytest.raises(RuntimeError):
        with store.write() as con:
            con.execute("INSERT INTO problems (file, problem, stage) VALUES ('b', 'x', 'read')")
            raise RuntimeError("boom")
    assert store.query("SELECT file FROM problems") == [("a.hea",)]


def test_insert_df_replace_is_atomic(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    df = pd.DataFrame({"dataset_id": ["d"] * 3, "record_id": ["1", "2", "3"], "class": ["SR"] * 3,
                       "class_group": ["Rhythm"] * 3})
    store.insert_df("labels", df)
    store.insert_df("labels", df.iloc[:1], replace_where=("dataset_id = ?", ["d"]))
    assert store.scalar("SELECT count(*) FROM labels") == 1
    with pytest.raises(ValueError):
        store.insert_df("labels; DROP TABLE x", df)


def _writer(db, worker, n, started):
    store = Store(db)
    started.set()
    for i in range(n):
        store.execute("INSERT INTO problems (file, problem, stage) VALUES (?, ?, 'test')",
                      [f"w{worker}", str(i)])


def _slow_writer(db, started):
    """Holds the write lock mid-transaction until it is killed."""
    store = Store(db)
    with store.write() as con:
        con.execute("INSERT INTO problems (file, problem, stage) VALUES ('killed', 'half', 'test')")
        started.set()
        time.sleep(60)


def test_concurrent_writers_reader_and_sigkill(tmp_path):
    db = tmp_path / "s.duckdb"
    Store(db)
    ctx = mp.get_context("fork")
    # 1) a writer killed with SIGKILL in the middle of a transaction
    started = ctx.Event()
    victim = ctx.Process(target=_slow_writer, args=(db, started))
    victim.start()
    assert started.wait(20)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    # 2) several writers and a reader at once
    events = [ctx.Event() for _ in range(3)]
    writers = [ctx.Process(target=_writer, args=(db, w, 25, events[w])) for w in range(3)]
    for p in writers:
        p.start()
    reader = Store(db)
    seen = []
    while any(p.is_alive() for p in writers):
        seen.append(reader.scalar("SELECT count(*) FROM problems"))  # never "database is locked"
    for p in writers:
        p.join()
        assert p.exitcode == 0
    # every committed row is there, the killed transaction left nothing behind
    rows = reader.query("SELECT file, count(*) FROM problems GROUP BY file ORDER BY file")
    assert rows == [("w0", 25), ("w1", 25), ("w2", 25)]
    assert seen == sorted(seen)  # readers see a monotone, consistent count


def test_lock_timeout_gives_clear_error(tmp_path):
    db = tmp_path / "s.duckdb"
    slow = Store(db, lock_timeout=0.2)
    ctx = mp.get_context("fork")
    started = ctx.Event()
    holder = ctx.Process(target=_slow_writer, args=(db, started))
    holder.start()
    try:
        assert started.wait(20)
        with pytest.raises(StoreBusy, match="store busy"):
            slow.scalar("SELECT 1")
    finally:
        holder.kill()
        holder.join()
