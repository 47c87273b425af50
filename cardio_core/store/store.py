"""The DuckDB store and how several processes share it.

DuckDB lets one process write a database file, or several processes read it, never
both at once. Background jobs and the app all need the store, so no process keeps a
connection open: each read or write opens a short-lived connection under an advisory
file lock (`<db>.lock`, fcntl): shared for readers, exclusive for writers. The lock is
released by the kernel when a process dies, so a job killed with SIGKILL never leaves
the store locked; DuckDB's write-ahead log rolls back a transaction that did not commit,
so nothing half-written survives. Waiting for the lock replaces "database is locked"
errors; a timeout (default 60 s) ends in a clear StoreBusy error instead of a hang.

Processes outside this protocol (the duckdb CLI, a notebook) take DuckDB's own file lock,
even read-only. A connection that meets it ("Conflicting lock is held") is retried until
the same timeout, then StoreBusy names the holder (program and PID) from DuckDB's message.
To read the store while the app and jobs run, use `cardio store snapshot OUT` (a consistent
copy taken under the shared lock) and open the copy.

A workspace whose folder or database file is not writable (a read-only mount, a shared
results folder) is opened read-only: reads work (lock files that cannot be opened
read-write are opened read-only, or skipped when absent, since nobody can write then) and
every write raises StoreReadOnly. A write that fails inside DuckDB with an I/O error (disk
full, file too large) is rolled back and raised as StoreWriteFailed naming the file.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import duckdb
import pandas as pd

from cardio_core.errors import CardioError
from cardio_core.store.schema import LATEST_VERSION, MIGRATIONS


class StoreBusy(CardioError):
    pass


class StoreReadOnly(CardioError):
    """The workspace cannot be written: pages are served read-only and writes are refused."""


class StoreWriteFailed(CardioError):
    """A write failed inside DuckDB (disk full, I/O error) and was rolled back; the store is unchanged."""


_HOLDER = re.compile(r"held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def lock_holder(message: str) -> str | None:
    """'PROGRAM (PID n)' of the process DuckDB says holds its file lock, if the message names it."""
    m = _HOLDER.search(str(message))
    return f"{m.group('program')} (PID {m.group('pid')})" if m else None


def _is_lock_conflict(exc: BaseException) -> bool:
    text = str(exc)
    return "Conflicting lock" in text or "Could not set lock" in text


def _is_write_failure(exc: BaseException) -> bool:
    """Disk full, file too large, I/O error: the write could not reach the file (not a bad statement)."""
    if isinstance(exc, CardioError):
        return False
    if isinstance(exc, (duckdb.IOException, duckdb.OutOfMemoryException, OSError)):
        return True
    return isinstance(exc, duckdb.TransactionException) and "Failed to commit" in str(exc)


def workspace_writable(db_path: Path) -> bool:
    """Whether this process may create and change the store's files (os.access also sees read-only mounts)."""
    folder = db_path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    return not db_path.exists() or os.access(db_path, os.W_OK)


class Store:
    def __init__(self, db_path: str | Path, lock_timeout: float = 60.0, read_only: bool | None = None):
        self.db_path = Path(db_path)
        self.lock_path = self.db_path.with_suffix(self.db_path.suffix + ".lock")
        self.turnstile_path = self.db_path.with_suffix(self.db_path.suffix + ".turnstile")
        self.lock_timeout = lock_timeout
        self.read_only = (not workspace_writable(self.db_path)) if read_only is None else bool(read_only)
        self.lock_conflicts_retried = 0  # outside DuckDB handles waited out (the soak benchmark reports it)
        if self.read_only:
            if not self.db_path.exists():
                raise StoreReadOnly(f"{self.db_path}: the workspace is read-only and has no store yet")
            return
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.migrate()

    # -- connections -----------------------------------------------------------------
    def _flock(self, fd: int, mode: int, deadline: float) -> None:
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreBusy(f"{self.db_path}: store busy for more than {self.lock_timeout:.0f} s")
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    def _open_lock_file(self, path: Path, exclusive: bool) -> int | None:
        """The lock file, read-write (created if needed); read-only where it cannot be written; None when a
        read-only workspace has none (then nobody can write, and a reader needs no lock)."""
        if not self.read_only:
            try:
                return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                if exc.errno not in _NOT_WRITABLE:
                    raise
                if exclusive:
                    raise StoreReadOnly(f"{path}: cannot be written ({exc.strerror}); the workspace is read-only") \
                        from None
        if exclusive:
            raise StoreReadOnly(f"{self.db_path}: the workspace is read-only; nothing can be written")
        try:
            return os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[float]:
        """Yields the deadline, so connecting waits out outside handles until the same timeout."""
        # A turnstile lock in front of the main lock gives writers priority: a waiting
        # writer holds the turnstile, so new readers queue behind it instead of
        # starving it with an endless stream of shared locks.
        deadline = time.monotonic() + self.lock_timeout
        turnstile = self._open_lock_file(self.turnstile_path, exclusive)
        try:
            fd = self._open_lock_file(self.lock_path, exclusive)
        except BaseException:
            if turnstile is not None:
                os.close(turnstile)
            raise
        try:
            if turnstile is not None:
                try:
                    self._flock(turnstile, fcntl.LOCK_EX, deadline)
                finally:
                    os.close(turnstile)  # closing the descriptor releases the flock
                    turnstile = None
            if fd is not None:
                self._flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, deadline)
            yield deadline
        finally:
            if turnstile is not None:
                os.close(turnstile)
            if fd is not None:
                os.close(fd)

    def _connect(self, read_only: bool, deadline: float) -> duckdb.DuckDBPyConnection:
        """duckdb.connect, waiting out a process outside this protocol that holds DuckDB's own file lock."""
        delay = 0.01
        while True:
            try:
                return duckdb.connect(str(self.db_path), read_only=read_only)
            except duckdb.IOException as exc:
                if not _is_lock_conflict(exc):
                    raise
                if time.monotonic() > deadline:
                    holder = lock_holder(str(exc))
                    raise StoreBusy(f"{self.db_path}: store busy for more than {self.lock_timeout:.0f} s: another "
                                    f"process holds the database file{' (' + holder + ')' if holder else ''}. "
                                    "Close it; to read the store while the app runs use `cardio store snapshot`."
                                    ) from None
                self.lock_conflicts_retried += 1
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    @contextlib.contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection, shared with other readers."""
        with self._locked(exclusive=False) as deadline:
            con = self._connect(True, deadline)
            try:
                yield con
            finally:
                con.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection inside one transaction: all of it commits or none."""
        if self.read_only:
            raise StoreReadOnly(f"{self.db_path}: the workspace is read-only; nothing can be written")
        with self._locked(exclusive=True) as deadline:
            con = self._connect(False, deadline)
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                    con.execute("COMMIT")
                except BaseException as exc:
                    try:
                        con.execute("ROLLBACK")
                    except duckdb.Error:
                        pass  # a failed COMMIT has already rolled back
                    if _is_write_failure(exc):
                        raise StoreWriteFailed(f"{self.db_path}: the write failed and was rolled back, the store "
                                               f"is unchanged: {exc}") from exc
                    raise
            finally:
                con.close()

    def snapshot(self, out: str | Path) -> Path:
        """A consistent copy of the store, taken under the shared lock (no writer is active meanwhile), for
        reading with the duckdb CLI or a notebook while the app and jobs keep the original."""
        import shutil
        out = Path(out)
        if out.resolve() == self.db_path.resolve():
            raise CardioError(f"{out}: the snapshot must not overwrite the store")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
        with self._locked(exclusive=False):
            shutil.copyfile(self.db_path, tmp)
            wal = self.db_path.with_name(self.db_path.name + ".wal")
            if wal.exists():
                shutil.copyfile(wal, tmp.with_name(tmp.name + ".wal"))
        con = duckdb.connect(str(tmp))  # replays a copied WAL into the copy, then checkpoints
        con.execute("CHECKPOINT")
        con.close()
        os.replace(tmp, out)
        return out

    # -- schema ----------------------------------------------------------------------
    def migrate(self) -> int:
        if self.read_only:
            return self.schema_version()
        with self._locked(exclusive=True) as deadline:
            con = self._connect(False, deadline)
            try:
                con.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                            "version INTEGER PRIMARY KEY, description TEXT, "
                            "applied_at TIMESTAMP DEFAULT current_timestamp)")
                current = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
                for version, description, sql in MIGRATIONS:
                    if version <= current:
                        continue
                    con.execute("BEGIN TRANSACTION")
                    try:
                        con.execute(sql)
                        con.execute("INSERT INTO schema_version (version, description) VALUES (?, ?)",
                                    [version, description])
                        con.execute("COMMIT")
                    except BaseException:
                        con.execute("ROLLBACK")
                        raise
                return LATEST_VERSION
            finally:
                con.close()

    def schema_version(self) -> int:
        return int(self.scalar("SELECT max(version) FROM schema_version"))

    # -- helpers (all parameterised) -------------------------------------------------
    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        with self.read() as con:
            return con.execute(sql, params or []).df()

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self.read() as con:
            return con.execute(sql, params or []).fetchall()

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self.write() as con:
            con.execute(sql, params or [])

    def insert_df(self, table: str, df: pd.DataFrame, replace_where: tuple[str, Sequence[Any]] | None = None) -> None:
        """Insert a DataFrame's columns into `table`, optionally deleting rows first, atomically."""
        if not table.isidentifier():
            raise ValueError(f"bad table name {table!r}")
        cols = ", ".join(f'"{c}"' for c in df.columns)
        with self.write() as con:
            if replace_where is not None:
                where, params = replace_where
                con.execute(f"DELETE FROM {table} WHERE {where}", list(params))
            if len(df):
                con.register("_incoming", df)
                con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _incoming")
                con.unregister("_incoming")

    def replace_rows(self, table: str, df: pd.DataFrame, keys: Sequence[str], casts: dict[str, str] | None = None
                     ) -> None:
        """Replace the rows of `table` whose `keys` match a row of `df` by `df`'s rows, atomically; `casts`
        (column -> SQL type, e.g. {"values": "FLOAT[]"}) converts columns on the way in."""
        if not table.isidentifier() or not all(str(k).isidentifier() for k in [*keys, *df.columns]):
            raise ValueError(f"bad table or column name in {table!r} {list(df.columns)}")
        if df.empty:
            return
        cols = ", ".join(f'"{c}"' for c in df.columns)
        select = ", ".join(f'"{c}"::{casts[c]}' if casts and c in casts else f'"{c}"' for c in df.columns)
        match = " AND ".join(f't."{k}" = k."{k}"' for k in keys)
        with self.write() as con:
            con.register("_keys", df[list(keys)].drop_duplicates())
            con.execute(f"DELETE FROM {table} t USING _keys k WHERE {match}")
            con.unregister("_keys")
            con.register("_incoming", df)
            con.execute(f"INSERT INTO {table} ({cols}) SELECT {select} FROM _incoming")
            con.unregister("_incoming")

    def record_problem(self, file: str, problem: str, stage: str, dataset_id: str | None = None) -> None:
        self.execute("INSERT INTO problems (dataset_id, file, problem, stage) VALUES (?, ?, ?, ?)",
                     [dataset_id, str(file), problem, stage])

    def record_problems(self, rows: list[tuple[str | None, str, str, str]]) -> None:
        """rows: (dataset_id, file, problem, stage)."""
        if not rows:
            return
        with self.write() as con:
            con.executemany("INSERT INTO problems (dataset_id, file, problem, stage) VALUES (?, ?, ?, ?)",
                            [list(r) for r in rows])


def to_json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def open_store(workspace=None) -> Store:
    from cardio_core.config import Workspace
    ws = (workspace or Workspace.from_env()).ensure()
    return Store(ws.db_path)
