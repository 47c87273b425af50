"""Training-time augmentation (method.md §4). Applied to training splits only, including CV folds.

ECG transforms take a torch tensor (leads, T) or a batch (B, leads, T) and draw their random
numbers per sample. `generator` makes them reproducible in tests.
"""
from __future__ import annotations

import math

import torch
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
