"""The store under pressure (issue 11, points 10-11 and the disk-full / read-only simulations)."""
import errno
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from cardio_core.store import Store, StoreBusy, StoreReadOnly, StoreWriteFailed
from cardio_core.store.store import lock_holder


def outside_handle(db: Path, hold_s: float, read_only: bool = True) -> subprocess.Popen:
    """A process outside the store's locking (the duckdb CLI, a notebook) holding the file."""
    code = (f"import duckdb, time; c = duckdb.connect({str(db)!r}, read_only={read_only}); "
            f"print('held', flush=True); time.sleep({hold_s})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_write_waits_out_an_outside_read_only_handle(tmp_path):
    store = Store(tmp_path / "s.duckdb", lock_timeout=20)
    store.execute("CREATE TABLE t (a INTEGER)")
    proc = outside_handle(store.db_path, 1.5)
    try:
        t0 = time.monotonic()
        store.execute("INSERT INTO t VALUES (1)")  # used to fail at once with "Conflicting lock is held"
        assert time.monotonic() - t0 > 0.5 and store.lock_conflicts_retried > 0
    finally:
        proc.wait()
    assert store.scalar("SELECT count(*) FROM t") == 1


def test_a_handle_held_past_the_timeout_is_a_store_busy_error_naming_the_holder(tmp_path):
    store = Store(tmp_path / "s.duckdb", lock_timeout=1.0)
    proc = outside_handle(store.db_path, 30)
    try:
        with pytest.raises(StoreBusy, match=rf"store busy.*PID {proc.pid}.*cardio store snapshot"):
            store.execute("CREATE TABLE t (a INTEGER)")
    finally:
        proc.kill()
        proc.wait()
    store.execute("CREATE TABLE t (a INTEGER)")  # and fine once it is gone


def test_lock_holder_is_read_from_duckdbs_message():
    msg = ('IO Error: Could not set lock on file "/w/cardioscope.duckdb": Conflicting lock is held in '
           '/usr/bin/duckdb (PID 4242) by user ana. See also https://duckdb.org/docs')
    assert lock_holder(msg) == "/usr/bin/duckdb (PID 4242)"


def test_snapshot_is_a_consistent_copy_readable_while_the_store_is_in_use(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    store.execute("CREATE TABLE t AS SELECT range AS a FROM range(1000)")
    snap = store.snapshot(tmp_path / "copy" / "snap.duckdb")
    con = duckdb.connect(str(snap), read_only=True)  # an outside handle on the copy blocks nothing
    try:
        store.execute("INSERT INTO t VALUES (-1)")
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 1000
    finally:
        con.close()
    with pytest.raises(Exception, match="must not overwrite"):
        store.snapshot(store.db_path)


# -- read-only workspace, simulated (the suite runs as root, so chmod alone would not stop writes) ------------
@pytest.fixture
def read_only_workspace(tmp_path, monkeypatch):
    """A workspace folder whose files cannot be opened for writing, as on a read-only mount."""
    folder = tmp_path / "ro"
    store = Store(folder / "cardioscope.duckdb")
    store.execute("CREATE TABLE t AS SELECT 1 AS a")
    for lock in (store.lock_path, store.turnstile_path):
        lock.unlink()  # as if copied without them: the read path must cope with no lock files at all
    real_open, real_access = os.open, os.access

    def ro_open(path, flags, *args, **kwargs):
        if str(path).startswith(str(folder)) and flags & (os.O_RDWR | os.O_WRONLY | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    def ro_access(path, mode, *args, **kwargs):
        if str(path).startswith(str(folder)) and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)
    monkeypatch.setattr(os, "open", ro_open)
    monkeypatch.setattr(os, "access", ro_access)
    return folder


def test_read_only_workspace_is_served_read_only(read_only_workspace):
    store = Store(read_only_workspace / "cardioscope.duckdb")
    assert store.read_only
    assert store.scalar("SELECT a FROM t") == 1
    with pytest.raises(StoreReadOnly, match="read-only"):
        store.execute("INSERT INTO t VALUES (2)")
    assert store.scalar("SELECT count(*) FROM t") == 1


def test_read_only_workspace_with_lock_files_present(tmp_path, monkeypatch):
    store = Store(tmp_path / "cardioscope.duckdb")
    store.execute("CREATE TABLE t AS SELECT 1 AS a")
    real_open = os.open

    def ro_open(path, flags, *args, **kwargs):
        if str(path).endswith((".lock", ".turnstile")) and flags & (os.O_RDWR | os.O_CREAT):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(os, "open", ro_open)
    ro = Store(tmp_path / "cardioscope.duckdb", read_only=True)
    assert ro.scalar("SELECT a FROM t") == 1
    with pytest.raises(StoreReadOnly):
        store.execute("INSERT INTO t VALUES (2)")  # a store that thought it could write says why it cannot


# -- disk full: a real write failure (RLIMIT_FSIZE makes the file system refuse to grow the file) ----------
def test_disk_full_is_a_clear_error_and_the_store_stays_readable(tmp_path):
    db = tmp_path / "s.duckdb"
    store = Store(db)
    store.execute("CREATE TABLE t AS SELECT range AS a, 'x' AS b FROM range(100)")
    script = textwrap.dedent(f"""
        import resource, signal, sys
        from cardio_core.store import Store, StoreWriteFailed
        store = Store({str(db)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails with EFBIG instead
        limit = 4 << 20
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        try:
            with store.write() as con:
                con.execute("INSERT INTO t SELECT range, repeat('y', 200) || range::VARCHAR FROM range(200000)")
        except StoreWriteFailed as exc:
            print("CLEAR:", exc)
            sys.exit(0)
        print("no error")
        sys.exit(1)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "CLEAR:" in out.stdout and str(db) in out.stdout and "rolled back" in out.stdout
    again = Store(db)
    assert again.scalar("SELECT count(*) FROM t") == 100  # readable, nothing half-written
    again.execute("INSERT INTO t VALUES (1000, 'z')")
    assert again.scalar("SELECT count(*) FROM t") == 101


def test_io_error_inside_a_write_is_rolled_back(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    store.execute("CREATE TABLE t AS SELECT 1 AS a")
    with pytest.raises(StoreWriteFailed, match="rolled back"):
        with store.write() as con:
            con.execute("INSERT INTO t VALUES (2)")
            raise duckdb.IOException("No space left on device")
    assert store.scalar("SELECT count(*) FROM t") == 1
