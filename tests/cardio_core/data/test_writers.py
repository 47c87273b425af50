"""Exact-format writers: byte identity with the real fixtures, and the format details of each file."""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import scipy.io
import wfdb

from cardio_core.data.writers import (
    CONDITION_NAMES,
    PTBXL_COLUMNS,
    chapman_record_folder,
    write_acdc_patient,
    write_chapman_record,
    write_chapman_tables,
    write_ptbxl_record,
    write_ptbxl_tables,
)

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "physionet"
needs_fixtures = pytest.mark.skipif(not (FIXTURES / "JS01053.hea").exists(), reason="real fixtures absent")


@needs_fixtures
def test_chapman_writer_reproduces_js01053_bytes(tmp_path):
    raw = scipy.io.loadmat(FIXTURES / "JS01053.mat")["val"]
    # The real header uses CRLF line endings.
    hea = write_chapman_record(tmp_path, "JS01053", raw / 1000.0, age=70, sex="Male",
                               dx_codes=["426177001"], line_ending="\r\n")
    assert hea == tmp_path / "JS01053.hea"
    assert (tmp_path / "JS01053.mat").read_bytes() == (FIXTURES / "JS01053.mat").read_bytes()
    assert hea.read_bytes() == (FIXTURES / "JS01053.hea").read_bytes()


@needs_fixtures
def test_ptbxl_writer_reproduces_07004_bytes(tmp_path):
    raw = wfdb.rdrecord(str(FIXTURES / "07004_hr"))
    rel = write_ptbxl_record(tmp_path, 7004, raw.p_signal.T)
    assert rel == "records500/07000/07004_hr"
    assert (tmp_path / f"{rel}.dat").read_bytes() == (FIXTURES / "07004_hr.dat").read_bytes()
    assert (tmp_path / f"{rel}.hea").read_bytes() == (FIXTURES / "07004_hr.hea").read_bytes()


@pytest.mark.parametrize("fs,n", [(500, 5000), (100, 1000)])
def test_ptbxl_writer_matches_wfdb_wrsamp_bytes(tmp_path, fs, n):
    # The writer no longer calls wrsamp (too slow); its files must still be wrsamp's, byte for byte.
    rng = np.random.default_rng(fs)
    sig = rng.normal(0, 0.8, size=(12, n))
    sig[:, :50] += 3.0                           # checksums well past 2^16 -> the unsigned wrap
    sig[3] -= 5.0                                # negative first sample and negative sums
    rel = write_ptbxl_record(tmp_path / "ours", 21, sig, fs=fs)
    stem = rel.rsplit("/", 1)[1]
    ref = tmp_path / "ref"
    ref.mkdir()
    wfdb.wrsamp(stem, fs=fs, units=["mV"] * 12, sig_name=["I", "II", "III", "AVR", "AVL", "AVF",
                                                          "V1", "V2", "V3", "V4", "V5", "V6"],
                p_signal=sig.T.copy(), fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12,
                write_dir=str(ref))
    for ext in (".hea", ".dat"):
        assert (tmp_path / "ours" / f"{rel}{ext}").read_bytes() == (ref / f"{stem}{ext}").read_bytes(), ext


def test_chapman_quantisation_nan_and_checksums(tmp_path):
    sig = np.zeros((12, 5000))
    sig[0, :3] = [0.0014, -0.0016, 40.0]       # rounds to 1, -2; 40 mV clips to 32767
    sig[1, 0] = -40.0                           # clips to -32767, not the invalid value
    sig[2, 5] = np.nan                          # the invalid value -32768
    sig[3] = 0.5                                # 5000 * 500 = 2.5e6 -> wraps in the signed checksum
    hea = write_chapman_record(tmp_path, "JS10765", sig, age=None, sex=None, dx_codes=["164890007", ""])
    val = scipy.io.loadmat(tmp_path / "JS10765.mat")["val"]
    assert val.dtype == np.int16 and val.shape == (12, 5000)
    assert list(val[0, :3]) == [1, -2, 32767] and val[1, 0] == -32767 and val[2, 5] == -32768
    lines = hea.read_text().splitlines()
    assert lines[0] == "JS10765 12 500 5000"
    assert lines[4] == "JS10765.mat 16+24 1000/mV 16 0 500 9632 0 aVR"   # (2.5e6 mod 2^16) signed
    assert lines[1].split()[6] == str(((1 - 2 + 32767) & 0xFFFF ^ 0x8000) - 0x8000)
    assert lines[13:] == ["#Age: NaN", "#Sex: Unknown", "#Dx: 164890007,", "#Rx: Unknown", "#Hx: Unknown",
                          "#Sx: Unknown"]
    rec = wfdb.rdrecord(str(tmp_path / "JS10765"))
    assert np.isnan(rec.p_signal[5, 2]) and rec.p_signal[2, 0] == pytest.approx(32.767)


def test_chapman_writer_validates(tmp_path):
    with pytest.raises(ValueError, match=r"\(12, n_samples\)"):
        write_chapman_record(tmp_path, "JS00001", np.zeros((8, 5000)), age=1, sex="Male", dx_codes=["1"])
    with pytest.raises(ValueError, match="line_ending"):
        write_chapman_record(tmp_path, "JS00001", np.zeros((12, 10)), age=1, sex="Male", dx_codes=["1"],
                             line_ending="\r")


def test_chapman_record_folder_rule():
    assert chapman_record_folder("JS00001") == "WFDBRecords/01/010"
    assert chapman_record_folder("JS01053") == "WFDBRecords/02/020"
    assert chapman_record_folder("JS02292") == "WFDBRecords/03/032"
    assert chapman_record_folder("JS45551") == "WFDBRecords/46/465"
    with pytest.raises(ValueError):
        chapman_record_folder("JSxxxxx")


def test_chapman_tables(tmp_path):
    rels = ["WFDBRecords/01/010/JS00002", "WFDBRecords/01/010/JS00001", "WFDBRecords/02/020/JS01053"]
    write_chapman_tables(tmp_path, rels)
    raw = (tmp_path / "ConditionNames_SNOMED-CT.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfAcronym Name,Full Name,Snomed_CT\n")
    names = pd.read_csv(tmp_path / "ConditionNames_SNOMED-CT.csv", encoding="utf-8-sig", dtype=str)
    assert len(names) == 63 == len(CONDITION_NAMES) and names["Snomed_CT"].nunique() == 55
    assert names.set_index("Acronym Name").loc["AF", "Snomed_CT"] == "164890007"   # AF = flutter here
    assert (tmp_path / "RECORDS").read_text() == "WFDBRecords/01/010/\nWFDBRecords/02/020/\n"
    assert (tmp_path / "WFDBRecords/01/010/RECORDS").read_text() == "JS00001\nJS00002\n"
    assert (tmp_path / "WFDBRecords/02/020/RECORDS").read_text() == "JS01053\n"


def test_ptbxl_100hz_record(tmp_path):
    sig = np.round(np.random.default_rng(0).normal(0, 0.3, size=(12, 1000)), 3)
    rel = write_ptbxl_record(tmp_path, 21837, sig, fs=100)
    assert rel == "records100/21000/21837_lr"
    lines = (tmp_path / f"{rel}.hea").read_text().splitlines()
    assert lines[0] == "21837_lr 12 100 1000" and lines[4].endswith(" AVR") and "1000.0(0)/mV" in lines[1]
    assert (tmp_path / f"{rel}.dat").stat().st_size == 24_000
    np.testing.assert_allclose(wfdb.rdrecord(str(tmp_path / rel)).p_signal.T, sig, atol=1e-9)
    with pytest.raises(ValueError, match="100 or 500 Hz"):
        write_ptbxl_record(tmp_path, 1, sig, fs=250)


def test_ptbxl_tables_formats(tmp_path):
    db = pd.DataFrame(dict(ecg_id=[2, 1], patient_id=[13243, 15709], age=[300, 56], sex=[0, 1],
                           device=["AT-6     6", "CS-12   E"], report=["a, b", "x"],
                           scp_codes=[{"AFLT": 0}, {"NORM": 100.0, "SR": 0.0}], strat_fold=[10, 3]))
    write_ptbxl_tables(tmp_path, db)
    lines = (tmp_path / "ptbxl_database.csv").read_bytes().decode().split("\n")
    assert lines[0].split(",") == list(PTBXL_COLUMNS)
    assert lines[1] == ("1,15709.0,56.0,1,,,,,CS-12   E,,x,\"{'NORM': 100.0, 'SR': 0.0}\",,,,,,,,,,,,,,3,"
                        "records100/00000/00001_lr,records500/00000/00001_hr")
    assert lines[2].startswith("2,13243.0,300.0,0,,,,,AT-6     6,,\"a, b\",{'AFLT': 0.0},")
    assert lines[3] == ""    # LF-terminated, no CR
    with pytest.raises(ValueError, match="columns that PTB-XL does not"):
        write_ptbxl_tables(tmp_path, db.assign(bogus=1))


def test_acdc_info_and_zooms(tmp_path):
    vol = np.random.default_rng(0).uniform(0, 100, size=(8, 9, 2, 5))
    folder = write_acdc_patient(tmp_path / "patient150", "patient150", vol, (1.37, 1.37, 10.0), ed=5, es=5,
                                group=None, height=170.25, weight=60, write_citation=False)
    assert (folder / "Info.cfg").read_text() == "ED: 5\nES: 5\nHeight: 170.2\nNbFrame: 5\nWeight: 60.0\n"
    assert sorted(p.name for p in folder.iterdir()) == ["Info.cfg", "patient150_4d.nii.gz",
                                                         "patient150_frame05.nii.gz"]
    img = nib.load(folder / "patient150_4d.nii.gz")
    assert img.shape == (8, 9, 2, 5) and img.header.get_zooms()[:3] == pytest.approx((1.37, 1.37, 10.0))
    frame = nib.load(folder / "patient150_frame05.nii.gz")
    assert frame.shape == (8, 9, 2)
    np.testing.assert_array_equal(np.asarray(frame.dataobj), np.round(vol[..., 4]).astype(np.int16))
    with pytest.raises(ValueError, match="mask for frame 5"):
        write_acdc_patient(tmp_path / "p", "patient150", vol, (1.0, 1.0, 1.0), ed=5, es=5, group="RV",
                           height=170, weight=60, masks={5: np.zeros((8, 9, 3))})
