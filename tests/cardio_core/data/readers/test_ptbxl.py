"""PTB-XL reader on the real 07004_hr record and on written tables with the known quirks."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from cardio_core.data.readers import ptbxl
from cardio_core.data.writers import PTBXL_COLUMNS, write_ptbxl_record, write_ptbxl_tables
from cardio_core.errors import DatasetError, RecordError

FIXTURES = Path(__file__).resolve().parents[5] / "shared" / "fixtures" / "physionet"
needs_fixtures = pytest.mark.skipif(not (FIXTURES / "07004_hr.hea").exists(), reason="real fixtures absent")


def _db(rows):
    return pd.DataFrame(rows)


def _signal(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 0.01, size=(12, n)), axis=1)


@pytest.fixture
def small_ptbxl(tmp_path):
    """Five records of three patients; ages 300 and empty; sexes 0/1."""
    rows = [
        dict(ecg_id=1, patient_id=15709, age=56, sex=1, scp_codes={"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}),
        dict(ecg_id=2, patient_id=13243, age=300, sex=0, scp_codes={"AFLT": 0.0, "IMI": 35.0}),
        dict(ecg_id=3, patient_id=13243, age=np.nan, sex=0, scp_codes={"STACH": 0.0, "SARRH": 0.0}),
        dict(ecg_id=1005, patient_id=13243, age=70, sex=0, scp_codes={"BIGU": 0.0}),
        dict(ecg_id=1007, patient_id=20372, age=40, sex=1, scp_codes={"SBRAD": 0.0, "NDT": 50.0}),
    ]
    for r in rows:
        write_ptbxl_record(tmp_path, r["ecg_id"], _signal(seed=r["ecg_id"]))
    write_ptbxl_tables(tmp_path, _db(rows))
    return tmp_path


@needs_fixtures
def test_real_record_07004(tmp_path):
    folder = tmp_path / "records500" / "07000"
    folder.mkdir(parents=True)
    for ext in ("hea", "dat"):
        shutil.copy(FIXTURES / f"07004_hr.{ext}", folder / f"07004_hr.{ext}")
    write_ptbxl_tables(tmp_path, _db([dict(ecg_id=7004, patient_id=9931, age=62, sex=1,
                                           scp_codes={"NORM": 100.0, "SR": 0.0})]))
    rec = ptbxl.read_record(tmp_path, 7004)
    assert rec.record_id == "7004" and rec.dataset == "ptbxl" and rec.fs == 500
    assert rec.signal.shape == (12, 5000) and rec.signal.dtype == np.float32
    assert rec.labels == ["SR"] and rec.sex == "F" and rec.age == 62 and rec.patient_id == "9931"
    assert rec.extra["scp_codes"] == {"NORM": 100.0, "SR": 0.0}
    raw = wfdb.rdrecord(str(FIXTURES / "07004_hr"))
    np.testing.assert_allclose(rec.signal, raw.p_signal.T, atol=1e-6)   # AVR/AVL/AVF matched
    assert np.abs(rec.signal[2] - (rec.signal[1] - rec.signal[0])).max() <= 0.002 + 1e-6
    assert rec.warnings == []


def test_read_database(small_ptbxl):
    db, problems = ptbxl.read_database(small_ptbxl)
    assert problems == []
    assert list(db.index) == [1, 2, 3, 1005, 1007] and db.index.dtype.kind == "i"
    assert db.loc[2, "age"] == 90 and bool(db.loc[2, "age_over_89"]) and np.isnan(db.loc[3, "age"])
    assert db.loc[1, "sex"] == "F" and db.loc[2, "sex"] == "M"
    assert db.loc[1, "scp_codes"] == {"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}   # all statements kept
    assert db.loc[2, "rhythm_labels"] == ["AFIB"]
    assert db.loc[3, "rhythm_labels"] == ["SR", "GSVT"]
    assert db.loc[1005, "rhythm_labels"] == []          # BIGU has no counterpart
    assert db.loc[1007, "rhythm_labels"] == ["SB"]


def test_read_records_from_two_folders(small_ptbxl):
    rec = ptbxl.read_record(small_ptbxl, 1005)
    assert rec.source_path.endswith("records500/01000/01005_hr.hea")
    np.testing.assert_allclose(rec.signal, np.round(_signal(seed=1005) * 1000) / 1000, atol=1e-6)
    db, _ = ptbxl.read_database(small_ptbxl)
    by_row = ptbxl.read_record(small_ptbxl, db.loc[3])
    assert by_row.record_id == "3" and by_row.age is None and by_row.labels == ["SR", "GSVT"]
    assert any("age missing" in w for w in by_row.warnings)


def test_select_one_per_patient(small_ptbxl):
    db, _ = ptbxl.read_database(small_ptbxl)
    picks = {tuple(ptbxl.select_one_per_patient(db, seed=s).index) for s in range(20)}
    for chosen in picks:
        assert len(chosen) == 3 and {1, 1007} <= set(chosen)
        assert len(set(chosen) & {2, 3, 1005}) == 1
    assert len(picks) > 1   # the draw depends on the seed
    a = ptbxl.select_one_per_patient(db, seed=7)
    b = ptbxl.select_one_per_patient(db.iloc[::-1], seed=7)
    assert list(a.index) == list(b.index)


def test_database_layout_and_scp_statements(small_ptbxl):
    header = (small_ptbxl / "ptbxl_database.csv").read_text().splitlines()[0]
    assert tuple(header.split(",")) == PTBXL_COLUMNS and len(PTBXL_COLUMNS) == 28
    row = (small_ptbxl / "ptbxl_database.csv").read_text().splitlines()[1]
    assert row.startswith("1,15709.0,56.0,1,") and "\"{'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}\"" in row
    assert row.endswith("records100/00000/00001_lr,records500/00000/00001_hr")
    first = (small_ptbxl / "scp_statements.csv").read_bytes().split(b"\r\n")[0]
    assert first.startswith(b",description,diagnostic,form,rhythm,") and first.endswith(b"DICOM Code")
    st = ptbxl.read_scp_statements(small_ptbxl)
    rhythm = set(st.index[st["rhythm"] == 1.0])
    assert rhythm == {"SR", "AFIB", "STACH", "SARRH", "SBRAD", "PACE", "SVARR", "BIGU", "AFLT", "SVTAC",
                      "PSVT", "TRIGU"}
    assert {"NORM", "IMI", "ASMI", "LVH", "NDT", "NST_", "ISC_", "IRBBB", "CRBBB", "CLBBB", "LAFB", "1AVB",
            "WPW", "LVOLT"} <= set(st.index)


def test_malformed_scp_codes_is_a_problem_not_a_crash(small_ptbxl):
    csv = small_ptbxl / "ptbxl_database.csv"
    csv.write_text(csv.read_text().replace("{'SBRAD': 0.0, 'NDT': 50.0}", "{'SBRAD': 0.0, 'NDT'"))
    db, problems = ptbxl.read_database(small_ptbxl)
    assert 1007 not in db.index and len(db) == 4
    assert len(problems) == 1 and problems[0].path == str(csv)
    assert "ecg_id 1007: malformed scp_codes" in problems[0].problem
    with pytest.raises(RecordError, match="ecg_id 1007 is not in"):
        ptbxl.read_record(small_ptbxl, 1007)


def test_record_errors(small_ptbxl):
    hea = small_ptbxl / "records500/00000/00002_hr.hea"
    (small_ptbxl / "records500/00000/00002_hr.dat").write_bytes(b"\0" * 1000)
    with pytest.raises(RecordError) as info:
        ptbxl.read_record(small_ptbxl, 2)
    assert info.value.path == str(hea) and "length mismatch" in info.value.problem
    hea.unlink()
    with pytest.raises(RecordError) as info:
        ptbxl.read_record(small_ptbxl, 2)
    assert info.value.path == str(hea) and "is missing" in info.value.problem
    short = small_ptbxl / "records500/00000/00003_hr"
    wfdb.wrsamp(short.name, fs=500, units=["mV"] * 12, sig_name=["I", "II", "III", "AVR", "AVL", "AVF", "V1",
                "V2", "V3", "V4", "V5", "V6"], p_signal=np.zeros((4000, 12)), fmt=["16"] * 12,
                adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(short.parent))
    with pytest.raises(RecordError, match="record is 8.0 s; 10 s required"):
        ptbxl.read_record(small_ptbxl, 3)


def test_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        ptbxl.read_database(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no ptbxl_database.csv"):
        ptbxl.read_database(tmp_path)
    (tmp_path / "ptbxl_database.csv").write_text("ecg_id,age\n1,50\n")
    with pytest.raises(DatasetError, match="missing columns"):
        ptbxl.read_database(tmp_path)


def test_top_level_download_folder_is_accepted(small_ptbxl, tmp_path_factory):
    outer = tmp_path_factory.mktemp("outer")
    shutil.copytree(small_ptbxl, outer / ptbxl.TOP_LEVEL_NAMES[0])
    db, _ = ptbxl.read_database(outer)
    assert len(db) == 5
    assert ptbxl.read_record(outer, 1).labels == ["SR"]
