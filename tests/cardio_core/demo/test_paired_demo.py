"""The demo's paired ECG + CMR cohort: files in the real formats, the same bytes whatever the workers, and
manifest phenotypes that are what the files show (physiology, not labels pasted beside random files)."""
import hashlib

import numpy as np
import pytest

from cardio_core.data.readers import paired
from cardio_core.demo.generate import generate_demo_datasets

N = 40


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("paired_demo")
    generate_demo_datasets(root, size={"paired": N}, seed=3, workers=2)
    return root / "paired"


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_subject_reads_back_through_the_paired_reader(cohort):
    manifest = paired.read_manifest(cohort)
    assert len(manifest.rows) == N and not manifest.problems
    assert manifest.outcome_columns == ("heart_failure",)
    formats = set()
    for row in manifest.rows:
        subject = paired.read_subject(cohort, row)
        formats.add(subject.ecg_format)
        assert subject.ecg.shape == (12, 5000) and subject.fs == 500
        assert subject.cmr.ndim == 4 and subject.spacing == pytest.approx((1.8, 1.8, 10.0))
        assert row.outcomes["heart_failure"] == float(row.phenotypes["LVEF"] < 40)
        assert row.phenotypes["LVSV"] == pytest.approx(row.phenotypes["LVEDV"] - row.phenotypes["LVESV"], abs=0.11)
    assert formats == {"wfdb", "cardiosoft_xml"}           # both of UK Biobank's ECG exports


def test_the_same_seed_writes_the_same_bytes_with_one_or_two_workers(cohort, tmp_path):
    generate_demo_datasets(tmp_path, size={"paired": N}, seed=3, workers=1)
    assert _digest(tmp_path / "paired") == _digest(cohort)


def test_manifest_volumes_are_the_blood_pool_the_cines_show(cohort):
    """The bright blood pool at end-diastole, thresholded in the image itself, tracks LVEDV + RVEDV."""
    manifest = paired.read_manifest(cohort)
    measured, stated = [], []
    for row in manifest.rows:
        cine, spacing, ed, _ = paired.read_cmr(row)
        voxel_ml = np.prod(spacing) / 1000
        measured.append(float((cine[..., ed - 1] > 180).sum() * voxel_ml))
        stated.append(row.phenotypes["LVEDV"] + row.phenotypes["RVEDV"])
    assert np.corrcoef(measured, stated)[0, 1] > 0.95


def test_the_ecg_follows_the_heart_the_cine_shows(cohort):
    """QRS voltage rises with LV mass (concentric hypertrophy, mass-to-volume above 1.2 g/mL, shows the most),
    and the resting rate behind LVCO (LVCO / LVSV) rises as the ejection fraction falls."""
    from scipy.stats import spearmanr
    manifest = paired.read_manifest(cohort)
    lvm, ratio, voltage, rate, lvef = [], [], [], [], []
    for row in manifest.rows:
        ecg, _, _, _ = paired.read_ecg(row)
        ph = row.phenotypes
        lvm.append(ph["LVM"])
        ratio.append(ph["LVM"] / ph["LVEDV"])
        voltage.append(float(np.ptp(ecg, axis=1).max()))
        rate.append(60_000 * ph["LVCO"] / ph["LVSV"] / 60)
        lvef.append(ph["LVEF"])
    ratio, voltage = np.array(ratio), np.array(voltage)
    assert spearmanr(lvm, voltage)[0] > 0.3
    heavy = ratio > 1.2
    assert heavy.any()
    assert np.median(voltage[heavy]) > 1.3 * np.median(voltage[~heavy])
    assert spearmanr(lvef, rate)[0] < -0.2
    assert 40 < min(rate) and max(rate) < 110


def test_ecg_physiology_overrides_set_the_rate_and_reject_unknown_keys():
    from cardio_core.demo.ecg_synth import synthesize_ecg
    _, info = synthesize_ecg(["SR"], np.random.default_rng(0), physiology={"hr": 71.5})
    assert info["hr"] == 71.5
    _, wide = synthesize_ecg(["SR"], np.random.default_rng(0), physiology={"qrs_stretch": 1.4})
    _, plain = synthesize_ecg(["SR"], np.random.default_rng(0))
    assert wide["qrs_ms"] == pytest.approx(1.4 * plain["qrs_ms"])
    with pytest.raises(ValueError, match="unknown physiology keys"):
        synthesize_ecg(["SR"], np.random.default_rng(0), physiology={"lvef": 50})
