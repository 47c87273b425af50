import time

import pytest

from cardio_cli.main import main
from jobs.runner import LocalRunner
from cardio_core.config import Workspace


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws").ensure()


def run(ws, *args):
    return main(["--workspace", str(ws.root), "jobs", *args])


def test_submit_wait_list_show_logs(ws, tmp_path, capsys):
    spec = tmp_path / "job.toml"
    spec.write_text('kind = "sleep"\n[params]\nseconds = 0.05\nsteps = 3\n')
    assert run(ws, "submit", str(spec), "--set", "params.steps=2", "--wait") == 0
    out = capsys.readouterr()
    job_id = out.out.split()[0]
    assert f"{job_id}: succeeded" in out.out
    assert "2/2" in out.err  # the tqdm bar
    assert run(ws, "list") == 0
    listing = capsys.readouterr().out
    assert job_id in listing
    # compact columns, the progress in the app's words
    assert listing.split("\n")[0].split() == ["job_id", "kind", "status", "progress", "created"]
    assert "100%" in listing
    assert run(ws, "show", job_id) == 0
    shown = capsys.readouterr().out
    assert "succeeded" in shown and '"steps": 2' in shown
    assert run(ws, "logs", job_id, "-n", "1") == 0
    assert f"job {job_id} succeeded" in capsys.readouterr().out


def test_cancel_and_resume_from_the_command_line(ws, capsys):
    assert run(ws, "submit", "--kind", "sleep", "--set", "params.seconds=0.1", "--set", "params.steps=100") == 0
    job_id = capsys.readouterr().out.split()[0]
    runner = LocalRunner(ws)
    deadline = time.monotonic() + 20
    while not runner.show(job_id)["last_checkpoint"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run(ws, "cancel", job_id, "--grace", "5") == 0
    assert f"{job_id}: cancelled" in capsys.readouterr().out
    assert run(ws, "resume", job_id) == 0
    out = capsys.readouterr().out
    new_id = out.split()[0]
    assert f"resumes {job_id} from " in out and "step_" in out
    assert run(ws, "cancel", new_id) == 0
    assert LocalRunner(ws).status(new_id) == "cancelled"


def test_bad_input_is_a_clear_error_not_a_traceback(ws, tmp_path, capsys):
    assert run(ws, "submit", "--kind", "sleep", "--set", "epochs=0") == 1
    assert "error: epochs: must be an integer in 1..10000, got 0" in capsys.readouterr().err
    assert run(ws, "show", "nope") == 1
    assert "no job 'nope'" in capsys.readouterr().err
    assert run(ws, "slurm", "--kind", "sleep", "--nodes", "1", "--gpus-per-node", "1", "--time", "soon",
               "--partition", "gpu") == 1
    assert "time: must be a SLURM time limit" in capsys.readouterr().err


def test_cardio_cli_has_the_jobs_commands(ws, capsys):
    assert main(["--workspace", str(ws.root), "jobs", "slurm", "--kind", "sleep", "--nodes", "2",
                            "--gpus-per-node", "2", "--time", "1:00:00", "--partition", "gpu",
                            "--no-submit"]) == 0
    out = capsys.readouterr().out
    assert "job.sbatch" in out
    assert main(["--workspace", str(ws.root), "jobs", "list", "--status", "queued"]) == 0
    assert "sleep" in capsys.readouterr().out
