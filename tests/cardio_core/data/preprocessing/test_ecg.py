"""ECG preprocessing, method.md section 2: each step on its own, then the whole pipeline."""
from pathlib import Path

import numpy as np
import pytest

from cardio_core.errors import RecordError
from cardio_core.labels import LEAD_GROUPS
from cardio_core.data.preprocessing import ecg
from cardio_core.data.preprocessing.ecg import (
    PreprocessingError, als_baseline, crop_ecg, preprocess_ecg, preprocess_ecg_batch, reference_als,
)

FIXTURES = Path(__file__).resolve().parents[5] / "shared" / "fixtures" / "physionet"


def _realistic(rng, n=5200, scale=0.5):
    """12 leads: slow baseline wander (random walk + respiration) plus spiky beats plus noise."""
    t = np.arange(n) / 500
    wander = np.cumsum(rng.normal(0, 0.004, size=(12, n)), axis=1) + 0.2 * np.sin(2 * np.pi * 0.25 * t)
    beats = np.exp(-(((t % 0.8) - 0.4) ** 2) / 2e-4) * rng.uniform(0.3, 1.5, size=(12, 1))
    return scale * (wander + beats + rng.normal(0, 0.02, size=(12, n)))


@pytest.fixture(scope="module")
def chapman_signal():
    wfdb = pytest.importorskip("wfdb")
    stem = FIXTURES / "JS01053"
    if not stem.with_suffix(".hea").exists():
        pytest.skip("PhysioNet fixture not available")
    return wfdb.rdrecord(str(stem)).p_signal.T.astype(np.float32)


@pytest.fixture(scope="module")
def chapman_reference(chapman_signal):
    """Steps 1-3 of the real record and its published-reference ALS baselines (computed once)."""
    x = _steps_1_to_3(chapman_signal)
    return x, np.stack([reference_als(lead, 1e7, 0.3, 5) for lead in x])


def _steps_1_to_3(x):
    x = np.nan_to_num(np.asarray(x, dtype=np.float64)[:, :5000], nan=0.0, posinf=0.0, neginf=0.0)
    s = x.std()
    return np.clip(x, -4 * s, 4 * s)


# -- step 1: truncation and input checks --------------------------------------------

def test_takes_the_first_5000_samples():
    rng = np.random.default_rng(0)
    x = _realistic(rng, n=6000)
    tail_changed = x.copy()
    tail_changed[:, 5000:] = 1e6  # would change the std/clip/baseline if it were used
    np.testing.assert_array_equal(preprocess_ecg(x), preprocess_ecg(tail_changed))


def test_short_record_is_an_error_naming_the_file():
    x = np.zeros((12, 4999))
    with pytest.raises(ValueError, match="4999 samples"):
        preprocess_ecg(x)
    with pytest.raises(RecordError) as info:
        preprocess_ecg(x, source="data/JS00001.mat")
    assert info.value.path == "data/JS00001.mat" and "4999" in info.value.problem


@pytest.mark.parametrize("fs", [250, 1000, 499.0])
def test_other_sampling_rates_are_rejected(fs):
    with pytest.raises(PreprocessingError, match=f"{fs} Hz"):
        preprocess_ecg(np.zeros((12, 10000)), fs=fs)


@pytest.mark.parametrize("shape", [(5000, 12), (11, 5000), (12,), (2, 12, 5000)])
def test_wrong_shapes_are_rejected(shape):
    with pytest.raises(ValueError, match="shape"):
        preprocess_ecg(np.zeros(shape))


# -- step 2: NaN / inf ---------------------------------------------------------------

def test_nan_and_inf_become_zero_before_clipping():
    rng = np.random.default_rng(1)
    x = _realistic(rng)
    x[3, 100:200] = np.nan
    x[7, 10] = np.inf
    x[8, 20] = -np.inf
    zeroed = x.copy()
    zeroed[~np.isfinite(zeroed)] = 0.0
    out = preprocess_ecg(x)
    assert np.all(np.isfinite(out))
    # Zero-fill, not dropping or interpolating: identical to a record holding zeros there.
    np.testing.assert_array_equal(out, preprocess_ecg(zeroed))


# -- step 3: clipping ---------------------------------------------------------------

def test_clip_uses_one_std_over_the_whole_record_centred_on_zero(monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.normal(0, 0.1, size=(12, 5000))
    x[:6] += 2.0                  # offset leads: per-lead std or a mean-centred clip would differ
    x[0, 1000] = 50.0             # a spike far beyond 4 std
    x[9, 2000] = -50.0
    seen = {}

    def spy(y, *a, **k):          # capture what reaches the ALS step
        seen["x"] = np.array(y)
        return np.zeros_like(y)

    monkeypatch.setattr(ecg, "als_baseline", spy)
    preprocess_ecg(x)
    clipped = seen["x"][0]
    s = x.std()                   # over all 12 x 5000 values at once
    assert clipped.max() == pytest.approx(4 * s) and clipped.min() == pytest.approx(-4 * s)
    assert clipped[0, 1000] == pytest.approx(4 * s) and clipped[9, 2000] == pytest.approx(-4 * s)
    np.testing.assert_allclose(clipped, np.clip(x, -4 * s, 4 * s))


def test_clip_is_centred_on_zero_not_on_the_mean(monkeypatch):
    rng = np.random.default_rng(2)
    x = 10.0 + rng.normal(0, 0.1, size=(12, 5000))    # large DC offset, small spread
    seen = {}
    monkeypatch.setattr(ecg, "als_baseline", lambda y, *a, **k: seen.setdefault("x", np.array(y)) * 0)
    preprocess_ecg(x)
    # [-4s, 4s] around 0 (as published) clips every sample to 4s; a mean-centred clip would not.
    np.testing.assert_allclose(seen["x"][0], 4 * x.std())


# -- step 4: ALS baseline ------------------------------------------------------------

def test_als_matches_reference_on_the_real_chapman_record(chapman_reference):
    x, ref = chapman_reference
    ours = als_baseline(x)
    assert ours.shape == x.shape
    assert np.abs(ours - ref).max() <= 1e-6 * np.abs(x).max()


def test_als_matches_reference_on_random_walks():
    rng = np.random.default_rng(3)
    y = np.cumsum(rng.normal(0, 0.01, size=(3, 5000)), axis=1) + rng.normal(0, 0.05, size=(3, 5000))
    ours = als_baseline(y)
    ref = np.stack([reference_als(row) for row in y])
    assert np.abs(ours - ref).max() <= 1e-6 * np.abs(y).max()


@pytest.mark.parametrize("n", [3, 4, 5, 9])
def test_als_matches_reference_on_tiny_signals_and_other_parameters(n):
    # The band edges of D'D are special for the first and last two rows.
    rng = np.random.default_rng(n)
    y = rng.normal(size=(2, n))
    ours = als_baseline(y, lam=10.0, p=0.05, n_iter=3)
    ref = np.stack([reference_als(row, lam=10.0, p=0.05, n_iter=3) for row in y])
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_als_runs_exactly_n_iter_reweightings():
    rng = np.random.default_rng(4)
    y = np.cumsum(rng.normal(size=300))
    one, five = als_baseline(y, lam=1e3, n_iter=1), als_baseline(y, lam=1e3, n_iter=5)
    # One iteration (all weights 1) is the plain Whittaker smoother; five differ from it.
    np.testing.assert_allclose(one, reference_als(y, lam=1e3, n_iter=1), atol=1e-10)
    assert np.abs(one - five).max() > 1e-3
    np.testing.assert_allclose(five, reference_als(y, lam=1e3, n_iter=5), atol=1e-10)


def test_als_blocks_and_batch_shapes_give_the_same_rows():
    rng = np.random.default_rng(5)
    y = np.cumsum(rng.normal(size=(3, 12, 800)), axis=-1)   # 36 rows: more than one kernel block
    batched = als_baseline(y, lam=1e4)
    assert batched.shape == y.shape
    np.testing.assert_allclose(batched[2, 11], als_baseline(y[2, 11], lam=1e4), rtol=0, atol=1e-12)


def test_als_removes_wander_but_keeps_the_beats():
    t = np.arange(5000) / 500
    wander = 0.8 * np.sin(2 * np.pi * 0.2 * t)
    beats = np.exp(-(((t % 1.0) - 0.5) ** 2) / 1e-4)
    corrected = wander + beats - als_baseline(wander + beats)
    assert np.abs(corrected - beats).mean() < 0.1 * np.abs(wander).mean()
    assert corrected.max() > 0.8


def test_flat_lead_baseline_is_the_lead_itself_like_the_reference():
    # All-tie case: the published weights would all be 0 after the first pass.
    y = np.zeros((2, 5000))
    y[1] = 0.25
    z = als_baseline(y)
    assert np.all(np.isfinite(z))
    np.testing.assert_allclose(z, y, atol=1e-9)
    np.testing.assert_allclose(z, np.stack([reference_als(row) for row in y]), atol=1e-9)


@pytest.mark.parametrize("kwargs, match", [
    (dict(lam=0), "lam"), (dict(p=1.0), "p must"), (dict(p=0), "p must"),
    (dict(n_iter=0), "n_iter"), (dict(n_iter=2.5), "n_iter"),
])
def test_als_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        als_baseline(np.zeros(100), **kwargs)


def test_als_rejects_nan():
    y = np.zeros(100)
    y[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        als_baseline(y)


# -- step 5: group normalisation ----------------------------------------------------

def test_each_lead_group_has_mean_zero_and_variance_one():
    rng = np.random.default_rng(6)
    x = _realistic(rng)
    x[6:] *= 5.0                  # chest leads larger: per-group, not global, statistics
    out = preprocess_ecg(x).astype(np.float64)
    for group in LEAD_GROUPS:
        part = out[list(group)]
        assert abs(part.mean()) < 1e-5
        assert part.var() == pytest.approx(1.0, abs=1e-4)
    # One statistic per group, not per lead: single leads in a group are not each unit-variance.
    assert np.ptp([out[i].var() for i in LEAD_GROUPS[2]]) > 0.05


def test_group_statistics_match_a_direct_computation(chapman_signal, chapman_reference):
    x, ref = chapman_reference
    x = x - ref
    expected = np.empty_like(x)
    for group in LEAD_GROUPS:
        part = x[list(group)]
        expected[list(group)] = (part - part.mean()) / np.sqrt(part.var() + 1e-12)
    out = preprocess_ecg(chapman_signal)
    assert out.dtype == np.float32 and out.shape == (12, 5000)
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_flat_leads_and_a_flat_group_stay_finite():
    rng = np.random.default_rng(7)
    x = _realistic(rng)
    x[0] = 0.0                    # one flat lead in a live group
    x[3:6] = 0.0                  # a whole flat group: variance 0, the 1e-12 keeps it finite
    x[8, 100:] = np.nan           # mostly missing lead
    out = preprocess_ecg(x)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[3:6], 0.0)
    assert abs(out[:3].mean()) < 1e-5


def test_all_zero_record_gives_zeros():
    out = preprocess_ecg(np.zeros((12, 5000), dtype=np.float32))
    assert out.shape == (12, 5000) and np.all(out == 0)


# -- batch ----------------------------------------------------------------------------

def test_batch_equals_records_one_by_one():
    rng = np.random.default_rng(8)
    batch = np.stack([_realistic(rng) * s for s in (0.1, 1.0, 3.0)]).astype(np.float32)
    out = preprocess_ecg_batch(batch)
    assert out.shape == (3, 12, 5000) and out.dtype == np.float32
    for b in range(3):            # statistics are per record, never pooled over the batch
        np.testing.assert_allclose(out[b], preprocess_ecg(batch[b]), atol=1e-6)


# -- step 6: crop ----------------------------------------------------------------------

def test_eval_crop_is_the_first_2500_samples():
    x = np.arange(12 * 5000, dtype=np.float32).reshape(12, 5000)
    np.testing.assert_array_equal(crop_ecg(x, train=False), x[:, :2500])
    np.testing.assert_array_equal(crop_ecg(x, train=False, rng=123), x[:, :2500])


def test_train_crops_are_random_varied_and_reproducible_with_a_seed():
    x = np.tile(np.arange(5000, dtype=np.float32), (12, 1))
    rng = np.random.default_rng(0)
    starts = [int(crop_ecg(x, train=True, rng=rng)[0, 0]) for _ in range(50)]
    assert len(set(starts)) > 40 and min(starts) >= 0 and max(starts) <= 2500
    rng2 = np.random.default_rng(0)
    assert starts == [int(crop_ecg(x, train=True, rng=rng2)[0, 0]) for _ in range(50)]
    w = crop_ecg(x, train=True, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(w[0], np.arange(w[0, 0], w[0, 0] + 2500))


def test_crop_works_on_batches_and_torch_tensors():
    torch = pytest.importorskip("torch")
    x = torch.arange(2 * 12 * 5000, dtype=torch.float32).reshape(2, 1, 12, 5000)
    assert tuple(crop_ecg(x, train=False).shape) == (2, 1, 12, 2500)
    assert tuple(crop_ecg(x, train=True, rng=0).shape) == (2, 1, 12, 2500)


def test_crop_rejects_bad_lengths():
    with pytest.raises(ValueError, match="cannot crop"):
        crop_ecg(np.zeros((12, 2000)), train=False)
    with pytest.raises(ValueError, match="length"):
        crop_ecg(np.zeros((12, 5000)), length=0, train=False)
