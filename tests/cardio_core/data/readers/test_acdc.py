"""ACDC reader on written patient folders in both release layouts, and every bad-input case."""
from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from cardio_core.data.readers import acdc
from cardio_core.data.writers import write_acdc_patient
from cardio_core.errors import DatasetError, RecordError

SHAPE = (24, 20, 3, 6)


def _volume(seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 800, size=SHAPE)


def _patient(parent, pid="patient001", *, dtype=np.int16, group="DCM", spacing=(1.5625, 1.5625, 10.0), **kw):
    kw.setdefault("ed", 1)
    kw.setdefault("es", 4)
    kw.setdefault("height", 184.0)
    kw.setdefault("weight", 95.0)
    return write_acdc_patient(parent / pid, pid, _volume(int(pid[-3:])), spacing, group=group, dtype=dtype, **kw)


def _error(folder) -> RecordError:
    with pytest.raises(RecordError) as info:
        acdc.read_patient(folder)
    return info.value


@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_read_patient_round_trip(tmp_path, dtype):
    masks = {1: np.zeros(SHAPE[:3], dtype=np.uint8), 4: np.full(SHAPE[:3], 3, dtype=np.uint8)}
    folder = _patient(tmp_path, dtype=dtype, masks=masks, spacing=(1.786, 1.786, 5.0))
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["Info.cfg", "MANDATORY_CITATION.md", "patient001_4d.nii.gz", "patient001_frame01.nii.gz",
                     "patient001_frame01_gt.nii.gz", "patient001_frame04.nii.gz", "patient001_frame04_gt.nii.gz"]
    assert (folder / "Info.cfg").read_bytes() == b"ED: 1\nES: 4\nGroup: DCM\nHeight: 184.0\nNbFrame: 6\nWeight: 95.0\n"
    assert nib.load(folder / "patient001_4d.nii.gz").get_data_dtype() == np.dtype(dtype)
    assert nib.load(folder / "patient001_frame04_gt.nii.gz").get_data_dtype() == np.uint8
    frame = np.asarray(nib.load(folder / "patient001_frame04.nii.gz").dataobj)
    rec = acdc.read_patient(folder)
    assert rec.record_id == "patient001" and rec.dataset == "acdc" and rec.group == "DCM"
    assert rec.volume.shape == SHAPE and rec.volume.dtype == np.float32
    assert rec.spacing == pytest.approx((1.786, 1.786, 5.0), abs=1e-5)
    assert (rec.ed, rec.es, rec.n_frames) == (1, 4, 6)
    expected = _volume(1) if dtype == np.float32 else np.round(_volume(1))
    np.testing.assert_allclose(rec.volume, expected, rtol=1e-6)
    np.testing.assert_allclose(rec.volume[..., 3], frame, rtol=1e-6)
    assert rec.bmi == pytest.approx(95.0 / 1.84 ** 2) and rec.bmi_category == "overweight"
    assert rec.warnings == []


def test_both_layouts(tmp_path):
    old = tmp_path / "old"
    for pid, split in (("patient001", "training"), ("patient002", "training"), ("patient101", "testing")):
        _patient(old / split, pid, write_citation=False)
    new = tmp_path / "new"
    for pid, split in (("patient001", "training"), ("patient101", "testing")):
        _patient(new / "database" / split, pid)
    flat = tmp_path / "flat"
    _patient(flat, "patient003")
    assert [p.name for p in acdc.list_patients(old)] == ["patient001", "patient002", "patient101"]
    assert [p.name for p in acdc.list_patients(new)] == ["patient001", "patient101"]
    assert acdc.list_patients(new / "database") == acdc.list_patients(new)
    assert [p.name for p in acdc.list_patients(flat)] == ["patient003"]
    assert acdc.read_patient(acdc.list_patients(new)[1]).record_id == "patient101"


def test_list_patients_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        acdc.list_patients(tmp_path / "nope")
    (tmp_path / "training").mkdir()
    with pytest.raises(DatasetError, match="no patientNNN folders"):
        acdc.list_patients(tmp_path)


def test_missing_group_is_kept_with_a_warning(tmp_path):
    folder = _patient(tmp_path, "patient101", group=None)
    assert "Group" not in (folder / "Info.cfg").read_text()
    rec = acdc.read_patient(folder)
    assert rec.group is None and rec.warnings == ["Info.cfg has no Group"]


def test_read_info_tolerates_spacing_and_crlf(tmp_path):
    cfg = tmp_path / "Info.cfg"
    cfg.write_bytes(b"ED:1\r\nES : 12\r\nGroup:  NOR\r\nHeight: 160.0\r\nNbFrame: 30\r\nWeight: 50.0\r\n")
    assert acdc.read_info(cfg) == dict(ED=1, ES=12, Group="NOR", Height=160.0, NbFrame=30, Weight=50.0)


@pytest.mark.parametrize("text, problem", [
    ("ED: 1\nES: 4\nGroup: DCM\nHeight: 184.0\nWeight: 95.0\n", "Info.cfg lacks NbFrame"),
    ("ES: 4\nNbFrame: 6\nHeight: 184.0\n", "Info.cfg lacks ED, Weight"),
    ("ED: one\nES: 4\nHeight: 184.0\nNbFrame: 6\nWeight: 95.0\n", "ED is not a number: 'one'"),
    ("ED: 1\nES: 4\nGroup: XYZ\nHeight: 184.0\nNbFrame: 6\nWeight: 95.0\n", "Group 'XYZ' is not one of"),
])
def test_bad_info(tmp_path, text, problem):
    folder = _patient(tmp_path)
    (folder / "Info.cfg").write_text(text)
    err = _error(folder)
    assert err.path == str(folder / "Info.cfg") and problem in err.problem


def test_missing_info_and_missing_nifti(tmp_path):
    folder = _patient(tmp_path)
    (folder / "patient001_4d.nii.gz").unlink()
    err = _error(folder)
    assert err.path == str(folder / "patient001_4d.nii.gz") and "missing" in err.problem
    (folder / "Info.cfg").unlink()
    assert "Info.cfg is missing" in _error(folder).problem


def test_an_uncompressed_cine_is_read_like_the_compressed_one(tmp_path):
    folder = _patient(tmp_path)
    gz = folder / "patient001_4d.nii.gz"
    expected = acdc.read_patient(folder).volume
    (folder / "patient001_4d.nii").write_bytes(gzip.decompress(gz.read_bytes()))
    gz.unlink()
    record = acdc.read_patient(folder)
    assert np.array_equal(record.volume, expected)


@pytest.mark.parametrize("ed, es, problem", [(0, 4, "ED 0 is outside 1..6"), (1, 7, "ES 7 is outside 1..6")])
def test_ed_es_out_of_range(tmp_path, ed, es, problem):
    folder = _patient(tmp_path)
    cfg = folder / "Info.cfg"
    cfg.write_text(cfg.read_text().replace("ED: 1", f"ED: {ed}").replace("ES: 4", f"ES: {es}"))
    assert problem in _error(folder).problem


def test_nbframe_mismatch(tmp_path):
    folder = _patient(tmp_path)
    cfg = folder / "Info.cfg"
    cfg.write_text(cfg.read_text().replace("NbFrame: 6", "NbFrame: 30"))
    err = _error(folder)
    assert "NbFrame is 30 but the cine has 6 frames" in err.problem and err.path.endswith("_4d.nii.gz")


def test_3d_nifti(tmp_path):
    folder = _patient(tmp_path)
    nib.save(nib.Nifti1Image(np.zeros(SHAPE[:3], dtype=np.int16), np.eye(4)), folder / "patient001_4d.nii.gz")
    assert "NIfTI is 3-D" in _error(folder).problem


@pytest.mark.parametrize("corruption", ["truncate", "garbage"])
def test_corrupt_gzip(tmp_path, corruption):
    folder = _patient(tmp_path)
    path = folder / "patient001_4d.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if corruption == "truncate" else gzip.compress(b"not a nifti") + b"x")
    err = _error(folder)
    assert err.path == str(path) and "cannot read NIfTI" in err.problem


def test_writer_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="outside 1..6"):
        write_acdc_patient(tmp_path / "p", "patient001", _volume(), (1.0, 1.0, 1.0), ed=7, es=1,
                           group="NOR", height=170, weight=70)
    with pytest.raises(ValueError, match=r"\(x, y, z, t\)"):
        write_acdc_patient(tmp_path / "p", "patient001", _volume()[..., 0], (1.0, 1.0, 1.0), ed=1, es=1,
                           group="NOR", height=170, weight=70)
