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


# --- MMCL pre-training views ----------------------------------------------------------------------------------

from cardio_core.training.augment import (CmrPretrainAugment, EcgPretrainAugment,  # noqa: E402
                                          ecg_random_crop, random_resized_crop_box)


def test_ecg_random_crop_is_a_window_of_the_record_at_a_random_start():
    x = torch.arange(12 * 5000, dtype=torch.float32).reshape(12, 5000)
    y = ecg_random_crop(x, 2500, generator=gen(1))
    start = int(y[0, 0])
    assert y.shape == (12, 2500) and torch.equal(y, x[:, start:start + 2500])   # copied, not resampled
    starts = {int(ecg_random_crop(x, 2500, generator=gen(s))[0, 0]) for s in range(20)}
    assert len(starts) > 10 and all(0 <= s <= 2500 for s in starts)
    assert torch.equal(ecg_random_crop(x, 2500, generator=gen(3)), ecg_random_crop(x, 2500, generator=gen(3)))


def test_ecg_random_crop_with_a_scale_resamples_a_window_to_the_length():
    t = torch.linspace(0, 1, 5000)
    x = t.expand(12, 5000).clone()          # a ramp: a resampled window is a ramp over the window's range
    y = ecg_random_crop(x, 2500, scale=(0.5, 1.0), generator=gen(2))
    assert y.shape == (12, 2500)
    width = float(y[0, -1] - y[0, 0])
    assert 0.5 - 1e-3 <= width <= 1.0 + 1e-3
    assert torch.all(y[:, 1:] >= y[:, :-1] - 1e-6)
    with pytest.raises(ValueError, match="crop length"):
        ecg_random_crop(x, 6000)
    with pytest.raises(ValueError, match="scale"):
        ecg_random_crop(x, 2500, scale=(0.0, 1.0))


def test_ecg_pretrain_augment_is_seeded_and_uses_the_mmcl_values():
    aug = EcgPretrainAugment()
    assert (aug.phase_noise, aug.jitter_sigma, aug.jitter_scale, aug.rescale_sigma, aug.ft_p) == (0.1, 0.25, 0.6, 0.5, 1.0)
    x = torch.randn(12, 5000, generator=gen())
    a, b, c = aug(x, generator=gen(7)), aug(x, generator=gen(7)), aug(x, generator=gen(8))
    assert a.shape == (12, 2500) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(a).all()
    # p = 0: the random window only
    crop_only = EcgPretrainAugment(p=0.0)(x, generator=gen(4))
    start = int(torch.nonzero((x[0].unfold(0, 2500, 1) == crop_only[0]).all(1))[0])
    assert torch.equal(crop_only, x[:, start:start + 2500])
    with pytest.raises(ValueError, match="phase_noise"):
        EcgPretrainAugment(phase_noise=1.5)


def test_random_resized_crop_box_stays_inside_and_covers_the_scale():
    for s in range(50):
        top, left, h, w = random_resized_crop_box(210, 210, (0.6, 1.0), (3 / 4, 4 / 3), gen(s))
        assert 0 <= top and top + h <= 210 and 0 <= left and left + w <= 210
        assert 0.55 * 210 * 210 <= h * w <= 210 * 210


def test_cmr_pretrain_augment_is_seeded_and_keeps_the_value_range():
    aug = CmrPretrainAugment(size=96)
    assert (aug.flip_p, aug.rotation_p, aug.degrees, aug.brightness, aug.contrast, aug.saturation, aug.scale) == \
        (0.5, 0.5, 45.0, 0.5, 0.5, 0.25, (0.6, 1.0))
    x = torch.rand(3, 210, 210, generator=gen())
    a, b, c = aug(x, gen(1)), aug(x, gen(1)), aug(x, gen(2))
    assert a.shape == (3, 96, 96) and torch.equal(a, b) and not torch.equal(a, c)
    views = aug(torch.rand(16, 3, 210, 210, generator=gen(3)), gen(4))
    assert views.shape == (16, 3, 96, 96)
    assert float(views.min()) >= 0.0 and float(views.max()) <= 1.0
    with pytest.raises(ValueError, match="saturation"):
        CmrPretrainAugment(saturation=2.0)


def test_cmr_pretrain_augment_parts():
    from torchvision.transforms.v2 import functional as F
    x = torch.rand(3, 64, 64, generator=gen())
    # only a flip, a full-image crop and no colour change: exactly the flipped image
    flip = CmrPretrainAugment(size=64, flip_p=1.0, rotation_p=0.0, brightness=0, contrast=0, saturation=0,
                              scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.allclose(flip(x, gen(1)), F.horizontal_flip(x), atol=1e-6)
    # nothing random left but the resize: a smaller size equals the validation resize
    plain = CmrPretrainAugment(size=32, flip_p=0.0, rotation_p=0.0, brightness=0, contrast=0, saturation=0,
                               scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.allclose(plain(x, gen(1)), F.resize(x, [32, 32], antialias=True), atol=1e-6)
    # rotation always: corners are filled with zeros
    rot = CmrPretrainAugment(size=64, flip_p=0.0, rotation_p=1.0, degrees=45, brightness=0, contrast=0,
                             saturation=0, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    rotated = [rot(x + 0.5, gen(s)) for s in range(5)]
    assert any(float(r[:, 0, 0].abs().max()) == 0.0 for r in rotated)
