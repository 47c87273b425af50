import os
import stat
import subprocess
from pathlib import Path

import pytest

from cardio_core.config import Workspace
from jobs.runner import JobError, LocalRunner
from jobs.slurm import SlurmOptionError, parse_sbatch_options, render_sbatch, submit_slurm
from jobs.spec import JobSpec
from jobs.worker import JobContext, is_global_zero

OPTIONS = dict(nodes=2, gpus_per_node=4, time="12:00:00", partition="gpu", account="cardio")


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws").ensure()


def fake_tool(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_sbatch_script_asks_one_task_per_gpu_and_runs_the_worker_under_srun(ws):
    spec = JobSpec(kind="sleep")
    script = render_sbatch(spec, job_id="sleep-1", workspace=ws, **OPTIONS)
    opts = parse_sbatch_options(script)
    assert opts["nodes"] == "2"
    assert opts["ntasks-per-node"] == opts["gpus-per-node"] == "4"  # what Lightning's SLURMEnvironment needs
    assert opts["time"] == "12:00:00" and opts["partition"] == "gpu" and opts["account"] == "cardio"
    assert opts["output"] == str(ws.root / "runs" / "sleep-1" / "job.log")
    srun = [ln for ln in script.splitlines() if ln.startswith("srun ")]
    assert len(srun) == 1 and "-m jobs.worker sleep-1 --workspace" in srun[0]
    assert "export CARDIO_NUM_NODES=2" in script and "export CARDIO_DEVICES_PER_NODE=4" in script
    assert "account" not in parse_sbatch_options(render_sbatch(spec, job_id="j", workspace=ws,
                                                               **{**OPTIONS, "account": None}))


@pytest.mark.parametrize("option, value", [
    ("nodes", 0), ("gpus_per_node", -1), ("time", "tomorrow"), ("time", "1:00:00\n#SBATCH --x=y"),
    ("partition", "gpu; rm -rf /"), ("account", "a b"),
])
def test_bad_cluster_options_are_refused(ws, option, value):
    with pytest.raises(SlurmOptionError, match=f"{option}: must be"):
        render_sbatch(JobSpec(kind="sleep"), job_id="j", workspace=ws, **{**OPTIONS, option: value})


def test_submit_slurm_with_and_without_sbatch(ws, tmp_path, monkeypatch):
    runner = LocalRunner(ws, max_concurrent=1)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    job_id, path, slurm_id = submit_slurm(runner, {"kind": "sleep"}, **OPTIONS)
    assert slurm_id is None and path.read_text().startswith("#!/bin/bash")
    assert runner.show(job_id)["launcher"] == "slurm"
    assert runner.poll()["started"] == []  # local schedulers leave SLURM jobs alone
    assert runner.status(job_id) == "queued"

    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "sbatch", 'echo "4242;cluster"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    job_id, _, slurm_id = submit_slurm(runner, {"kind": "sleep"}, **OPTIONS)
    assert slurm_id == "4242" and runner.show(job_id)["slurm_job_id"] == "4242"

    fake_tool(bin_dir, "sbatch", 'echo "sbatch: error: invalid partition" >&2; exit 1\n')
    with pytest.raises(JobError, match="sbatch failed: sbatch: error: invalid partition"):
        submit_slurm(runner, {"kind": "sleep"}, **OPTIONS)
    assert runner.list(status="failed")["error"].str.contains("invalid partition").all()


def test_the_script_runs_the_job_when_srun_starts_it(ws, tmp_path):
    # A stand-in srun that runs the command as rank 0 on this machine (the real cluster: test_slurm_cluster.py).
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "srun", 'export SLURM_PROCID=0\nwhile [ "${1#--}" != "$1" ]; do shift; done\nexec "$@"\n')
    runner = LocalRunner(ws, max_concurrent=1)
    job_id, path, _ = submit_slurm(runner, {"kind": "sleep", "params": {"seconds": 0.01, "steps": 2}},
                                   nodes=1, gpus_per_node=0, time="10", partition="cpu", submit=False)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["bash", str(path)], env=env, check=True, timeout=60, capture_output=True, text=True)
    assert "starting job" in out.stderr  # sbatch would send this to --output, the job log
    assert runner.show(job_id)["status"] == "succeeded"
    assert (runner.job_dir(job_id) / "steps.log").read_text().split() == ["1", "2"]


def test_ranks_and_trainer_arguments_come_from_the_environment(ws, monkeypatch):
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert is_global_zero()
    monkeypatch.setenv("SLURM_PROCID", "5")
    assert not is_global_zero()
    monkeypatch.setenv("CARDIO_NUM_NODES", "2")
    monkeypatch.setenv("CARDIO_DEVICES_PER_NODE", "4")
    ctx = JobContext(workspace=ws, store=None, job_id="j", spec=JobSpec(kind="sleep", device="cuda"),
                     job_dir=ws.runs_dir / "j", resume_from=None, is_global_zero=False)
    assert ctx.trainer_kwargs() == {"accelerator": "gpu", "devices": 4, "num_nodes": 2, "strategy": "ddp"}
    ctx.report_progress(epoch=1, total_epochs=2, force=True)  # other ranks never write progress
    assert not (ws.runs_dir / "j" / "progress.json").exists()
