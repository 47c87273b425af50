"""Training-time augmentation (method.md §4). Applied to training splits only, including CV folds.

ECG transforms take a torch tensor (leads, T) or a batch (B, leads, T) and draw their random
numbers per sample. `generator` makes them reproducible in tests.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as nn_functional
from torchvision.transforms import v2


def _batched(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if x.ndim == 2:
        return x.unsqueeze(0), True
    if x.ndim == 3:
        return x, False
    raise ValueError(f"expected an ECG of shape (leads, T) or (B, leads, T), got {tuple(x.shape)}")


def _check_prob(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def ft_surrogate(x: torch.Tensor, phase_noise: float = 0.075, p: float = 0.5,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Fourier-transform surrogate: add a random phase per frequency, the same for all leads.

    The amplitude spectrum is kept; the DC (and Nyquist) terms keep phase 0 so the output is
    real without changing their amplitude. Each sample is transformed with probability p.
    """
    _check_prob("phase_noise", phase_noise)
    _check_prob("p", p)
    xb, single = _batched(x)
    n, t = xb.shape[0], xb.shape[-1]
    spectrum = torch.fft.rfft(xb.float(), dim=-1)
    phase = 2 * math.pi * phase_noise * torch.rand(n, 1, spectrum.shape[-1], generator=generator)
    phase[..., 0] = 0.0
    if t % 2 == 0:
        phase[..., -1] = 0.0
    apply = torch.rand(n, 1, 1, generator=generator) < p
    phase = torch.where(apply, phase, torch.zeros_like(phase)).to(xb.device)
    out = torch.fft.irfft(spectrum * torch.polar(torch.ones_like(phase), phase), n=t, dim=-1).to(xb.dtype)
    out = torch.where(apply.to(xb.device), out, xb)   # untouched samples stay bit-identical
    return out[0] if single else out


def jitter(x: torch.Tensor, sigma: float = 0.2, scale: float = 0.6,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Multiplicative noise: x + scale * x * N(0, sigma^2), element-wise (zero stays zero)."""
    if sigma < 0 or scale < 0:
        raise ValueError(f"sigma and scale must be >= 0, got {sigma}, {scale}")
    noise = torch.randn(x.shape, generator=generator).to(device=x.device, dtype=x.dtype) * sigma
    return x + scale * x * noise


def rescale(x: torch.Tensor, sigma: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Multiply each sample by one scalar ~ N(1, sigma^2)."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    xb, single = _batched(x)
    factor = 1.0 + sigma * torch.randn(xb.shape[0], 1, 1, generator=generator)
    out = xb * factor.to(device=xb.device, dtype=xb.dtype)
    return out[0] if single else out


class EcgTrainAugment:
    """FT surrogate -> jitter -> rescale, with the thesis defaults."""

    def __init__(self, phase_noise: float = 0.075, ft_p: float = 0.5, jitter_sigma: float = 0.2,
                 jitter_scale: float = 0.6, rescale_sigma: float = 0.5):
        self.phase_noise, self.ft_p = phase_noise, ft_p
        self.jitter_sigma, self.jitter_scale = jitter_sigma, jitter_scale
        self.rescale_sigma = rescale_sigma
        _check_prob("phase_noise", phase_noise)
        _check_prob("ft_p", ft_p)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = ft_surrogate(x, self.phase_noise, self.ft_p, generator=generator)
        x = jitter(x, self.jitter_sigma, self.jitter_scale, generator=generator)
        return rescale(x, self.rescale_sigma, generator=generator)

    def __repr__(self) -> str:
        return (f"EcgTrainAugment(phase_noise={self.phase_noise}, ft_p={self.ft_p}, jitter_sigma={self.jitter_sigma}, "
                f"jitter_scale={self.jitter_scale}, rescale_sigma={self.rescale_sigma})")


class CmrTrainAugment:
    """With probability p: horizontal flip (p 0.5), rotation up to 45 degrees, colour jitter
    (brightness/contrast/saturation 0.5), random resized crop at scale 0.6-1.0; otherwise the
    image unchanged. Input (3, H, W) float in [0, 1] or a batch (each sample drawn separately).
    """

    def __init__(self, p: float = 0.95, size: int = 210, degrees: float = 45.0, brightness: float = 0.5,
                 contrast: float = 0.5, saturation: float = 0.5, scale: tuple[float, float] = (0.6, 1.0)):
        _check_prob("p", p)
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
        self.p = p
        self.transform = v2.RandomApply([v2.Compose([
            v2.RandomHorizontalFlip(),
            v2.RandomRotation(degrees),
            v2.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation),
            v2.RandomResizedCrop(size, scale=scale, antialias=True),
        ])], p=p)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            return torch.stack([self.transform(img) for img in x])
        if x.ndim != 3:
            raise ValueError(f"expected (3, H, W) or (B, 3, H, W), got {tuple(x.shape)}")
        return self.transform(x)

    def __repr__(self) -> str:
        return f"CmrTrainAugment(p={self.p}, {self.transform.transforms[0]})"


# --- Multimodal contrastive pre-training (MMCL, method.md §8) -------------------------------------------------
#
# What the published MMCL-ECG-CMR code does, and how it is reproduced here:
# - ECG "random crop (scale 0.5)": its paired dataset crops a window of the model's input length (2,500 samples)
#   at a random start from the 10 s record (5,000 samples), without resizing: the window is half the record.
#   `ecg_random_crop(..., scale=None)` (the default) is exactly that. `scale=(low, high)` is the resized variant
#   of the same code's CropResizing: a window of U(low, high) x T samples, linearly resampled to the input length.
# - ECG "Gaussian noise sigma 0.25" is the code's Jitter(sigma=0.25) with its default amplitude 0.6:
#   x + 0.6 * x * N(0, 0.25^2), the multiplicative `jitter` above; rescale is one N(1, 0.5^2) factor per
#   record; FT surrogate with phase noise 0.1, applied to every record (the code's prob=1.0). Order as in the
#   code: crop, FT surrogate, jitter, rescale.
# - CMR: the paper's values (flip p 0.5, rotation p 0.5 up to 45 degrees, colour jitter 0.5 / 0.5 / 0.25,
#   random resized crop at scale 0.6-1). The code applies its whole chain (rotation always, saturation 0.5) to
#   95 % of the images (augmentation_rate 0.95, also used for the ECG chain); `p` offers that, default 1.0.
# Every random number comes from `generator` (torch), so a seeded generator gives the same views.


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def ecg_random_crop(x: torch.Tensor, length: int, scale: tuple[float, float] | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """A random window of a record (leads, T) -> (leads, length).

    scale=None: a window of `length` samples at a random start (the published MMCL crop; "scale 0.5" for
    2,500 of 5,000 samples), values copied unchanged. scale=(low, high): a window of round(u * T) samples,
    u ~ U(low, high), at a random start, linearly resampled to `length` samples.
    """
    if x.ndim != 2:
        raise ValueError(f"expected one ECG of shape (leads, T), got {tuple(x.shape)}")
    t = x.shape[-1]
    if length < 1 or length > t:
        raise ValueError(f"crop length must be in [1, T={t}], got {length}")
    if scale is None:
        start = int(torch.randint(0, t - length + 1, (), generator=generator))
        return x[:, start:start + length]
    low, high = scale
    if not 0 < low <= high <= 1:
        raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
    window = min(t, max(2, round(_uniform(low, high, generator) * t)))
    start = int(torch.randint(0, t - window + 1, (), generator=generator))
    piece = x[:, start:start + window]
    if window == length:
        return piece
    return nn_functional.interpolate(piece[None].float(), size=length, mode="linear",
                                     align_corners=True)[0].to(x.dtype)


class EcgPretrainAugment:
    """MMCL pre-training view of one ECG record (leads, T >= crop_length) -> (leads, crop_length):
    random crop, then (with probability p) FT surrogate (phase noise 0.1), jitter x + 0.6 x N(0, 0.25^2)
    and rescale by N(1, 0.5^2). See the notes above for what the published code does."""

    def __init__(self, crop_length: int = 2500, crop_scale: tuple[float, float] | None = None,
                 phase_noise: float = 0.1, ft_p: float = 1.0, jitter_sigma: float = 0.25, jitter_scale: float = 0.6,
                 rescale_sigma: float = 0.5, p: float = 1.0):
        _check_prob("phase_noise", phase_noise)
        _check_prob("ft_p", ft_p)
        _check_prob("p", p)
        if crop_length < 1:
            raise ValueError(f"crop_length must be >= 1, got {crop_length}")
        if crop_scale is not None and not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}")
        if min(jitter_sigma, jitter_scale, rescale_sigma) < 0:
            raise ValueError("jitter_sigma, jitter_scale and rescale_sigma must be >= 0")
        self.crop_length, self.crop_scale = crop_length, crop_scale
        self.phase_noise, self.ft_p = phase_noise, ft_p
        self.jitter_sigma, self.jitter_scale, self.rescale_sigma = jitter_sigma, jitter_scale, rescale_sigma
        self.p = p

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = ecg_random_crop(x, self.crop_length, self.crop_scale, generator=generator)
        if self.p < 1.0 and float(torch.rand((), generator=generator)) >= self.p:
            return x.contiguous()
        x = ft_surrogate(x, self.phase_noise, self.ft_p, generator=generator)
        x = jitter(x, self.jitter_sigma, self.jitter_scale, generator=generator)
        return rescale(x, self.rescale_sigma, generator=generator)

    def __repr__(self) -> str:
        return (f"EcgPretrainAugment(crop_length={self.crop_length}, crop_scale={self.crop_scale}, "
                f"phase_noise={self.phase_noise}, ft_p={self.ft_p}, jitter_sigma={self.jitter_sigma}, "
                f"jitter_scale={self.jitter_scale}, rescale_sigma={self.rescale_sigma}, p={self.p})")


def random_resized_crop_box(height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
                            generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop covering U(scale) of the area with a log-uniform aspect ratio;
    the usual 10 tries, then the largest centred crop within `ratio` (torchvision's rule)."""
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * _uniform(scale[0], scale[1], generator)
        aspect = math.exp(_uniform(log_lo, log_hi, generator))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (), generator=generator))
            left = int(torch.randint(0, width - w + 1, (), generator=generator))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class CmrPretrainAugment:
    """MMCL pre-training view of one CMR image (3, H, W) in [0, 1] -> (3, size, size), or of a batch:
    horizontal flip (p 0.5), rotation up to 45 degrees (p 0.5; nearest, zero fill, as torchvision's
    RandomRotation), colour jitter (brightness 0.5, contrast 0.5, saturation 0.25, in a random order, as
    ColorJitter) and a random resized crop of 0.6-1 of the area (aspect 3/4-4/3) resized to `size`
    (bilinear, antialiased). With probability 1 - p the image is only resized to `size`."""

    def __init__(self, size: int = 210, flip_p: float = 0.5, rotation_p: float = 0.5, degrees: float = 45.0,
                 brightness: float = 0.5, contrast: float = 0.5, saturation: float = 0.25,
                 scale: tuple[float, float] = (0.6, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 p: float = 1.0):
        for name, value in (("flip_p", flip_p), ("rotation_p", rotation_p), ("p", p)):
            _check_prob(name, value)
        for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {ratio}")
        if size < 1 or degrees < 0:
            raise ValueError(f"size must be >= 1 and degrees >= 0, got {size}, {degrees}")
        self.size, self.flip_p, self.rotation_p, self.degrees = size, flip_p, rotation_p, degrees
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self.scale, self.ratio, self.p = tuple(scale), tuple(ratio), p

    def _one(self, img: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional as F
        if float(torch.rand((), generator=generator)) >= self.p:
            return F.resize(img, [self.size, self.size], antialias=True)
        if float(torch.rand((), generator=generator)) < self.flip_p:
            img = F.horizontal_flip(img)
        if float(torch.rand((), generator=generator)) < self.rotation_p:
            angle = _uniform(-self.degrees, self.degrees, generator)
            img = F.rotate(img, angle, interpolation=InterpolationMode.NEAREST, fill=0.0)
        factors = {"brightness": _uniform(max(0.0, 1 - self.brightness), 1 + self.brightness, generator),
                   "contrast": _uniform(max(0.0, 1 - self.contrast), 1 + self.contrast, generator),
                   "saturation": _uniform(max(0.0, 1 - self.saturation), 1 + self.saturation, generator)}
        adjust = {"brightness": F.adjust_brightness, "contrast": F.adjust_contrast,
                  "saturation": F.adjust_saturation}
        for k in torch.randperm(3, generator=generator).tolist():
            name = ("brightness", "contrast", "saturation")[k]
            img = adjust[name](img, factors[name])
        top, left, h, w = random_resized_crop_box(img.shape[-2], img.shape[-1], self.scale, self.ratio, generator)
        return F.resized_crop(img, top, left, h, w, [self.size, self.size],
                              interpolation=InterpolationMode.BILINEAR, antialias=True)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.ndim == 4:
            return torch.stack([self._one(img, generator) for img in x])
        if x.ndim != 3 or x.shape[0] != 3:
            raise ValueError(f"expected (3, H, W) or (B, 3, H, W), got {tuple(x.shape)}")
        return self._one(x, generator)

    def __repr__(self) -> str:
        return (f"CmrPretrainAugment(size={self.size}, flip_p={self.flip_p}, rotation_p={self.rotation_p}, "
                f"degrees={self.degrees}, brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, scale={self.scale}, ratio={self.ratio}, p={self.p})")
