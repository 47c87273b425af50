"""The built-in 'sleep' job kind: a stand-in for training that the tests and the queue's users can run
without torch. It reports progress, checkpoints and resumes like a training job."""
from __future__ import annotations


def run_sleep(spec, ctx) -> dict:
    """Sleep `steps` x `seconds`, reporting progress each step and checkpointing like training.

    params: seconds (per step, 0.1), steps (5, or spec.epochs), checkpoint_every (1),
    fail (False) + fail_at (step, 1), write_seconds (time spent inside each checkpoint
    write, 0), ignore_stop (False: never look at should_stop, to test SIGKILL escalation),
    spawn_child (False: start a child process in the job's process group).
    """
    import json
    import subprocess
    import sys
    import time

    from jobs.progress import atomic_path

    p = spec.params
    seconds = float(p.get("seconds", 0.1))
    steps = int(p.get("steps", spec.epochs or 5))
    every = int(p.get("checkpoint_every", spec.checkpoint_every or 1))
    fail_at = int(p.get("fail_at", 1)) if p.get("fail") else None
    write_seconds = float(p.get("write_seconds", 0.0))
    ignore_stop = bool(p.get("ignore_stop", False))
    if seconds < 0 or steps < 1 or every < 1 or write_seconds < 0:
        raise ValueError(f"sleep job: bad params {p!r}")

    child = None
    if p.get("spawn_child"):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        (ctx.job_dir / "child.pid").write_text(str(child.pid))

    first = 1
    if ctx.resume_from is not None:
        first = int(json.loads(ctx.resume_from.read_text())["step"]) + 1
        ctx.log.info("resuming after step %d from %s", first - 1, ctx.resume_from)
    ctx.report_progress(epoch=first - 1, total_epochs=steps, force=True)
    done_log = ctx.job_dir / "steps.log"
    ckpt_dir = ctx.job_dir / "checkpoints"
    last = first - 1
    for step in range(first, steps + 1):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ctx.should_stop() and not ignore_stop:
                return {"first_step": first, "last_step": last, "stopped": True}
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
        if fail_at is not None and step == fail_at:
            raise RuntimeError(f"sleep job asked to fail at step {step}")
        with open(done_log, "a") as fh:
            fh.write(f"{step}\n")
        last = step
        if step % every == 0 or step == steps:
            path = ckpt_dir / f"step_{step:05d}.json"
            payload = json.dumps({"step": step, "padding": "x" * 4096})
            with atomic_path(path) as tmp:
                with open(tmp, "w") as fh:
                    fh.write(payload[: len(payload) // 2])
                    fh.flush()
                    time.sleep(write_seconds)  # a window in which a kill leaves a half-written file
                    fh.write(payload[len(payload) // 2:])
            ctx.register_checkpoint(path, epoch=step, step=step)
        ctx.report_progress(epoch=step, total_epochs=steps, metrics={"loss": 1.0 / step})
    if child is not None:
        child.terminate()
        child.wait()
    return {"first_step": first, "last_step": last, "stopped": False}
