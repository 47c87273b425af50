"""CMR preprocessing exactly as method.md section 2: middle slice, frames [ED, mid, ES], 210 x 210, min-max."""
from __future__ import annotations

import numbers

import numpy as np

from cardio_core.errors import RecordError

IMAGE_SIZE = 210


class CmrPreprocessingError(RecordError, ValueError):
    """An exam that cannot be preprocessed. Also a ValueError, so callers catching either see it."""

    def __init__(self, problem: str, source: str | None = None):
        super().__init__(source or "<cmr volume>", problem)


def _frame_number(value, name: str, n_frames: int, source) -> int:
    if isinstance(value, bool):
        raise CmrPreprocessingError(f"{name} must be a whole frame number, got {value!r}", source)
    if not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            value = int(value)
        else:
            raise CmrPreprocessingError(f"{name} must be a whole frame number, got {value!r}", source)
    if not 1 <= value <= n_frames:
        raise CmrPreprocessingError(
            f"{name} = {value} is outside the frames 1..{n_frames} (Info.cfg numbers frames from 1)", source)
    return int(value)


def select_frames(ed: int, es: int, n_frames: int, *, source: str | None = None) -> tuple[int, int, int]:
    """0-based (ED, mid, ES) from Info.cfg's 1-based ED and ES.

    mid is halfway from ED to ES going forward in time, wrapping around the cycle when
    ES comes before ED: (ED + ES) // 2, or ((ED + ES + T) // 2) % T when ED > ES.
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, numbers.Integral) or n_frames < 1:
        raise CmrPreprocessingError(f"the volume must have at least one frame, got {n_frames!r}", source)
    ed0 = _frame_number(ed, "ED", n_frames, source) - 1
    es0 = _frame_number(es, "ES", n_frames, source) - 1
    if ed0 <= es0:
        mid0 = (ed0 + es0) // 2
    else:
        mid0 = ((ed0 + es0 + n_frames) // 2) % n_frames
    return ed0, mid0, es0


def center_crop_or_pad(img2d, size: int = IMAGE_SIZE) -> np.ndarray:
    """Centre-crop or zero-pad each axis of a 2-D image to `size` (extra pixel on the end side)."""
    img = np.asarray(img2d)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {img.shape}")
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    out = np.zeros((size, size), dtype=img.dtype)
    src, dst = [], []
    for n in img.shape:
        if n >= size:                         # crop
            start = (n - size) // 2
            src.append(slice(start, start + size))
            dst.append(slice(0, size))
        else:                                 # pad
            start = (size - n) // 2
            src.append(slice(0, n))
            dst.append(slice(start, start + n))
    out[tuple(dst)] = img[tuple(src)]
    return out


def _min_max(channel: np.ndarray) -> np.ndarray:
    lo, hi = channel.min(), channel.max()
    if hi == lo:                              # constant channel (e.g. all padding) -> 0, not NaN
        return np.zeros_like(channel)
    return (channel - lo) / (hi - lo)


def preprocess_cmr(volume, ed: int, es: int, *, size: int = IMAGE_SIZE, source: str | None = None) -> np.ndarray:
    """(x, y, z, t) cine volume + Info.cfg ED/ES (1-based) -> (3, size, size) float32 in [0, 1].

    Middle slice z = Z // 2; channels [ED, mid, ES] (see select_frames); each centre-cropped
    or zero-padded to size x size, then min-max scaled on its own.
    """
    vol = np.asarray(volume)
    if vol.ndim != 4:
        raise CmrPreprocessingError(f"expected a 4-D (x, y, slices, frames) volume, got shape {vol.shape}", source)
    if min(vol.shape) < 1:
        raise CmrPreprocessingError(f"the volume is empty (shape {vol.shape})", source)
    if not np.issubdtype(vol.dtype, np.number):
        raise CmrPreprocessingError(f"volume dtype {vol.dtype} is not numeric", source)
    frames = select_frames(ed, es, vol.shape[3], source=source)
    z = vol.shape[2] // 2
    images = vol[:, :, z, list(frames)].astype(np.float64)       # (x, y, 3)
    if not np.all(np.isfinite(images)):
        raise CmrPreprocessingError("the selected slice contains NaN or inf", source)
    # Pad with zeros before min-max, as the recipe orders it: padding then counts in the range.
    out = np.stack([_min_max(center_crop_or_pad(images[:, :, c], size)) for c in range(3)])
    return out.astype(np.float32)
