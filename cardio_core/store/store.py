"""The DuckDB store and how several processes share it.

DuckDB lets one process write a database file, or several processes read it, never
both at once. Background jobs and the app all need the store, so no process keeps a
connection open: each read or write opens a short-lived connection under an advisory
file lock (`<db>.lock`, fcntl): shared for readers, exclusive for writers. The lock is
released by the kernel when a process dies, so a job killed with SIGKILL never leaves
the store locked; DuckDB's write-ahead log rolls back a transaction that did not commit,
so nothing half-written survives. Waiting for the lock replaces "database is locked"
errors; a timeout (default 60 s) ends in a clear StoreBusy error instead of a hang.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import duckdb
import pandas as pd

from cardio_core.errors import CardioError
from cardio_core.store.schema import LATEST_VERSION, MIGRATIONS


class StoreBusy(CardioError):
    pass


class Store:
    def __init__(self, db_path: str | Path, lock_timeout: float = 60.0):
        self.db_path = Path(db_path)
        self.lock_path = self.db_path.with_suffix(self.db_path.suffix + ".lock")
        self.turnstile_path = self.db_path.with_suffix(self.db_path.suffix + ".turnstile")
        self.lock_timeout = lock_timeout
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

    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        # A turnstile lock in front of the main lock gives writers priority: a waiting
        # writer holds the turnstile, so new readers queue behind it instead of
        # starving it with an endless stream of shared locks.
        deadline = time.monotonic() + self.lock_timeout
        turnstile = os.open(self.turnstile_path, os.O_RDWR | os.O_CREAT, 0o644)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._flock(turnstile, fcntl.LOCK_EX, deadline)
            try:
                self._flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, deadline)
            finally:
                os.close(turnstile)  # closing the descriptor releases the flock
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection, shared with other readers."""
        with self._locked(exclusive=False):
            con = duckdb.connect(str(self.db_path), read_only=True)
            try:
                yield con
            finally:
                con.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection inside one transaction: all of it commits or none."""
        with self._locked(exclusive=True):
            con = duckdb.connect(str(self.db_path))
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                else:
                    con.execute("COMMIT")
            finally:
                con.close()

    # -- schema ----------------------------------------------------------------------
    def migrate(self) -> int:
        with self._locked(exclusive=True):
            con = duckdb.connect(str(self.db_path))
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
