"""Jobs on a real SLURM cluster: munged, slurmctld and slurmd from Debian's packages, started on localhost
for this file (jobs/slurm_testing.py), fed through sbatch; srun starts the workers.

`./run test` installs slurm-wlm and munge when they are missing (as root with apt-get); where they
cannot be installed these tests are skipped, saying which programs are missing. No fake sbatch.
"""
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from cardio_core.config import Workspace
from cardio_core.store import Store
from jobs.processes import SLURM_RUNNING, SLURM_WAITING
from jobs.slurm_testing import ClusterUnavailable, LocalSlurmCluster, missing_programs

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = missing_programs()
    if missing:
        pytest.skip(f"SLURM is not installed here (missing {', '.join(missing)}; Debian packages slurm-wlm "
                    "and munge, which ./run test installs as root)")
    root = Path("/tmp") / f"cardio-slurm-{os.getpid()}"   # short: munge's socket path has a length limit
    c = LocalSlurmCluster(root, cpus=2)
    try:
        c.start()
    except ClusterUnavailable as exc:
        pytest.fail(f"the SLURM cluster did not start: {exc}")
    yield c
    c.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def slurm_ws(cluster, tmp_path, monkeypatch):
    for key, value in cluster.env().items():
        monkeypatch.setenv(key, value)
    ws = Workspace(tmp_path / "ws").ensure()
    monkeypatch.setenv("CARDIO_WORKSPACE", str(ws.root))
    return ws


def _submit(runner, spec, **options):
    from jobs.slurm import submit_slurm
    opts = {"nodes": 1, "gpus_per_node": 0, "time": "10:00", "partition": "debug", "cpus_per_task": 1, **options}
    job_id, script, slurm_id = submit_slurm(runner, spec, **opts)
    assert slurm_id and slurm_id.isdigit(), slurm_id
    return job_id, slurm_id


def _until(runner, job_id, predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runner.poll()
        row = runner.show(job_id)
        if predicate(row):
            return row
        time.sleep(0.3)
    pytest.fail(f"{job_id}: timed out; last {row['status']} / SLURM {row.get('slurm_state')} / {row.get('error')}")


def _finished_in_slurm(row):
    # The worker records its own end before srun and slurmd have torn the step down, so the Jobs table can
    # say "succeeded" while SLURM still says RUNNING for a moment; wait for SLURM's own final state too.
    return row["status"] in ("failed", "succeeded", "cancelled") and \
        row.get("slurm_state") not in (None, *SLURM_WAITING, *SLURM_RUNNING)


def _sleep(seconds=0.5, steps=80, **params):
    return {"kind": "sleep", "device": "cpu", "params": {"seconds": seconds, "steps": steps, **params}}


def test_states_cancel_from_the_app_and_a_job_killed_on_the_node(slurm_ws, monkeypatch):
    from streamlit.testing.v1 import AppTest
    from jobs.runner import LocalRunner

    runner = LocalRunner(slurm_ws)
    # A takes both CPUs of the node, so B waits: PENDING in SLURM, queued in the Jobs table
    a, a_slurm = _submit(runner, _sleep(), cpus_per_task=2)
    row = _until(runner, a, lambda r: r["status"] == "running" and r["pid"])
    assert row["slurm_state"] == "RUNNING" and row["host"]
    b, b_slurm = _submit(runner, _sleep(), cpus_per_task=2)
    row = _until(runner, b, lambda r: r.get("slurm_state") == "PENDING")
    assert row["status"] == "queued"

    # cancel B from the app's Jobs page: its Cancel button calls scancel
    monkeypatch.setenv("CARDIO_APP_SCHEDULER", "0")
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=30)
    at.switch_page(str(REPO / "pages" / "jobs.py"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key=f"cancel-{b}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    row = _until(runner, b, lambda r: r.get("slurm_state") == "CANCELLED")
    assert row["status"] == "cancelled"

    # A's log tail comes from the file sbatch writes (--output=runs/<job>/job.log)
    from jobs.progress import log_tail
    tail = log_tail(runner.show(a)["log_path"], 20)
    assert f"SLURM job {a_slurm}" in tail and f"starting job {a}" in tail, tail

    # kill A's worker on the node: srun sees its task killed, SLURM ends the job FAILED, the table says so
    os.kill(int(runner.show(a)["pid"]), signal.SIGKILL)
    row = _until(runner, a, lambda r: r["status"] != "running")
    assert row["status"] == "failed", row
    assert f"SLURM job {a_slurm} FAILED" in row["error"], row["error"]

    # a job that fails in its own code, and one that completes
    c, _ = _submit(runner, _sleep(0.05, 3, fail=True, fail_at=2))
    d, _ = _submit(runner, _sleep(0.05, 3))
    assert _until(runner, c, lambda r: r["status"] in ("failed", "succeeded"))["status"] == "failed"
    row = _until(runner, d, _finished_in_slurm)
    assert row["status"] == "succeeded" and row["slurm_state"] == "COMPLETED"


def test_ddp_finetune_through_sbatch_and_srun(slurm_ws, demo_root):
    """A fine-tune with 2 DDP ranks on CPU: sbatch -> srun starts 2 workers -> Lightning's SLURM environment."""
    from cardio_core.data.ingest import ingest_dataset
    from jobs.runner import LocalRunner

    store = Store(slurm_ws.db_path)
    ingest_dataset(store, slurm_ws, "chapman", demo_root / "chapman", workers=1)
    runner = LocalRunner(slurm_ws, store)
    spec = {"kind": "finetune", "modality": "ecg", "dataset": "chapman", "recipe": "demo_ecg", "epochs": 1,
            "checkpoint_every": 1, "device": "cpu", "devices": 2, "overrides": {"batch_size": 8}}
    job, slurm_id = _submit(runner, spec)
    script = (slurm_ws.runs_dir / job / "job.sbatch").read_text()
    assert "#SBATCH --ntasks-per-node=2" in script and "srun " in script
    row = _until(runner, job, _finished_in_slurm, timeout=600)
    log = Path(row["log_path"]).read_text()
    assert row["status"] == "succeeded", (row.get("error"), log[-3000:])
    assert row["slurm_state"] == "COMPLETED"
    assert f"SLURM job {slurm_id} step 0 task 1 of 2" in log                 # srun started both ranks
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in log   # Lightning's DDP over them
    assert store.query("SELECT epoch FROM checkpoints WHERE run_id = ?", [job]) == [(1,)]
    assert sorted(p.name for p in (slurm_ws.runs_dir / job / "checkpoints").iterdir()) == \
        ["epoch_0001.pth", "resume.ckpt"]
