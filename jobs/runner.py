"""Queue and run background jobs as separate OS processes on this machine.

State lives in the store's `jobs` table, not in this object, so any number of runners
(the app, `cardio jobs ...` commands, `cardio jobs daemon`) can share the queue, and a
job's process outlives the app that started it. Nothing happens on its own: poll() is
one scheduler step, called by the CLI on each command, by the app on each interaction
and by a background loop (run_scheduler / start_background_scheduler). Each poll:

1. finds active jobs whose process is gone (or whose pid now belongs to another program)
   and marks them failed ("process died ..."), or cancelled if a cancel was asked for;
2. escalates a cancel: SIGTERM to the job's process group, SIGKILL after the grace period;
3. claims queued jobs while fewer than max_concurrent are active and starts each in its
   own session (`python -m jobs.worker JOB_ID`), output appended to runs/<job>/job.log.

Claiming is one UPDATE ... WHERE status = 'queued' inside a store write transaction,
which holds the store's exclusive lock, so two pollers never start the same job.

Statuses: queued -> starting (claimed, process being started) -> running ->
succeeded | failed | cancelled.

Resume creates a new job (resume_of = the old id) that starts from the last checkpoint
the old job registered; the old job keeps its history, log and status.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cardio_core.config import Workspace
from cardio_core.errors import CardioError
from cardio_core.store import Store, StoreBusy
from cardio_core.vocabulary import ACTIVE_STATUSES, FINAL_STATUSES, JOB_STATUSES, RUNNING_STATUSES

from jobs.processes import (SLURM_CANCELLED, SLURM_DONE, SLURM_FAILED, SLURM_RUNNING, describe_exit, process_state,
                            signal_group, slurm_job_states, visible_gpus)
from jobs.progress import log_tail, read_progress
from jobs.spec import JobSpec

log = logging.getLogger(__name__)

# A job with a worker process (or one being started); queued jobs have none yet.
RUNNING = RUNNING_STATUSES
ACTIVE = ACTIVE_STATUSES
FINAL = FINAL_STATUSES
STATUSES = JOB_STATUSES
LOG_FILE = "job.log"
PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Popen handles of the workers this process started, shared by all runners in it: they
# reap finished children (no zombies) and tell the real exit code or signal.
_PROCESSES: dict[str, subprocess.Popen] = {}
_PROCESSES_LOCK = threading.Lock()


class JobError(CardioError):
    """A job operation that cannot be done (unknown id, resuming a running job, ...)."""


def new_job_id(kind: str) -> str:
    return f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def _last_log_line(log_path: str | None) -> str | None:
    return log_tail(log_path, 1, max_bytes=4096).strip()[:300] or None


# -- the runner --------------------------------------------------------------------------

class LocalRunner:
    """Submit, schedule, cancel and resume jobs on this machine."""

    def __init__(self, workspace: Workspace, store: Store | None = None, max_concurrent: int | None = None,
                 cancel_grace: float = 10.0, start_timeout: float = 60.0):
        self.workspace = workspace.ensure()
        self.store = store or Store(self.workspace.db_path)
        self.gpus = visible_gpus()
        if max_concurrent is None:
            max_concurrent = max(1, len(self.gpus))
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ValueError(f"max_concurrent: must be an integer >= 1, got {max_concurrent!r}")
        if cancel_grace < 0 or start_timeout <= 0:
            raise ValueError("cancel_grace must be >= 0 and start_timeout > 0")
        self.max_concurrent = max_concurrent
        self.cancel_grace = cancel_grace
        self.start_timeout = start_timeout
        self.host = socket.gethostname()
        self._terminated: set[str] = set()  # jobs this runner has sent SIGTERM to

    def job_dir(self, job_id: str) -> Path:
        return self.workspace.runs_dir / job_id

    # -- queue -----------------------------------------------------------------------
    def submit(self, spec: JobSpec | dict, *, start: bool = True, resume_of: str | None = None,
               resume_from: str | None = None, launcher: str = "local", group_id: str | None = None) -> str:
        """Queue a job (a member of sweep `group_id`, if given); with start=True also run one scheduler step.
        Returns the job id."""
        spec = spec if isinstance(spec, JobSpec) else JobSpec.from_dict(spec)
        spec.validate()  # the kind is checked against jobs.kinds there, once
        if launcher not in ("local", "slurm"):
            raise ValueError(f"launcher: must be local or slurm, got {launcher!r}")
        job_id = new_job_id(spec.kind)
        job_dir = self.job_dir(job_id)
        job_dir.mkdir(parents=True, exist_ok=False)
        with self.store.write() as con:
            con.execute("INSERT INTO jobs (job_id, kind, spec, status, log_path, launcher, resume_of, resume_from, "
                        "group_id) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                        [job_id, spec.kind, spec.to_json(), str(job_dir / LOG_FILE), launcher, resume_of,
                         resume_from, group_id])
        if start and launcher == "local":
            self.poll()
        return job_id

    def _row(self, job_id: str) -> dict[str, Any]:
        df = self.store.query_df("SELECT * FROM jobs WHERE job_id = ?", [job_id])
        if df.empty:
            raise JobError(f"no job {job_id!r} in {self.store.db_path}")
        return {k: (None if _isna(v) else v) for k, v in df.iloc[0].to_dict().items()}

    def show(self, job_id: str) -> dict[str, Any]:
        """The job's row plus its latest progress."""
        row = self._row(job_id)
        row["progress"] = read_progress(self.job_dir(job_id))
        if row.get("launcher") == "slurm" and row.get("slurm_job_id"):
            states = slurm_job_states([row["slurm_job_id"]]) or {}
            row["slurm_state"] = (states.get(str(row["slurm_job_id"])) or {}).get("state")
        return row

    def list(self, status: str | None = None, limit: int = 100):
        """Jobs, newest first, as a DataFrame."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status: must be one of {', '.join(STATUSES)}, got {status!r}")
        sql = ("SELECT job_id, kind, status, created_at, started_at, finished_at, resume_of, error "
               "FROM jobs")
        params: list[Any] = []
        if status:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY created_at DESC, job_id DESC LIMIT ?"
        params.append(int(limit))
        return self.store.query_df(sql, params)

    def status(self, job_id: str) -> str:
        status = self.store.scalar("SELECT status FROM jobs WHERE job_id = ?", [job_id])
        if status is None:
            raise JobError(f"no job {job_id!r} in {self.store.db_path}")
        return status

    # -- scheduler step --------------------------------------------------------------
    def poll(self) -> dict[str, list[str]]:
        """One scheduler step; returns the job ids it found dead and the ones it started."""
        return {"ended": self._reap() + self._sync_slurm(), "started": self._start_queued()}

    def _sync_slurm(self) -> list[str]:
        """Follow jobs handed to sbatch: SLURM's state (squeue / scontrol / sacct) -> the job's status.

        PENDING stays queued; RUNNING before the worker has claimed the job -> starting (the worker then
        marks it running); a job that ended without the worker recording it (killed on the node, out of
        memory, time limit, node failure, scancel from a shell) -> failed or cancelled, with SLURM's words.
        """
        rows = self.store.query("SELECT job_id, status, slurm_job_id, log_path FROM jobs WHERE launcher = 'slurm' "
                                "AND slurm_job_id IS NOT NULL AND list_contains(?, status)",
                                [list(ACTIVE)])
        if not rows:
            return []
        states = slurm_job_states([r[2] for r in rows])
        if states is None:
            return []  # SLURM could not be asked: nothing is concluded
        ended = []
        for job_id, status, slurm_id, log_path in rows:
            info = states.get(str(slurm_id))
            if info is None:
                if self._mark_ended(job_id, None, f"SLURM no longer knows job {slurm_id} (ended longer ago than "
                                    "its MinJobAge and no accounting to ask)", log_path):
                    ended.append(job_id)
                continue
            state = info["state"]
            if state in SLURM_RUNNING:
                if status == "queued":
                    with self.store.write() as con:
                        con.execute("UPDATE jobs SET status = 'starting', claimed_at_s = ? WHERE job_id = ? "
                                    "AND status = 'queued'", [time.time(), job_id])
                continue
            if state not in SLURM_DONE + SLURM_FAILED + SLURM_CANCELLED:
                continue  # waiting (PENDING, REQUEUED, ...): still queued
            exit_code = info.get("exit_code") or ""
            detail = ", ".join(x for x in (f"exit code {exit_code}" if exit_code else "",
                                           info.get("reason") if info.get("reason") not in ("", "None") else "") if x)
            reason = f"SLURM job {slurm_id} {state}" + (f" ({detail})" if detail else "")
            code = _slurm_exit_status(exit_code)
            if self._mark_ended(job_id, code, reason, log_path, cancelled=state in SLURM_CANCELLED):
                ended.append(job_id)
        return ended

    def _reap(self) -> list[str]:
        now = time.time()
        with _PROCESSES_LOCK:
            # Reap workers that ended on their own (no zombies left behind in the app).
            for job_id, handle in list(_PROCESSES.items()):
                if handle.poll() is not None and not self._is_active(job_id):
                    del _PROCESSES[job_id]
        rows = self.store.query(
            "SELECT job_id, status, pid, pgid, host, claimed_at_s, cancel_requested_at_s, log_path FROM jobs "
            "WHERE launcher = 'local' AND list_contains(?, status)", [list(RUNNING)])
        ended = []
        for job_id, status, pid, pgid, host, claimed_at, cancel_at, log_path in rows:
            if host and host != self.host:
                continue  # another machine's process: it cannot be checked from here
            with _PROCESSES_LOCK:
                handle = _PROCESSES.get(job_id)
            returncode = handle.poll() if handle is not None else None
            if pid is None:
                if claimed_at is not None and now - claimed_at > self.start_timeout and handle is None:
                    self._mark_ended(job_id, None, "the scheduler that claimed it stopped before starting "
                                     "its process", log_path)
                    ended.append(job_id)
                continue
            state = "dead" if returncode is not None else process_state(pid, job_id)
            if handle is not None and returncode is None and state != "alive":
                # SIGKILL'd between poll() and the /proc read: it is a zombie now, so waiting
                # returns at once with the real signal instead of "exit status unknown".
                try:
                    returncode = handle.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            if state == "alive":
                if cancel_at is not None:
                    if now - cancel_at >= self.cancel_grace:
                        signal_group(pgid or pid, signal.SIGKILL)
                    elif job_id not in self._terminated:
                        # Covers a cancel asked before the process had started, or from another host's CLI.
                        signal_group(pgid or pid, signal.SIGTERM)
                        self._terminated.add(job_id)
                continue
            if self._mark_ended(job_id, returncode, describe_exit(returncode, pid, state), log_path):
                ended.append(job_id)
            if state == "dead" and pgid:
                # The leader is gone; children it left in its group (data loaders) go too.
                signal_group(pgid, signal.SIGKILL)
            with _PROCESSES_LOCK:
                _PROCESSES.pop(job_id, None)
        return ended

    def _is_active(self, job_id: str) -> bool:
        return self.store.scalar("SELECT status FROM jobs WHERE job_id = ?", [job_id]) in RUNNING

    def _mark_ended(self, job_id: str, returncode: int | None, reason: str, log_path: str | None,
                    cancelled: bool = False) -> bool:
        progress = read_progress(self.job_dir(job_id)) or {}
        with self.store.write() as con:
            row = con.execute("SELECT status, cancel_requested_at_s FROM jobs WHERE job_id = ?", [job_id]).fetchone()
            if row is None or row[0] not in RUNNING:
                return False  # the worker recorded its own end in the meantime
            if progress.get("status") in FINAL:
                # It finished but died before telling the store.
                status, error = progress["status"], None if progress["status"] != "failed" else reason
            elif row[1] is not None or cancelled:
                status, error = "cancelled", None
            else:
                last = _last_log_line(log_path)
                status, error = "failed", reason + (f"; last log line: {last}" if last else "")
            con.execute("UPDATE jobs SET status = ?, error = ?, exit_code = coalesce(?, exit_code), "
                        "finished_at = current_timestamp WHERE job_id = ?", [status, error, returncode, job_id])
        log.info("job %s %s%s", job_id, status, f": {error}" if error else "")
        return True

    def _start_queued(self) -> list[str]:
        claimed: list[tuple[str, int | None]] = []
        with self.store.write() as con:
            active = con.execute("SELECT gpu FROM jobs WHERE launcher = 'local' AND list_contains(?, status)",
                                 [list(RUNNING)]).fetchall()
            free = self.max_concurrent - len(active)
            if free <= 0:
                return []
            load = {i: 0 for i in range(len(self.gpus))}
            for (gpu,) in active:
                if gpu in load:
                    load[gpu] += 1
            queued = con.execute("SELECT job_id, spec->>'device', coalesce(TRY_CAST(spec->>'devices' AS INTEGER), 1) "
                                 "FROM jobs WHERE launcher = 'local' AND status = 'queued' ORDER BY created_at, job_id "
                                 "LIMIT ?", [free]).fetchall()
            now = time.time()
            for job_id, device, devices in queued:
                gpu = None
                # a DDP job (devices > 1) sees every GPU and Lightning takes the first `devices` of them
                if load and device != "cpu" and devices == 1:
                    gpu = min(load, key=lambda i: (load[i], i))  # the least busy GPU
                    load[gpu] += 1
                got = con.execute("UPDATE jobs SET status = 'starting', claimed_at_s = ?, gpu = ?, host = ? "
                                  "WHERE job_id = ? AND status = 'queued' RETURNING job_id",
                                  [now, gpu, self.host, job_id]).fetchall()
                if got:
                    claimed.append((job_id, gpu))
        started = []
        for job_id, gpu in claimed:
            if self._launch(job_id, gpu):
                started.append(job_id)
        return started

    def _launch(self, job_id: str, gpu: int | None) -> bool:
        job_dir = self.job_dir(job_id)
        job_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["CARDIO_WORKSPACE"] = str(self.workspace.root)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[gpu]
        cmd = [sys.executable, "-m", "jobs.worker", job_id, "--workspace", str(self.workspace.root)]
        try:
            with open(job_dir / LOG_FILE, "ab") as out:
                # Its own session: the job survives this process (the app) exiting or being
                # restarted, and cancel can signal the whole group (data-loader workers too).
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        env=env, cwd=str(job_dir), start_new_session=True, close_fds=True)
        except OSError as exc:
            with self.store.write() as con:
                con.execute("UPDATE jobs SET status = 'failed', error = ?, finished_at = current_timestamp "
                            "WHERE job_id = ? AND status = 'starting'",
                            [f"could not start the worker process: {exc}", job_id])
            return False
        with _PROCESSES_LOCK:
            _PROCESSES[job_id] = proc
        with self.store.write() as con:
            con.execute("UPDATE jobs SET pid = ?, pgid = ? WHERE job_id = ?", [proc.pid, proc.pid, job_id])
        log.info("job %s started, pid %d", job_id, proc.pid)
        return True

    # -- cancel / resume -------------------------------------------------------------
    def cancel(self, job_id: str, *, wait: bool = False, timeout: float | None = None) -> str:
        """Cancel a job: a queued one at once, a running one by SIGTERM to its process group
        (graceful: the job sees should_stop()), SIGKILL after `cancel_grace` seconds (done
        by poll()). With wait=True, poll until it has ended. Returns its status."""
        now = time.time()
        with self.store.write() as con:
            row = con.execute("SELECT status, pid, pgid, launcher, slurm_job_id, host FROM jobs WHERE job_id = ?",
                              [job_id]).fetchone()
            if row is None:
                raise JobError(f"no job {job_id!r} in {self.store.db_path}")
            status, pid, pgid, launcher, slurm_job_id, host = row
            if status in FINAL:
                return status
            if status == "queued" or launcher == "slurm":
                con.execute("UPDATE jobs SET status = 'cancelled', cancel_requested_at_s = ?, "
                            "finished_at = current_timestamp WHERE job_id = ?", [now, job_id])
                status = "cancelled"
            else:
                con.execute("UPDATE jobs SET cancel_requested_at_s = coalesce(cancel_requested_at_s, ?) "
                            "WHERE job_id = ?", [now, job_id])
        if launcher == "slurm":
            if slurm_job_id and shutil.which("scancel"):
                subprocess.run(["scancel", str(slurm_job_id)], check=False, timeout=30)
            return status
        if status in RUNNING and pid and (not host or host == self.host) and process_state(pid, job_id) == "alive":
            signal_group(pgid or pid, signal.SIGTERM)
            self._terminated.add(job_id)
        if wait and status not in FINAL:
            timeout = timeout if timeout is not None else self.cancel_grace + 15
            deadline = time.monotonic() + timeout
            status = self.wait(job_id, timeout=timeout)
            # The worker records 'cancelled' just before it exits: wait for the exit too,
            # so that the GPU and the process group are free when this returns.
            while pid and time.monotonic() < deadline and self._alive(job_id, pid):
                time.sleep(0.05)
            if pid and self._alive(job_id, pid):
                signal_group(pgid or pid, signal.SIGKILL)
        return status

    def _alive(self, job_id: str, pid: int) -> bool:
        with _PROCESSES_LOCK:
            handle = _PROCESSES.get(job_id)
        if handle is not None:
            return handle.poll() is None
        return process_state(pid, job_id) == "alive"

    def wait(self, job_id: str, timeout: float | None = None, interval: float = 0.1) -> str:
        """Poll until the job has ended (or `timeout` seconds pass); returns its status."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.poll()
            status = self.status(job_id)
            if status in FINAL or (deadline is not None and time.monotonic() > deadline):
                return status
            time.sleep(interval)

    def resume(self, job_id: str, *, start: bool = True) -> str:
        """Queue a new job that continues `job_id` from its last registered checkpoint."""
        row = self._row(job_id)
        if row["status"] not in ("failed", "cancelled"):
            raise JobError(f"job {job_id} is {row['status']}; only a failed or cancelled job can be resumed")
        pending = self.store.scalar("SELECT job_id FROM jobs WHERE resume_of = ? AND status NOT IN "
                                    "('failed', 'cancelled', 'succeeded')", [job_id])
        if pending:
            raise JobError(f"job {job_id} is already being resumed by {pending}")
        checkpoint = row.get("last_checkpoint") or row.get("resume_from")
        if checkpoint and not Path(checkpoint).is_file():
            raise JobError(f"{checkpoint}: the checkpoint job {job_id} registered is missing")
        spec = JobSpec.from_json(row["spec"])
        return self.submit(spec, start=start, resume_of=job_id, resume_from=checkpoint,
                           launcher=row.get("launcher") or "local", group_id=row.get("group_id"))


def _slurm_exit_status(exit_code: str) -> int | None:
    """SLURM's "code:signal" -> the exit code (128 + signal when a signal ended it)."""
    code, _, sig = (exit_code or "").partition(":")
    try:
        return 128 + int(sig) if sig and int(sig) else int(code)
    except ValueError:
        return None


def _isna(value: Any) -> bool:
    try:
        import pandas as pd
        return value is None or (not isinstance(value, (list, dict, str)) and bool(pd.isna(value)))
    except (TypeError, ValueError):
        return False


# -- scheduler loops ---------------------------------------------------------------------

def run_scheduler(runner: LocalRunner, interval: float = 2.0, stop: threading.Event | None = None) -> None:
    """Poll every `interval` seconds until `stop` is set (or forever)."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            runner.poll()
        except StoreBusy as exc:
            log.warning("scheduler: %s; trying again", exc)
        except Exception:  # noqa: BLE001 - a background loop must survive one bad step
            log.exception("scheduler step failed")
        stop.wait(interval)


_BACKGROUND: dict[Path, tuple[threading.Thread, threading.Event]] = {}


def start_background_scheduler(workspace: Workspace, interval: float = 2.0, **runner_kwargs
                               ) -> tuple[threading.Thread, threading.Event]:
    """A daemon thread that polls for the app; one per workspace per process."""
    key = workspace.root.resolve()
    existing = _BACKGROUND.get(key)
    if existing and existing[0].is_alive():
        return existing
    runner = LocalRunner(workspace, **runner_kwargs)
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(runner, interval, stop), daemon=True,
                              name=f"cardio-jobs-{key.name}")
    thread.start()
    _BACKGROUND[key] = (thread, stop)
    return thread, stop
