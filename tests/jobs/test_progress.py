
import pytest

from jobs.progress import ProgressWriter, atomic_path, read_progress


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_progress_is_throttled_and_has_an_eta(tmp_path):
    clock = FakeClock()
    writer = ProgressWriter(tmp_path, "j1", min_interval=1.0, clock=clock)
    assert read_progress(tmp_path) is None
    clock.now += 10
    writer.update(epoch=1, total_epochs=4, metrics={"loss": 0.5})
    first = read_progress(tmp_path)
    assert first["epoch"] == 1 and first["fraction"] == 0.25
    assert first["eta_s"] == pytest.approx(30.0)  # 10 s for a quarter -> 30 s to go
    clock.now += 0.5
    writer.update(epoch=2, metrics={"loss": float("nan")})  # within 1 s: kept, not written
    assert read_progress(tmp_path)["epoch"] == 1
    clock.now += 0.6
    writer.update(epoch=2, step=5, total_steps=10)
    second = read_progress(tmp_path)
    assert second["epoch"] == 2 and second["fraction"] == pytest.approx(2.5 / 4)
    assert second["metrics"] == {"loss": None}  # NaN is not JSON
    writer.flush("succeeded")
    assert read_progress(tmp_path)["status"] == "succeeded"


def test_atomic_path_leaves_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "ckpt.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_damaged_progress_file_is_reported_not_raised(tmp_path):
    (tmp_path / "progress.json").write_text("{")
    assert "unreadable" in read_progress(tmp_path)["error"]


def test_a_job_of_stages_has_one_overall_fraction_and_its_stage_s_own(tmp_path):
    from jobs.progress import progress_text
    writer = ProgressWriter(tmp_path, "j", min_interval=0.0, clock=FakeClock())
    writer.update(stage=(2, 5, "ECG fine-tune"), epoch=2, total_epochs=5, force=True)
    assert progress_text(read_progress(tmp_path)) == "48% · step 3/5 ECG fine-tune: 40%"
    writer.update(stage=(3, 5, "CMR fine-tune"), force=True)   # a new stage starts its epochs from zero
    record = read_progress(tmp_path)
    assert "epoch" not in record and progress_text(record) == "60% · step 4/5 CMR fine-tune"
    assert progress_text({"epoch": 4, "total_epochs": 10, "fraction": 0.4}) == "40% · epoch 4/10"
    assert progress_text({"fraction": 0.4, "stage_total": 5, "stage_index": 1}, status="succeeded") == "100%"


def test_progress_file_carries_the_overall_and_stage_fractions(tmp_path):
    clock = FakeClock()
    writer = ProgressWriter(tmp_path, "j", min_interval=0.0, clock=clock)
    writer.update(stage=(1, 4, "baselines"), step=1, total_steps=2, force=True)
    record = read_progress(tmp_path)
    assert record["fraction"] == 0.375 and record["stage_fraction"] == 0.5 and record["stage_name"] == "baselines"
