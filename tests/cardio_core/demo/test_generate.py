"""The demo generator writes readable, deterministic datasets in the real layouts."""
import ast
import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import wfdb

from cardio_core.demo.cmr_synth import bsa_mosteller, cardiac_indices, meets_group_criteria
from cardio_core.demo.generate import _pool_context, generate_demo_datasets
from cardio_core.labels import map_snomed_codes

SIZE = {"chapman": 30, "ptbxl": 12, "acdc": 1}


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    t0 = time.perf_counter()
    info = generate_demo_datasets(root, size=SIZE, seed=7, workers=1)
    info["elapsed"] = time.perf_counter() - t0
    return root, info


def test_counts_and_speed(demo):
    root, info = demo
    assert (info["n_chapman"], info["n_ptbxl"], info["n_acdc"]) == (30, 12, 1)
    assert info["elapsed"] < 30


@pytest.mark.slow
def test_same_bytes_for_same_seed_and_any_worker_count(demo, tmp_path):
    root, _ = demo
    generate_demo_datasets(tmp_path, size=SIZE, seed=7, workers=2)
    assert _digest(tmp_path) == _digest(root)
    other = tmp_path / "other"
    generate_demo_datasets(other, size={"chapman": 5, "ptbxl": 0, "acdc": 0}, seed=8, workers=1)
    a = (root / "chapman" / "RECORDS").read_text()
    assert (other / "chapman" / "RECORDS").exists() and _digest(other / "chapman") != _digest(root / "chapman")
    assert a


def test_chapman_records_read_with_wfdb_and_carry_the_quirks(demo):
    root, _ = demo
    heas = sorted((root / "chapman").glob("WFDBRecords/*/*/*.hea"))
    assert len(heas) == 30 and (root / "chapman" / "ConditionNames_SNOMED-CT.csv").exists()
    ids = [int(h.stem[2:]) for h in heas]
    assert ids != list(range(ids[0], ids[0] + len(ids)))       # IDs have gaps
    ages, dx_lines, n_nan, n_flat, n_unlabelled = [], [], 0, 0, 0
    for h in heas:
        rec = wfdb.rdrecord(str(h.with_suffix("")))
        assert rec.p_signal.shape == (5000, 12) and rec.fs == 500 and rec.byte_offset == [24] * 12
        comments = dict(c.split(": ", 1) for c in rec.comments)
        ages.append(comments["Age"])
        dx_lines.append(comments["Dx"])
        n_nan += int(np.isnan(rec.p_signal).any())
        n_flat += int((np.ptp(np.nan_to_num(rec.p_signal), axis=0) == 0).any())
        n_unlabelled += int(not map_snomed_codes(comments["Dx"].split(","))[0])
        sig = np.nan_to_num(rec.p_signal.T)
        if not np.isnan(rec.p_signal).any() and not (np.ptp(sig, axis=1) == 0).any():
            assert np.abs(sig[2] - (sig[1] - sig[0])).max() < 1.5e-3    # Einthoven survives the files
    assert "NaN" in ages and n_nan == 1 and n_flat == 1 and n_unlabelled == 1
    assert any(d.endswith(",") for d in dx_lines) and any("251238007" in d for d in dx_lines)


def test_ptbxl_tables_and_both_sampling_rates(demo):
    root, _ = demo
    db = pd.read_csv(root / "ptbxl" / "ptbxl_database.csv", index_col="ecg_id")
    assert len(db) == 12 and len(db.columns) == 27
    assert db["patient_id"].duplicated().any()                  # some patients have several records
    scp = pd.read_csv(root / "ptbxl" / "scp_statements.csv", index_col=0)
    for codes in db["scp_codes"]:
        assert set(ast.literal_eval(codes)) <= set(scp.index)
    for _, row in db.head(3).iterrows():
        hr = wfdb.rdrecord(str(root / "ptbxl" / row["filename_hr"]))
        lr = wfdb.rdrecord(str(root / "ptbxl" / row["filename_lr"]))
        assert hr.p_signal.shape == (5000, 12) and lr.p_signal.shape == (1000, 12) and lr.fs == 100
        assert hr.sig_name[3] == "AVR"


def test_acdc_patient_reads_with_nibabel_and_meets_its_group(demo):
    root, _ = demo
    folder = root / "acdc" / "database" / "training" / "patient001"
    cfg = dict(line.split(": ") for line in (folder / "Info.cfg").read_text().splitlines())
    ed, es = int(cfg["ED"]), int(cfg["ES"])
    img = nib.load(folder / "patient001_4d.nii.gz")
    assert img.shape[3] == int(cfg["NbFrame"])
    spacing = tuple(float(z) for z in img.header.get_zooms()[:3])
    gt = {f: np.asarray(nib.load(folder / f"patient001_frame{f:02d}_gt.nii.gz").dataobj) for f in (ed, es)}
    masks = np.zeros(img.shape[:3] + (img.shape[3],), np.uint8)
    masks[..., ed - 1], masks[..., es - 1] = gt[ed], gt[es]
    ix = cardiac_indices(masks, spacing, ed, es, bsa_mosteller(float(cfg["Height"]), float(cfg["Weight"])))
    assert meets_group_criteria(ix, cfg["Group"]), ix


def test_readers_accept_the_demo_data(demo):
    root, _ = demo
    chapman = pytest.importorskip("cardio_core.data.readers.chapman")
    heas = sorted((root / "chapman").glob("WFDBRecords/*/*/*.hea"))
    rec = chapman.read_record(heas[0])
    assert rec.signal.shape == (12, 5000)


def test_bad_size_raises(tmp_path):
    with pytest.raises(ValueError, match="size"):
        generate_demo_datasets(tmp_path, size="huge")
    with pytest.raises(ValueError, match="workers"):
        generate_demo_datasets(tmp_path, size="tiny", workers=0)


def test_script_without_main_guard_can_use_two_workers(tmp_path):
    # With spawn, the workers re-import the calling script and fail at pool start-up.
    script = tmp_path / "make_demo.py"
    script.write_text(
        "from cardio_core.demo.generate import generate_demo_datasets\n"
        f"info = generate_demo_datasets({str(tmp_path / 'out')!r}, size={{'chapman': 4, 'ptbxl': 2, 'acdc': 0}},"
        " seed=1, workers=2)\n"
        "print('n_chapman', info['n_chapman'])\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "n_chapman 4" in done.stdout
    assert len(list((tmp_path / "out" / "ptbxl").glob("records100/*/*.dat"))) == 2


def test_threaded_callers_get_spawn_workers():
    assert _pool_context().get_start_method() in ("fork", "spawn")
    release = threading.Event()
    worker = threading.Thread(target=release.wait)
    worker.start()
    try:
        assert _pool_context().get_start_method() == "spawn"      # forking a threaded process can deadlock
    finally:
        release.set()
        worker.join()


def test_progress_bar_does_not_force_spawn(tmp_path):
    # tqdm's monitor thread would turn this (and any later) pool from fork into spawn. Run in a
    # fresh interpreter: a pytest worker may already hold threads from earlier tests.
    script = f"""
import multiprocessing, threading
import cardio_core.demo.generate as generate
assert "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1
used = []
real = generate._pool_context
generate._pool_context = lambda: used.append(real().get_start_method()) or real()
generate.generate_demo_datasets({str(tmp_path)!r}, size={{"chapman": 4, "ptbxl": 2, "acdc": 0}}, progress=True)
generate.generate_demo_datasets({str(tmp_path)!r}, size={{"chapman": 4, "ptbxl": 2, "acdc": 0}}, progress=False)
print(used, threading.active_count())
assert used == ["fork", "fork"] and threading.active_count() == 1, (used, threading.active_count())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
