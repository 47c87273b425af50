"""The job system with real worker processes (the 'sleep' kind stands in for training)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cardio_core.config import Workspace
from cardio_core.store import Store
from jobs.progress import read_progress
from jobs.processes import group_exists, process_state
from jobs.runner import JobError, LocalRunner
from jobs.spec import JobSpec, SpecError
from jobs.worker import JobContext, run_job

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws").ensure()


def make_runner(ws, **kw):
    kw.setdefault("max_concurrent", 2)
    kw.setdefault("cancel_grace", 3.0)
    return LocalRunner(ws, **kw)


def sleep_spec(**params):
    return {"kind": "sleep", "params": params}


def wait_for(predicate, timeout=20.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def polled_status(runner, job_id):
    runner.poll()
    return runner.status(job_id)


def steps_done(runner, job_id):
    path = runner.job_dir(job_id) / "steps.log"
    return [int(s) for s in path.read_text().split()] if path.exists() else []


def test_lifecycle_queued_running_succeeded_with_progress(ws):
    runner = make_runner(ws)
    job_id = runner.submit(sleep_spec(seconds=0.4, steps=6), start=False)
    assert runner.status(job_id) == "queued"
    assert runner.poll()["started"] == [job_id]
    wait_for(lambda: polled_status(runner, job_id) == "running", what="running")
    first = wait_for(lambda: (p := read_progress(runner.job_dir(job_id))) and p.get("epoch", 0) >= 1 and p,
                     what="progress.json")
    assert first["total_epochs"] == 6 and first["eta_s"] > 0  # ETA from the elapsed time
    later = wait_for(lambda: (p := read_progress(runner.job_dir(job_id))) and p["epoch"] > first["epoch"] and p,
                     what="progress to advance")
    assert later["elapsed_s"] > first["elapsed_s"]
    assert runner.wait(job_id, timeout=30) == "succeeded"
    row = runner.show(job_id)
    assert row["exit_code"] == 0 and row["error"] is None
    assert row["started_at"] is not None and row["finished_at"] is not None
    assert row["progress"]["fraction"] == 1.0 and row["progress"]["status"] == "succeeded"
    assert json.loads((runner.job_dir(job_id) / "result.json").read_text())["last_step"] == 6
    assert steps_done(runner, job_id) == [1, 2, 3, 4, 5, 6]
    assert Path(row["last_checkpoint"]).name == "step_00006.json"


def test_failure_records_the_error_and_the_traceback(ws):
    runner = make_runner(ws)
    job_id = runner.submit(sleep_spec(seconds=0.05, steps=5, fail=True, fail_at=2))
    assert runner.wait(job_id, timeout=30) == "failed"
    row = runner.show(job_id)
    assert row["error"] == "RuntimeError: sleep job asked to fail at step 2"
    assert row["exit_code"] == 1
    log = Path(row["log_path"]).read_text()
    assert "Traceback (most recent call last)" in log and "run_sleep" in log


def test_cancel_is_graceful_first(ws):
    runner = make_runner(ws, cancel_grace=10.0)
    job_id = runner.submit(sleep_spec(seconds=0.2, steps=200))
    wait_for(lambda: steps_done(runner, job_id), what="a first step")
    pgid = runner.show(job_id)["pgid"]
    t0 = time.monotonic()
    assert runner.cancel(job_id, wait=True) == "cancelled"
    assert time.monotonic() - t0 < 8  # ended on SIGTERM, well before the SIGKILL deadline
    row = runner.show(job_id)
    assert row["exit_code"] == 3  # the worker itself recorded the cancel
    assert "SIGTERM received" in Path(row["log_path"]).read_text()
    assert not group_exists(pgid)
    assert len(steps_done(runner, job_id)) < 200


def test_cancel_escalates_to_sigkill_and_the_process_group_goes(ws):
    runner = make_runner(ws, cancel_grace=1.0)
    job_id = runner.submit(sleep_spec(seconds=0.2, steps=200, ignore_stop=True, spawn_child=True))
    child_pid = int(wait_for(lambda: (p := runner.job_dir(job_id) / "child.pid").exists() and p.read_text(),
                             what="the child process"))
    wait_for(lambda: polled_status(runner, job_id) == "running", what="running")
    pgid = runner.show(job_id)["pgid"]
    assert os.getpgid(child_pid) == pgid
    assert runner.cancel(job_id, wait=True, timeout=20) == "cancelled"
    row = runner.show(job_id)
    assert row["exit_code"] == -signal.SIGKILL
    wait_for(lambda: not group_exists(pgid), timeout=5, what="the process group to go")
    assert process_state(child_pid, job_id) != "alive"


def test_cancel_queued_job_never_starts(ws):
    runner = make_runner(ws)
    job_id = runner.submit(sleep_spec(seconds=0.05, steps=1), start=False)
    assert runner.cancel(job_id) == "cancelled"
    assert runner.poll()["started"] == []
    assert runner.status(job_id) == "cancelled"
    assert runner.cancel(job_id) == "cancelled"  # idempotent
    with pytest.raises(JobError, match="no job 'nope'"):
        runner.cancel("nope")


def test_sigkill_mid_checkpoint_registers_no_half_file_and_resume_continues(ws):
    runner = make_runner(ws)
    job_id = runner.submit(sleep_spec(seconds=0.05, steps=6, checkpoint_every=2, write_seconds=1.5))
    ckpt_dir = runner.job_dir(job_id) / "checkpoints"
    wait_for(lambda: runner.show(job_id)["last_checkpoint_epoch"] == 2, what="the first checkpoint")
    wait_for(lambda: any(p.name.endswith(".tmp") for p in ckpt_dir.iterdir()), what="the second checkpoint write")
    os.kill(runner.show(job_id)["pid"], signal.SIGKILL)
    assert runner.wait(job_id, timeout=10) == "failed"
    row = runner.show(job_id)
    assert row["error"].startswith("process died (killed by signal SIGKILL)")
    assert Path(row["last_checkpoint"]).name == "step_00002.json"
    assert sorted(p.name for p in ckpt_dir.glob("step_*.json")) == ["step_00002.json"]  # tmp never renamed
    assert steps_done(runner, job_id) == [1, 2, 3, 4]

    resumed = runner.resume(job_id)
    assert resumed != job_id
    assert runner.show(resumed)["resume_of"] == job_id
    with pytest.raises(JobError, match="already being resumed"):
        runner.resume(job_id)
    assert runner.wait(resumed, timeout=30) == "succeeded"
    assert steps_done(runner, resumed) == [3, 4, 5, 6]  # from the last complete checkpoint
    assert runner.show(job_id)["status"] == "failed"  # the old job keeps its history
    with pytest.raises(JobError, match="only a failed or cancelled job can be resumed"):
        runner.resume(resumed)


def test_a_kill_seen_between_poll_and_proc_still_reports_the_signal(ws):
    # CI once saw a SIGKILL'd worker reported as "exit status unknown": poll() ran while the
    # process was still dying, /proc then showed it a zombie. The handle must still be asked.
    import jobs.runner as runner_module

    class LateHandle:
        """poll() answers as if the kill had not landed yet; wait() tells the truth."""
        def __init__(self, proc):
            self.proc, self.pid = proc, proc.pid

        def poll(self):
            return None

        def wait(self, timeout=None):
            return self.proc.wait(timeout=timeout)

    runner = make_runner(ws)
    job_id = runner.submit(sleep_spec(seconds=0.2, steps=300))
    wait_for(lambda: steps_done(runner, job_id), what="running")
    pid = runner.show(job_id)["pid"]
    with runner_module._PROCESSES_LOCK:
        runner_module._PROCESSES[job_id] = LateHandle(runner_module._PROCESSES[job_id])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: process_state(pid, job_id) != "alive", timeout=5, what="the kill")
    assert runner.poll()["ended"] == [job_id]
    assert runner.show(job_id)["error"].startswith("process died (killed by signal SIGKILL)")


def test_worker_outlives_its_starter_and_its_death_is_found_later(ws):
    # "The app" is a CLI process that submits, starts the worker and exits.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "cardio_cli", "--workspace", str(ws.root), "jobs", "submit",
                          "--kind", "sleep", "--set", "params.seconds=0.2", "--set", "params.steps=300"],
                         capture_output=True, text=True, env=env, timeout=60, check=True)
    job_id = out.stdout.split()[0]
    runner = make_runner(ws)  # a fresh runner: it holds no handle on that process
    wait_for(lambda: runner.status(job_id) == "running" and steps_done(runner, job_id), what="running")
    runner.poll()
    assert runner.status(job_id) == "running"  # alive though its parent has exited
    pid = runner.show(job_id)["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: process_state(pid, job_id) != "alive", timeout=5, what="the kill")
    assert runner.poll()["ended"] == [job_id]
    row = runner.show(job_id)
    assert row["status"] == "failed"
    assert row["error"].startswith(f"process died (pid {pid} is gone")


def test_max_concurrent_is_respected(ws):
    runner = make_runner(ws, max_concurrent=2)
    ids = [runner.submit(sleep_spec(seconds=0.3, steps=3), start=False) for _ in range(4)]
    most = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runner.poll()
        statuses = [runner.status(j) for j in ids]
        active = sum(s in ("starting", "running") for s in statuses)
        most = max(most, active)
        assert active <= 2
        if all(s == "succeeded" for s in statuses):
            break
        time.sleep(0.05)
    assert most == 2
    assert [runner.status(j) for j in ids] == ["succeeded"] * 4


POLLER = """
import json, sys, time
from pathlib import Path
from cardio_core.config import Workspace
from jobs.runner import LocalRunner
runner = LocalRunner(Workspace(Path(sys.argv[1])), max_concurrent=8)
ids = sys.argv[2:]
started = []
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    started += runner.poll()["started"]
    if all(runner.status(j) in ("succeeded", "failed", "cancelled") for j in ids):
        break
print(json.dumps(started))
"""


def test_two_runners_polling_concurrently_never_start_a_job_twice(ws):
    runner = make_runner(ws)
    ids = [runner.submit(sleep_spec(seconds=0.1, steps=1), start=False) for _ in range(4)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    pollers = [subprocess.Popen([sys.executable, "-c", POLLER, str(ws.root), *ids], stdout=subprocess.PIPE,
                                text=True, env=env) for _ in range(2)]
    started = []
    for p in pollers:
        out, _ = p.communicate(timeout=90)
        started += json.loads(out)
    assert sorted(started) == sorted(ids)  # each job started once, by one of them
    for j in ids:
        assert runner.status(j) == "succeeded"
        assert (runner.job_dir(j) / "job.log").read_text().count("starting job") == 1


def test_worker_does_not_rerun_a_finished_job(ws):
    runner = make_runner(ws)
    job_id = runner.submit(sleep_spec(seconds=0.01, steps=2))
    assert runner.wait(job_id, timeout=30) == "succeeded"
    assert run_job(job_id, ws) == "succeeded"
    assert steps_done(runner, job_id) == [1, 2]


def test_submit_refuses_an_unknown_kind(ws):
    runner = make_runner(ws)
    with pytest.raises(SpecError, match="kind: must be one of"):
        runner.submit({"kind": "no_such_kind"})
    assert runner.list().empty


def test_context_registers_only_complete_files_inside_the_workspace(ws, tmp_path):
    store = Store(ws.db_path)
    spec = JobSpec(kind="sleep")
    with store.write() as con:
        con.execute("INSERT INTO jobs (job_id, kind, spec, status) VALUES ('j', 'sleep', ?, 'running')",
                    [spec.to_json()])
    ctx = JobContext(workspace=ws, store=store, job_id="j", spec=spec, job_dir=ws.runs_dir / "j", resume_from=None)
    outside = tmp_path / "elsewhere.ckpt"
    outside.write_text("x")
    with pytest.raises(ValueError, match="outside the workspace"):
        ctx.register_checkpoint(outside)
    with pytest.raises(ValueError, match="missing or empty"):
        ctx.register_checkpoint(ws.runs_dir / "j" / "none.ckpt")
    good = ws.runs_dir / "j" / "good.ckpt"
    good.parent.mkdir(parents=True, exist_ok=True)
    good.write_text("weights")
    ctx.register_checkpoint(good, epoch=3)
    assert store.query("SELECT last_checkpoint, last_checkpoint_epoch FROM jobs") == [(str(good), 3)]


def test_each_concurrent_job_gets_its_own_gpu(ws):
    runner = make_runner(ws, max_concurrent=3)
    runner.gpus = ["3", "5"]  # as if CUDA_VISIBLE_DEVICES=3,5
    ids = [runner.submit(sleep_spec(seconds=0.3, steps=3), start=False) for _ in range(2)]
    cpu_job = runner.submit({"kind": "sleep", "device": "cpu", "params": {"seconds": 0.3, "steps": 3}},
                            start=False)
    assert sorted(runner.poll()["started"]) == sorted([*ids, cpu_job])
    seen = set()
    for job_id in ids:
        pid = runner.show(job_id)["pid"]
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        seen |= {e.decode() for e in environ if e.startswith(b"CUDA_VISIBLE_DEVICES=")}
    assert seen == {"CUDA_VISIBLE_DEVICES=3", "CUDA_VISIBLE_DEVICES=5"}
    assert runner.show(cpu_job)["gpu"] is None
    for job_id in [*ids, cpu_job]:
        assert runner.wait(job_id, timeout=30) == "succeeded"


def test_background_scheduler_runs_queued_jobs_without_explicit_polls(ws):
    from jobs.runner import start_background_scheduler
    thread, stop = start_background_scheduler(ws, interval=0.1, max_concurrent=1)
    try:
        assert start_background_scheduler(ws, interval=0.1)[0] is thread  # one per workspace
        runner = make_runner(ws)
        job_id = runner.submit(sleep_spec(seconds=0.05, steps=2), start=False)
        wait_for(lambda: runner.status(job_id) == "succeeded", timeout=30, what="the scheduler to run it")
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
