"""The process that runs one job: `python -m jobs.worker JOB_ID [--workspace DIR]`.

It loads the spec from the store, marks the job running, calls the kind's function
fn(spec, ctx) and records how it ended: returned -> succeeded, raised -> failed (the
exception's last line in `error`, the full traceback in the log), SIGTERM/SIGINT ->
should_stop() turns true and the job ends as cancelled. stdout/stderr are the job log.

Under DDP (Lightning's SLURM or subprocess launchers) every rank runs this module;
only global rank zero touches the store and progress.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

from cardio_core.config import Workspace
from cardio_core.store import Store
from cardio_core.training.distributed import is_global_zero_process
from cardio_core.vocabulary import RUNNING_STATUSES

from jobs.progress import ProgressWriter, atomic_write_text
from jobs.spec import JobSpec


def is_global_zero() -> bool:
    """True unless a DDP launcher says this process is another rank."""
    return is_global_zero_process()


class JobContext:
    """What a kind function gets besides its spec."""

    def __init__(self, *, workspace: Workspace, store: Store, job_id: str, spec: JobSpec, job_dir: Path,
                 resume_from: Path | None, is_global_zero: bool = True, log: logging.Logger | None = None,
                 progress_interval: float = 1.0):
        self.workspace = workspace
        self.store = store
        self.job_id = job_id
        self.spec = spec
        self.job_dir = job_dir
        self.resume_from = resume_from
        self.is_global_zero = is_global_zero
        self.log = log or logging.getLogger(f"jobs.{job_id}")
        self._progress = ProgressWriter(job_dir, job_id, min_interval=progress_interval)
        self._stop = False

    # -- cancellation ----------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop = True

    def should_stop(self) -> bool:
        """True once the job was asked to stop (SIGTERM): save what is worth saving and return."""
        return self._stop

    # -- progress --------------------------------------------------------------------
    def report_progress(self, *, epoch: int | None = None, step: int | None = None,
                        total_epochs: int | None = None, total_steps: int | None = None,
                        metrics: dict | None = None, message: str | None = None, force: bool = False,
                        stage: tuple[int, int, str] | None = None) -> None:
        """Record progress; written to progress.json at most every ~1 s (with an ETA).

        `stage` = (index from 0, number of stages, name) for jobs made of steps (the demo chain):
        epochs and steps then count within the stage and the overall fraction spans all stages."""
        if self.is_global_zero:
            self._progress.update(epoch=epoch, step=step, total_epochs=total_epochs, total_steps=total_steps,
                                  metrics=metrics, message=message, force=force, stage=stage)

    def flush_progress(self, status: str | None = None) -> None:
        if self.is_global_zero:
            self._progress.flush(status)

    # -- checkpoints -----------------------------------------------------------------
    def register_checkpoint(self, path: str | Path, *, epoch: int | None = None, step: int | None = None) -> Path:
        """Make a complete checkpoint file the one a resumed job starts from.

        Call it only after the file is fully written (and renamed into place), so a job
        killed while writing leaves the previous checkpoint registered.
        """
        path = Path(path).resolve()
        if not path.is_relative_to(self.workspace.root.resolve()):
            raise ValueError(f"{path}: checkpoint outside the workspace {self.workspace.root}")
        if not path.is_file() or path.stat().st_size == 0:
            raise ValueError(f"{path}: checkpoint file missing or empty")
        if self.is_global_zero:
            with self.store.write() as con:
                con.execute("UPDATE jobs SET last_checkpoint = ?, last_checkpoint_epoch = ? WHERE job_id = ?",
                            [str(path), epoch, self.job_id])
            self._progress.update(epoch=epoch, step=step, message=f"checkpoint {path.name}", force=True)
            self.log.info("checkpoint registered: %s (epoch %s)", path, epoch)
        return path

    # -- helpers for kinds -----------------------------------------------------------
    def trainer_kwargs(self) -> dict[str, Any]:
        """Lightning Trainer arguments for where this job runs: the spec's `devices` processes on this machine
        (Lightning starts the other ranks as copies of this worker), or nodes x tasks under SLURM (srun
        starts them; the sbatch script sets CARDIO_NUM_NODES / CARDIO_DEVICES_PER_NODE)."""
        accelerator = {"cpu": "cpu", "cuda": "gpu", "auto": "auto"}[self.spec.device]
        num_nodes = int(os.environ.get("CARDIO_NUM_NODES") or 1)
        devices = int(os.environ.get("CARDIO_DEVICES_PER_NODE") or getattr(self.spec, "devices", 1) or 1)
        strategy = "ddp" if num_nodes * devices > 1 else "auto"
        return {"accelerator": accelerator, "devices": devices, "num_nodes": num_nodes, "strategy": strategy}


# -- the store side ----------------------------------------------------------------------

def _claim(store: Store, job_id: str) -> bool:
    """Mark the job running with this process; False if it is not ours to run."""
    with store.write() as con:
        claimed = con.execute(
            "UPDATE jobs SET status = 'running', pid = ?, pgid = ?, host = ?, started_at = current_timestamp "
            "WHERE job_id = ? AND status IN ('queued', 'starting') AND cancel_requested_at_s IS NULL "
            "RETURNING job_id", [os.getpid(), os.getpgid(0), socket.gethostname(), job_id]).fetchall()
        if not claimed:
            # Cancelled before it started: end it here rather than leave it for a poller.
            con.execute("UPDATE jobs SET status = 'cancelled', finished_at = current_timestamp "
                        "WHERE job_id = ? AND status IN ('queued', 'starting') AND cancel_requested_at_s IS NOT NULL",
                        [job_id])
    return bool(claimed)


def _finish(store: Store, job_id: str, status: str, error: str | None, exit_code: int) -> None:
    with store.write() as con:
        con.execute("UPDATE jobs SET status = ?, error = ?, exit_code = ?, finished_at = current_timestamp "
                    "WHERE job_id = ? AND list_contains(?, status)",
                    [status, error, exit_code, job_id, list(RUNNING_STATUSES)])


def _setup_logging(job_id: str, rank_zero: bool) -> logging.Logger:
    rank = "" if rank_zero else f" rank {os.environ.get('SLURM_PROCID') or os.environ.get('RANK') or os.environ.get('LOCAL_RANK')}"
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True,
                        format=f"%(asctime)s %(levelname)s [{job_id}{rank}] %(name)s: %(message)s")
    return logging.getLogger(f"jobs.{job_id}")


EXIT_CODES = {"succeeded": 0, "failed": 1, "cancelled": 3}


def run_job(job_id: str, workspace: Workspace) -> str:
    """Run one job in this process and return its final status."""
    rank_zero = is_global_zero()
    log = _setup_logging(job_id, rank_zero)
    store = Store(workspace.db_path)
    rows = store.query("SELECT kind, spec, status, resume_from FROM jobs WHERE job_id = ?", [job_id])
    if not rows:
        log.error("no job %s in %s", job_id, workspace.db_path)
        return "failed"
    kind, spec_json, status, resume_from = rows[0]
    job_dir = workspace.runs_dir / job_id
    job_dir.mkdir(parents=True, exist_ok=True)
    if os.environ.get("SLURM_JOB_ID"):
        log.info("SLURM job %s step %s task %s of %s on %s", os.environ["SLURM_JOB_ID"],
                 os.environ.get("SLURM_STEP_ID", "-"), os.environ.get("SLURM_PROCID", "0"),
                 os.environ.get("SLURM_NTASKS", "1"), socket.gethostname())
    if rank_zero:
        log.info("starting job %s (kind %s) pid %d", job_id, kind, os.getpid())
        if not _claim(store, job_id):
            status = store.scalar("SELECT status FROM jobs WHERE job_id = ?", [job_id])
            log.warning("job %s is %s; not running it", job_id, status)
            return status

    ctx: JobContext | None = None
    try:
        spec = JobSpec.from_json(spec_json)
        ctx = JobContext(workspace=workspace, store=store, job_id=job_id, spec=spec, job_dir=job_dir,
                         resume_from=Path(resume_from) if resume_from else None,
                         is_global_zero=rank_zero, log=log)
        def on_signal(signum, frame, ctx=ctx):
            log.warning("%s received: asking the job to stop", signal.Signals(signum).name)
            ctx.request_stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)
        from jobs.kinds import get_kind
        fn = get_kind(kind).resolve()
        result = fn(spec, ctx)
    except BaseException as exc:  # noqa: BLE001 - every way out must be recorded
        if ctx is not None and ctx.should_stop() and isinstance(exc, (KeyboardInterrupt, SystemExit)):
            final, error = "cancelled", None
        else:
            final = "failed"
            error = traceback.format_exception_only(exc)[-1].strip()
            log.error("job %s failed:\n%s", job_id, traceback.format_exc())
    else:
        final, error = ("cancelled" if ctx.should_stop() else "succeeded"), None
        if rank_zero and result is not None:
            try:
                atomic_write_text(job_dir / "result.json", json.dumps(result, default=str, sort_keys=True))
            except (TypeError, ValueError):
                log.warning("result of job %s is not JSON; not saved", job_id)
    if rank_zero:
        if ctx is not None:
            # progress.json carries the final status too, so a poller that finds this
            # process gone before the store was updated still knows how it ended.
            ctx.flush_progress(final)
        _finish(store, job_id, final, error, EXIT_CODES[final])
        log.info("job %s %s%s", job_id, final, f": {error}" if error else "")
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.worker", description="Run one background job.")
    parser.add_argument("job_id")
    parser.add_argument("--workspace", help="workspace folder (default: $CARDIO_WORKSPACE)")
    args = parser.parse_args(argv)
    ws = Workspace(Path(args.workspace).resolve()) if args.workspace else Workspace.from_env()
    return EXIT_CODES.get(run_job(args.job_id, ws), 1)


if __name__ == "__main__":
    code = main()
    # Leave at once: the job has been recorded, and a library's leftover non-daemon
    # thread must not keep a finished (or cancelled) job's process and GPU alive.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
