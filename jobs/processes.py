"""The operating-system side of local jobs: which GPUs there are, whether a worker process is alive,
signalling a job's process group, and how a process ended, in words."""
from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
from pathlib import Path


def visible_gpus() -> list[str]:
    """CUDA device ids this machine offers, without importing torch."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [d.strip() for d in env.split(",") if d.strip()]
        # CUDA stops at the first invalid id such as -1.
        out = []
        for d in ids:
            if d.startswith("-"):
                break
            out.append(d)
        return out
    return list(_nvidia_smi_gpus())


@functools.cache
def _nvidia_smi_gpus() -> tuple[str, ...]:
    # Cached: the app makes a runner on every interaction, the GPUs do not change.
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        res = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(str(i) for i, line in enumerate(res.stdout.splitlines()) if line.startswith("GPU "))


def process_state(pid: int, job_id: str) -> str:
    """'alive' if pid is this job's worker, 'dead' if it is gone, 'foreign' if the pid was reused."""
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            return "dead"
        except PermissionError:
            return "foreign"
        if stat[stat.rfind(")") + 2:][:1] in ("Z", "X"):  # exited, not yet reaped
            return "dead"
        args = [a.decode(errors="replace") for a in cmdline]
        return "alive" if "jobs.worker" in args and job_id in args else "foreign"
    try:  # no /proc (macOS): can only tell whether the pid exists
        os.kill(pid, 0)
    except ProcessLookupError:
        return "dead"
    except PermissionError:
        return "foreign"
    return "alive"


def signal_group(pgid: int | None, sig: int) -> bool:
    if not pgid or pgid <= 1:
        return False
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def group_exists(pgid: int) -> bool:
    """Whether any process is left in the process group (zombies count as gone)."""
    if Path("/proc/self").exists():
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                return True
        return False
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def describe_exit(returncode: int | None, pid: int, state: str) -> str:
    if returncode is not None:
        if returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = str(-returncode)
            return f"process died (killed by signal {name})"
        if returncode == 0:
            return "process exited (exit code 0) without recording how the job ended"
        return f"process died (exit code {returncode})"
    if state == "foreign":
        return f"process died (pid {pid} now belongs to another program)"
    return f"process died (pid {pid} is gone; exit status unknown: no scheduler was watching it)"


# -- SLURM: where a job submitted with sbatch stands -------------------------------------------------

# SLURM's job states (squeue %T / sacct State) grouped by what they mean for a CardioScope job.
SLURM_WAITING = ("PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED",
                 "STOPPED", "RESIZING")
SLURM_RUNNING = ("RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT")
SLURM_CANCELLED = ("CANCELLED",)
SLURM_FAILED = ("FAILED", "NODE_FAIL", "TIMEOUT", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED",
                "REVOKED", "SPECIAL_EXIT")
SLURM_DONE = ("COMPLETED",)


def slurm_available() -> bool:
    return shutil.which("squeue") is not None


def _run(cmd: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None


def slurm_job_states(slurm_ids: list[str]) -> dict[str, dict[str, str]] | None:
    """{SLURM job id: {"state", "reason", "exit_code"}} for the ids SLURM still knows; None when SLURM
    cannot be asked (no squeue, controller down), so a caller never takes "no answer" for "gone".

    `squeue --states=all` knows pending, running and recently finished jobs (for MinJobAge after
    the end); older ones come from `sacct` where the cluster keeps accounting (slurmdbd).
    """
    ids = [str(i) for i in slurm_ids if i]
    if not ids or not slurm_available():
        return {} if not ids else None
    res = _run(["squeue", "--noheader", "--states=all", "--jobs", ",".join(ids), "--format=%i|%T|%r"])
    if res is None or (res.returncode != 0 and "Invalid job id" not in res.stderr):
        return None
    states: dict[str, dict[str, str]] = {}
    for line in res.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and parts[0] in ids:
            states[parts[0]] = {"state": parts[1].split()[0].rstrip("+"), "reason": parts[2], "exit_code": ""}
    # exit codes of finished jobs, and the ones squeue has forgotten: scontrol, then sacct
    for sid in ids:
        known = states.get(sid)
        if known is not None and known["state"] in SLURM_WAITING + SLURM_RUNNING:
            continue
        res = _run(["scontrol", "--oneliner", "show", "job", sid])
        if res is not None and res.returncode == 0:
            fields = dict(f.split("=", 1) for f in res.stdout.split() if "=" in f)
            states[sid] = {"state": fields.get("JobState", "UNKNOWN"), "reason": fields.get("Reason", ""),
                           "exit_code": fields.get("ExitCode", "")}
            continue
        if shutil.which("sacct"):
            res = _run(["sacct", "--noheader", "--parsable2", "--allocations", "--jobs", sid,
                        "--format=JobID,State,ExitCode,Reason"])
            if res is not None and res.returncode == 0:
                for line in res.stdout.splitlines():
                    parts = line.split("|")
                    if len(parts) >= 3 and parts[0] == sid:
                        states[sid] = {"state": parts[1].split()[0].rstrip("+"), "exit_code": parts[2],
                                       "reason": parts[3] if len(parts) > 3 else ""}
    return states
