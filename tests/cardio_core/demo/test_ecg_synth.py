"""Physiology of the synthetic 12-lead ECG, measured from the generated signals."""
import time

import numpy as np
import pytest
from scipy import signal as sps

from cardio_core.demo.ecg_synth import synthesize_ecg

FS = 500


def _gen(classes, seed, **kw):
    return synthesize_ecg(classes, np.random.default_rng(seed), **kw)[0].astype(np.float64)


def _bandpass(x, lo, hi):
    sos = sps.butter(2, [lo, hi], btype="bandpass", fs=FS, output="sos")
    return sps.sosfiltfilt(sos, x, axis=-1)


def _r_peaks(sig):
    """R peaks from the QRS energy of all 12 leads (axis-independent)."""
    env = (np.diff(_bandpass(sig, 5, 30), axis=1) ** 2).sum(0)
    env = np.convolve(env, np.ones(10) / 10, mode="same")
    peaks, _ = sps.find_peaks(env, height=0.25 * np.percentile(env, 99.5), distance=int(0.22 * FS))
    return peaks, env


def _hr_and_cv(sig):
    peaks, _ = _r_peaks(sig)
    rr = np.diff(peaks) / FS
    return 60.0 / np.median(rr), rr.std() / rr.mean()


def _qrs_width_ms(sig):
    """Median width over which the 1-40 Hz QRS slope energy stays above 2% of that beat's peak."""
    peaks, _ = _r_peaks(sig)
    env = (np.diff(_bandpass(sig, 1, 40), axis=1) ** 2).sum(0)
    env = np.convolve(env, np.ones(10) / 10, mode="same")
    widths = []
    for p in peaks:
        lo, hi = max(p - 75, 0), min(p + 100, env.size)
        seg = env[lo:hi]
        widths.append((seg > 0.02 * seg.max()).sum() / FS * 1000)
    return float(np.median(widths))


def test_shape_dtype_and_determinism():
    a, info = synthesize_ecg(["SR"], np.random.default_rng(3))
    b, _ = synthesize_ecg(["SR"], np.random.default_rng(3))
    assert a.shape == (12, 5000) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert 60 <= info["hr"] <= 100 and 120 <= info["pr_ms"] <= 200
    # quantised to 1 µV, as written to disk
    assert np.allclose(a * 1000, np.rint(a * 1000), atol=1e-3)


@pytest.mark.parametrize("classes", [["SR"], ["AFIB", "CRBBB"], ["PACE"], ["SR", "LVH"], ["GSVT"]])
@pytest.mark.parametrize("device", ["chapman", "ptbxl"])
def test_einthoven_and_goldberger_hold(classes, device):
    x = np.rint(_gen(classes, 1, device=device) * 1000)   # µV
    I, II, III, aVR, aVL, aVF = x[:6]
    assert np.array_equal(III, II - I)
    assert np.abs(aVR + (I + II) / 2).max() <= 0.5
    assert np.abs(aVL - (I - II / 2)).max() <= 0.5
    assert np.abs(aVF - (II - I / 2)).max() <= 0.5


def test_rates_order_by_rhythm_class():
    hr = {c: [_hr_and_cv(_gen([c], s))[0] for s in range(6)] for c in ("SB", "SR", "GSVT")}
    assert max(hr["SB"]) < 60 < min(hr["SR"])
    assert max(hr["SR"]) < 100 < min(hr["GSVT"])


def test_afib_is_irregular_and_has_no_p_waves():
    cv_af = np.median([_hr_and_cv(_gen(["AFIB"], s))[1] for s in range(6)])
    cv_sr = np.median([_hr_and_cv(_gen(["SR"], s))[1] for s in range(6)])
    assert cv_af > 0.1 and cv_af > 2.5 * cv_sr
    _, info = synthesize_ecg(["AFIB"], np.random.default_rng(0))
    assert info["pr_ms"] is None


def test_wide_qrs_for_bundle_branch_blocks_and_pacing():
    sr = np.median([_qrs_width_ms(_gen(["SR"], s)) for s in range(5)])
    for cls in (["SR", "CRBBB"], ["SR", "CLBBB"], ["PACE"]):
        wide = np.median([_qrs_width_ms(_gen(cls, s)) for s in range(5)])
        assert wide > sr + 25, (cls, wide, sr)
        assert synthesize_ecg(cls, np.random.default_rng(0))[1]["qrs_ms"] >= 120


def _qrs_ptp(sig, lead):
    """Median peak-to-peak of one lead within ±80 ms of each R peak (baseline removed)."""
    peaks, _ = _r_peaks(sig)
    x = _bandpass(sig[lead], 1, 40)
    return float(np.median([np.ptp(x[max(p - 40, 0):p + 40]) for p in peaks]))


def test_voltage_criteria_lvh_and_low_voltage():
    sokolow = {c: np.median([_qrs_ptp(s_, 6) / 2 + _qrs_ptp(s_, 10)
                             for s_ in (_gen(["SR", c], s) for s in range(5))]) for c in ("SR", "LVH", "LQV")}
    assert sokolow["LVH"] > 3.5 > sokolow["SR"] > sokolow["LQV"]
    limb = max(_qrs_ptp(_gen(["SR", "LQV"], s), lead) for s in range(3) for lead in range(6))
    assert limb < 0.6


def test_axis_deviation_visible_in_limb_leads():
    def net_qrs(sig, lead):
        peaks, _ = _r_peaks(sig)
        x = _bandpass(sig[lead], 1, 40)
        return np.median([x[p - 40:p + 40].max() + x[p - 40:p + 40].min() for p in peaks if p > 40])
    for s in range(3):
        lad = _gen(["SR", "LAD"], s)
        assert net_qrs(lad, 0) > 0 and net_qrs(lad, 5) < 0      # I positive, aVF negative
        rad = _gen(["SR", "RAD"], s)
        assert net_qrs(rad, 0) < 0                                # I net negative


def test_ptbxl_device_is_a_visible_domain_shift():
    def hf_power(x):
        f, p = sps.welch(x, fs=FS, nperseg=1024, axis=-1)
        return p[:, f > 60].sum()
    ch = np.median([hf_power(_gen(["SR"], s, device="chapman")) for s in range(4)])
    pt = np.median([hf_power(_gen(["SR"], s, device="ptbxl")) for s in range(4)])
    assert ch > 3 * pt


def test_bad_arguments_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown classes"):
        synthesize_ecg(["NORMAL"], rng)
    with pytest.raises(ValueError, match="device"):
        synthesize_ecg(["SR"], rng, device="holter")


def test_fast_enough():
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for c in ("SR", "AFIB", "GSVT", "PACE", "SB") * 8:
        synthesize_ecg([c, "STTA"], rng)
    assert time.perf_counter() - t0 < 2.0   # ~5 ms each; generous for a shared CPU
