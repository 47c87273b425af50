"""Run a job on a SLURM cluster with multi-node DDP.

The script starts one task per GPU with `srun`; every task runs the same
`python -m jobs.worker JOB_ID`. Lightning's SLURMEnvironment reads the ranks from the
SLURM variables srun sets, and JobContext.trainer_kwargs() turns CARDIO_NUM_NODES /
CARDIO_DEVICES_PER_NODE into Trainer(num_nodes=..., devices=..., strategy="ddp")
(Lightning requires --ntasks-per-node to equal the devices per node). Only rank zero
writes the store and progress.json; the cluster nodes must see the same workspace
folder (a shared file system), since the worker reads its spec from the store there.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from cardio_core.config import Workspace
from cardio_core.errors import CardioError

from jobs.runner import LOG_FILE, PROJECT_ROOT, JobError, LocalRunner
from jobs.spec import JobSpec

SCRIPT_FILE = "job.sbatch"
_SLURM_NAME = re.compile(r"^[A-Za-z0-9_.,+-]{1,100}$")
# minutes | MM:SS | HH:MM:SS | D-HH | D-HH:MM | D-HH:MM:SS
_SLURM_TIME = re.compile(r"^(\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+|\d+-\d+:\d{2}|\d+-\d+:\d{2}:\d{2})$")


class SlurmOptionError(CardioError, ValueError):
    """A cluster option (nodes, time, partition, ...) that sbatch would not accept."""


def _check(name: str, value, ok: bool, allowed: str):
    if not ok:
        raise SlurmOptionError(f"{name}: must be {allowed}, got {value!r}")
    return value


def render_sbatch(spec: JobSpec, *, job_id: str, workspace: Workspace, nodes: int, gpus_per_node: int,
                  time: str, partition: str, account: str | None = None, cpus_per_task: int = 8,
                  python: str | None = None) -> str:
    """The sbatch script that runs `job_id` (already in the store) with DDP over nodes x GPUs."""
    if not isinstance(spec, JobSpec):
        raise TypeError("spec: expected a JobSpec")
    _check("nodes", nodes, isinstance(nodes, int) and not isinstance(nodes, bool) and 1 <= nodes <= 4096,
           "an integer in 1..4096")
    _check("gpus_per_node", gpus_per_node,
           isinstance(gpus_per_node, int) and not isinstance(gpus_per_node, bool) and 0 <= gpus_per_node <= 64,
           "an integer in 0..64")
    _check("cpus_per_task", cpus_per_task,
           isinstance(cpus_per_task, int) and not isinstance(cpus_per_task, bool) and 1 <= cpus_per_task <= 1024,
           "an integer in 1..1024")
    _check("time", time, isinstance(time, str) and bool(_SLURM_TIME.match(time)),
           "a SLURM time limit such as 90, 12:00:00 or 2-00:00:00")
    _check("partition", partition, isinstance(partition, str) and bool(_SLURM_NAME.match(partition)),
           "a partition name (letters, digits, _ . , + -)")
    if account is not None:
        _check("account", account, isinstance(account, str) and bool(_SLURM_NAME.match(account)),
               "an account name (letters, digits, _ . , + -)")
    _check("job_id", job_id, isinstance(job_id, str) and bool(_SLURM_NAME.match(job_id)), "a job id")
    if spec.device == "cpu" and gpus_per_node:
        raise SlurmOptionError("gpus_per_node: the spec asks for device 'cpu'; use gpus_per_node=0")
    if gpus_per_node and spec.devices not in (1, gpus_per_node):
        raise SlurmOptionError(f"devices: the spec asks for {spec.devices} per node but gpus_per_node is "
                               f"{gpus_per_node}; one task per GPU")
    # one task (DDP rank) per GPU; on CPU nodes the spec's `devices` CPU processes (gloo)
    tasks_per_node = gpus_per_node or spec.devices
    root = workspace.root.resolve()
    job_dir = root / "runs" / job_id
    python = python or sys.executable
    q = shlex.quote
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name=cardio-{job_id}",
        f"#SBATCH --nodes={nodes}",
        f"#SBATCH --ntasks-per-node={tasks_per_node}",
    ]
    if gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={gpus_per_node}")
    lines += [
        f"#SBATCH --cpus-per-task={cpus_per_task}",
        f"#SBATCH --time={time}",
        f"#SBATCH --partition={partition}",
    ]
    if account:
        lines.append(f"#SBATCH --account={account}")
    lines += [
        f"#SBATCH --output={job_dir / LOG_FILE}",
        "#SBATCH --open-mode=append",
        "",
        f"# CardioScope job {job_id} ({spec.kind}): {nodes} node(s) x {tasks_per_node} task(s), DDP.",
        "set -euo pipefail",
        f"export CARDIO_WORKSPACE={q(str(root))}",
        f"export CARDIO_NUM_NODES={nodes}",
        f"export CARDIO_DEVICES_PER_NODE={tasks_per_node}",
        f"export PYTHONPATH={q(str(PROJECT_ROOT))}${{PYTHONPATH:+:$PYTHONPATH}}",
        "export PYTHONUNBUFFERED=1",
        f"cd {q(str(job_dir))}",
        # --kill-on-bad-exit: one rank dying ends the others instead of leaving them waiting at a barrier
        f"srun --kill-on-bad-exit=1 {q(python)} -m jobs.worker {q(job_id)} --workspace {q(str(root))}",
        "",
    ]
    return "\n".join(lines)


def parse_sbatch_options(script: str) -> dict[str, str]:
    """The #SBATCH --key=value options of a script, as a dict."""
    options = {}
    for line in script.splitlines():
        if line.startswith("#SBATCH "):
            key, _, value = line[len("#SBATCH "):].strip().partition("=")
            options[key.lstrip("-")] = value
    return options


def submit_slurm(runner: LocalRunner, spec: JobSpec | dict, *, nodes: int, gpus_per_node: int, time: str,
                 partition: str, account: str | None = None, cpus_per_task: int = 8,
                 submit: bool = True) -> tuple[str, Path, str | None]:
    """Queue a SLURM job, write runs/<job>/job.sbatch and, when sbatch exists and `submit`,
    hand it to sbatch. Returns (job_id, script path, SLURM job id or None)."""
    spec = spec if isinstance(spec, JobSpec) else JobSpec.from_dict(spec)
    # Render once before queueing so bad cluster options leave no job behind.
    render_sbatch(spec, job_id="check", workspace=runner.workspace, nodes=nodes, gpus_per_node=gpus_per_node,
                  time=time, partition=partition, account=account, cpus_per_task=cpus_per_task)
    job_id = runner.submit(spec, start=False, launcher="slurm")
    script = render_sbatch(spec, job_id=job_id, workspace=runner.workspace, nodes=nodes,
                           gpus_per_node=gpus_per_node, time=time, partition=partition, account=account,
                           cpus_per_task=cpus_per_task)
    path = runner.job_dir(job_id) / SCRIPT_FILE
    path.write_text(script)
    sbatch = shutil.which("sbatch")
    if not submit or sbatch is None:
        return job_id, path, None
    res = subprocess.run([sbatch, "--parsable", str(path)], capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        problem = (res.stderr or res.stdout).strip().splitlines()[-1:] or [f"exit code {res.returncode}"]
        with runner.store.write() as con:
            con.execute("UPDATE jobs SET status = 'failed', error = ?, finished_at = current_timestamp "
                        "WHERE job_id = ?", [f"sbatch failed: {problem[0]}", job_id])
        raise JobError(f"{path}: sbatch failed: {problem[0]}")
    slurm_id = res.stdout.strip().split(";")[0]
    with runner.store.write() as con:
        con.execute("UPDATE jobs SET slurm_job_id = ? WHERE job_id = ?", [slurm_id, job_id])
    return job_id, path, slurm_id
