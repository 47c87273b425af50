import pytest
import torch

from cardio_core.training.augment import CmrTrainAugment, EcgTrainAugment, ft_surrogate, jitter, rescale


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_ft_surrogate_keeps_amplitude_spectrum_and_shares_phase_across_leads():
    x = torch.randn(4, 12, 2500, generator=gen())
    y = ft_surrogate(x, phase_noise=0.5, p=1.0, generator=gen(1))
    assert y.shape == x.shape and not torch.allclose(x, y)
    X, Y = torch.fft.rfft(x.double(), dim=-1), torch.fft.rfft(y.double(), dim=-1)
    assert torch.allclose(X.abs(), Y.abs(), rtol=1e-3, atol=1e-3)
    # same phase shift for every lead of a sample: phase(Y) - phase(X) equal across leads
    shift = torch.angle(Y * X.conj())
    rel = torch.angle(torch.polar(torch.ones_like(shift), shift[:, :1] - shift))
    assert rel.abs().max() < 1e-3
    # and different between samples
    assert not torch.allclose(shift[0, 0], shift[1, 0], atol=1e-2)


def test_ft_surrogate_probability():
    x = torch.randn(400, 2, 100, generator=gen())
    y = ft_surrogate(x, p=0.5, generator=gen(2))
    untouched = (y == x).flatten(1).all(1).float().mean().item()
    assert 0.4 < untouched < 0.6
    assert torch.equal(ft_surrogate(x, p=0.0), x)
    single = ft_surrogate(x[0], p=1.0, generator=gen(3))
    assert single.shape == (2, 100)


def test_jitter_is_multiplicative():
    x = torch.randn(8, 12, 2500, generator=gen())
    x[:, 3] = 0.0
    y = jitter(x, sigma=0.2, scale=0.6, generator=gen(1))
    assert torch.equal(y[:, 3], x[:, 3])                     # zero stays zero
    rel = ((y - x) / x)[:, [0, 1, 2, 4]]
    assert rel.mean().abs() < 0.01
    assert rel.std().item() == pytest.approx(0.6 * 0.2, rel=0.05)


def test_rescale_draws_one_scalar_per_sample():
    x = torch.rand(2000, 12, 50, generator=gen()) + 0.5
    y = rescale(x, sigma=0.5, generator=gen(1))
    ratio = y / x
    per_sample = ratio.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), rtol=1e-5)
    factors = per_sample[:, 0]
    assert factors.mean().item() == pytest.approx(1.0, abs=0.05)
    assert factors.std().item() == pytest.approx(0.5, rel=0.1)


def test_ecg_train_augment_changes_every_sample_and_keeps_shape():
    aug = EcgTrainAugment()
    x = torch.randn(16, 12, 2500, generator=gen())
    y = aug(x, generator=gen(5))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not (y == x).flatten(1).all(1).any()
    assert aug(x[0]).shape == (12, 2500)


def test_cmr_augment_applies_with_probability_095():
    torch.manual_seed(0)
    aug = CmrTrainAugment(size=48)
    img = torch.rand(3, 48, 48)
    outs = [aug(img) for _ in range(300)]
    unchanged = sum(torch.equal(o, img) for o in outs) / len(outs)
    assert 0.01 <= unchanged <= 0.11
    assert all(o.shape == (3, 48, 48) and o.min() >= 0 and o.max() <= 1 for o in outs)
    batch = aug(torch.rand(4, 3, 48, 48))
    assert batch.shape == (4, 3, 48, 48)
