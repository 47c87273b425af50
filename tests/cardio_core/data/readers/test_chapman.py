"""Chapman reader on the real JS01053 fixture and on written records with each known quirk."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from cardio_core.data.readers import chapman
from cardio_core.data.writers import chapman_record_folder, write_chapman_record, write_chapman_tables
from cardio_core.errors import DatasetError, RecordError

FIXTURES = Path(__file__).resolve().parents[5] / "shared" / "fixtures" / "physionet"
needs_fixtures = pytest.mark.skipif(not (FIXTURES / "JS01053.hea").exists(), reason="real fixtures absent")


def _signal(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(0, 0.01, size=(12, n)), axis=1)


def _write(folder, rid="JS00001", sig=None, **kw):
    kw.setdefault("age", 55)
    kw.setdefault("sex", "Female")
    kw.setdefault("dx_codes", ["426783006"])
    return write_chapman_record(folder, rid, _signal() if sig is None else sig, **kw)


def _error(hea) -> RecordError:
    with pytest.raises(RecordError) as info:
        chapman.read_record(hea)
    assert info.value.path == str(hea)
    return info.value


@needs_fixtures
def test_real_record_js01053():
    hea = FIXTURES / "JS01053.hea"
    head = chapman.read_header(hea)
    assert head["record_id"] == "JS01053" and head["fs"] == 500 and head["n_samples"] == 5000
    assert head["age"] == 70 and head["sex"] == "M" and head["labels"] == ["SB"]
    assert head["codes"] == ["426177001"] and head["unmapped_codes"] == []
    rec = chapman.read_record(hea)
    assert rec.signal.shape == (12, 5000) and rec.signal.dtype == np.float32
    assert rec.fs == 500 and rec.labels == ["SB"] and rec.age == 70 and rec.sex == "M"
    assert rec.warnings == []
    # Einthoven: III = II - I to within the 1 uV quantisation of each lead.
    assert np.abs(rec.signal[2] - (rec.signal[1] - rec.signal[0])).max() <= 0.002 + 1e-6
    raw = scipy.io.loadmat(FIXTURES / "JS01053.mat")["val"]
    np.testing.assert_allclose(rec.signal, raw / 1000.0, atol=1e-6)


def test_list_records_layouts(tmp_path):
    rels = []
    for rid in ("JS00001", "JS00150", "JS01053"):
        folder = tmp_path / chapman_record_folder(rid)
        _write(folder, rid)
        rels.append(f"{chapman_record_folder(rid)}/{rid}")
    write_chapman_tables(tmp_path, rels)
    found = chapman.list_records(tmp_path)
    assert [p.stem for p in found] == ["JS00001", "JS00150", "JS01053"]
    assert chapman.list_records(tmp_path / "WFDBRecords") == found
    # The download's own top-level folder name above WFDBRecords/ is accepted.
    outer = tmp_path / "outer"
    shutil.copytree(tmp_path / "WFDBRecords", outer / chapman.TOP_LEVEL_NAMES[1] / "WFDBRecords")
    assert [p.stem for p in chapman.list_records(outer)] == ["JS00001", "JS00150", "JS01053"]


def test_list_records_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        chapman.list_records(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no WFDBRecords"):
        chapman.list_records(tmp_path)
    (tmp_path / "WFDBRecords" / "01" / "010").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no .hea files"):
        chapman.list_records(tmp_path)


def test_round_trip_and_quirks(tmp_path):
    sig = _signal()
    sig[7] = 0.0                  # flat V2
    sig[9, 100:110] = np.nan      # -32768 invalid samples in V4
    hea = _write(tmp_path, sig=sig, age=None, sex=None,
                 dx_codes=["164890007", "55827005", "", "59118001", "6180003"])
    text = hea.read_text()
    assert "#Age: NaN" in text and "#Sex: Unknown" in text
    rec = chapman.read_record(hea)
    assert rec.labels == ["AFIB", "LVH"]
    assert rec.codes == ["164890007", "55827005", "59118001", "6180003"]
    assert rec.age is None and rec.sex is None
    assert np.isnan(rec.signal[9, 100:110]).all() and np.isnan(rec.signal).sum() == 10
    finite = ~np.isnan(sig)
    np.testing.assert_allclose(rec.signal[finite], np.round(sig[finite] * 1000) / 1000, atol=1e-6)
    joined = " | ".join(rec.warnings)
    for needle in ("age missing", "sex missing", "NaN) samples in leads V4", "flat lead(s): V2",
                   "59118001, 6180003"):
        assert needle in joined


def test_dx_quirks_and_crlf(tmp_path):
    hea = _write(tmp_path, line_ending="\r\n", dx_codes=["426177001", "", "164934002", ""])
    assert hea.read_bytes().count(b"\r\n") == 19
    hea.write_bytes(hea.read_bytes().replace(b"#Age:", b"# Age:"))
    head = chapman.read_header(hea)
    assert head["codes"] == ["426177001", "164934002"] and head["labels"] == ["SB", "STTA"]
    assert head["age"] == 55 and head["sex"] == "F"


def test_no_mapped_code_is_not_an_error(tmp_path):
    rec = chapman.read_record(_write(tmp_path, dx_codes=["59118001"]))
    assert rec.labels == [] and rec.codes == ["59118001"]


@pytest.mark.parametrize("dx_line, problem", [
    (None, "no #Dx line"),
    ("#Dx: ,,", "#Dx line is empty"),
    ("#Dx: 426177001,SB", "malformed #Dx: 'SB'"),
])
def test_missing_or_malformed_dx_is_an_error(tmp_path, dx_line, problem):
    hea = _write(tmp_path)
    lines = [ln for ln in hea.read_text().splitlines() if not ln.startswith("#Dx")]
    if dx_line:
        lines.append(dx_line)
    hea.write_text("\n".join(lines) + "\n")
    assert problem in _error(hea).problem
    with pytest.raises(RecordError, match=problem.replace("(", r"\(")):
        chapman.read_header(hea)


@pytest.mark.parametrize("old, new, warning", [
    ("#Age: 55", "#Age: fifty", "malformed #Age: 'fifty'"),
    ("#Age: 55", "", "no #Age line"),
    ("#Sex: Female", "#Sex: X", "malformed #Sex: 'X'"),
    ("#Sex: Female", "", "no #Sex line"),
])
def test_malformed_demographics_warn(tmp_path, old, new, warning):
    hea = _write(tmp_path)
    hea.write_text(hea.read_text().replace(old, new))
    rec = chapman.read_record(hea)
    assert any(warning in w for w in rec.warnings)
    assert (rec.age is None) if "Age" in old else (rec.sex is None)


def test_missing_mat(tmp_path):
    hea = _write(tmp_path)
    (tmp_path / "JS00001.mat").unlink()
    err = _error(hea)
    assert "JS00001.mat is missing" in err.problem and "JS00001.hea" in str(err)


@pytest.mark.parametrize("keep", [0, 24, 50_000])
def test_truncated_mat(tmp_path, keep):
    hea = _write(tmp_path)
    mat = tmp_path / "JS00001.mat"
    mat.write_bytes(mat.read_bytes()[:keep])
    assert "length mismatch" in _error(hea).problem


def test_header_longer_than_data(tmp_path):
    hea = _write(tmp_path)
    hea.write_text(hea.read_text().replace("JS00001 12 500 5000", "JS00001 12 500 6000"))
    assert "length mismatch" in _error(hea).problem


def test_corrupt_header(tmp_path):
    hea = _write(tmp_path)
    hea.write_text("JS00001 12 500 5000\ngarbage line\n")
    assert "cannot parse WFDB header" in _error(hea).problem


def test_too_few_and_unknown_leads(tmp_path):
    hea = _write(tmp_path)
    lines = hea.read_text().splitlines()
    hea.write_text("\n".join(ln.replace(" V6", " V7") for ln in lines) + "\n")
    assert "unknown lead names ['V7']" in _error(hea).problem
    keep = [lines[0].replace(" 12 ", " 11 ")] + lines[1:12] + lines[13:]
    hea.write_text("\n".join(keep) + "\n")
    assert "11 leads; 12 required" in _error(hea).problem


def test_short_record(tmp_path):
    hea = _write(tmp_path, sig=_signal(4000))
    assert _error(hea).problem == "record is 8.0 s; 10 s required"


def test_resampled_from_250_hz(tmp_path):
    t = np.arange(2500) / 250
    sig = np.tile(np.sin(2 * np.pi * 1.0 * t), (12, 1))
    hea = _write(tmp_path, sig=sig, fs=250)
    rec = chapman.read_record(hea)
    assert rec.fs == 500 and rec.signal.shape == (12, 5000)
    assert any("resampled from 250 Hz" in w for w in rec.warnings)
    t500 = np.arange(5000) / 500
    assert np.abs(rec.signal[0, 200:-200] - np.sin(2 * np.pi * t500[200:-200])).max() < 0.01


def test_lead_order_is_case_insensitive_and_reordered(tmp_path):
    # Lead k carries a constant offset of k+1 uV... in mV: 0.001 * (k + 1), plus a ramp so no lead is flat.
    sig = np.arange(1, 13)[:, None] * 0.001 + np.linspace(0, 0.1, 5000)[None, :]
    hea = _write(tmp_path, sig=sig)
    lines = hea.read_text().splitlines()
    # Rename column 0 (data of I) to V6 and column 11 to I; write aVR in upper case.
    lines[1] = lines[1][: lines[1].rindex(" ")] + " V6"
    lines[12] = lines[12][: lines[12].rindex(" ")] + " I"
    lines[4] = lines[4].replace(" aVR", " AVR")
    hea.write_text("\n".join(lines) + "\n")
    rec = chapman.read_record(hea)
    np.testing.assert_allclose(rec.signal[:, 0], [0.012, *np.arange(2, 12) * 0.001, 0.001], atol=1e-6)
