"""ECG preprocessing exactly as method.md section 2 (the order matters).

1. first 5,000 samples at 500 Hz      2. NaN/inf -> 0
3. clip to +-4 std (one std over the whole record, centred on 0)
4. baseline removal per lead by asymmetric least squares (lam 1e7, p 0.3, 5 iterations)
5. per lead-group normalisation        6. (at load time) crop_ecg to 2,500 samples

The records go through this once, at ingest; `crop_ecg` runs in the data loader.
"""
from __future__ import annotations

import numbers

import numpy as np

from cardio_core.errors import RecordError
from cardio_core.labels import LEAD_GROUPS, LEADS

FS = 500
N_SAMPLES = 5000
CROP_LENGTH = 2500
CLIP_STD = 4.0
ALS_LAM = 1e7
ALS_P = 0.3
ALS_N_ITER = 5
NORM_EPS = 1e-12


# LEAD_GROUPS are runs of consecutive leads (I-III, aVR-aVF, V1-V6); slices give views.
_GROUP_SLICES = tuple(slice(g[0], g[-1] + 1) for g in LEAD_GROUPS)
assert [list(range(12))[s] for s in _GROUP_SLICES] == [list(g) for g in LEAD_GROUPS]


class PreprocessingError(RecordError, ValueError):
    """A record that cannot be preprocessed. Also a ValueError, so callers catching either see it."""

    def __init__(self, problem: str, source: str | None = None):
        super().__init__(source or "<ecg array>", problem)


# -- step 4: asymmetric least squares ------------------------------------------------

def reference_als(y, lam: float = ALS_LAM, p: float = ALS_P, n_iter: int = ALS_N_ITER) -> np.ndarray:
    """The published Eilers & Boelens ALS baseline of one signal, as the MMCL code runs it.

    Plain scipy.sparse + spsolve, one lead at a time (~40 ms per 5,000-sample lead). Kept as
    the ground truth for tests and the benchmark, not used by the product.
    """
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"reference_als takes one signal (1-D), got shape {y.shape}")
    n = len(y)
    D = sparse.diags([1.0, -2.0, 1.0], [0, -1, -2], shape=(n, n - 2))
    penalty = lam * D.dot(D.transpose())
    w = np.ones(n)
    for _ in range(n_iter):
        W = sparse.spdiags(w, 0, n, n)
        z = spsolve(sparse.csc_matrix(W + penalty), w * y)
        # Published weights: an exact tie y == z gets weight 0 (a flat lead makes W all zero).
        w = p * (y > z) + (1 - p) * (y < z)
    return z


def _numba_als():
    """Compile (or load from numba's on-disk cache) the batched ALS kernel on first use."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def als_columns(y, pen_diag, pen_off1, pen_off2, p, n_iter, z):
        # Solves (W + lam D'D) z = W y n_iter times per column, reweighting in between, by a
        # pentadiagonal LDL' factorisation. Signals run along the slow axis and leads along
        # the fast one, so each step of the (serial) recurrences runs for all leads in SIMD.
        # y: (n, m). z: (n + 2, m), rows n, n+1 zero. pen_*: bands of lam D'D, shifted so
        # that entry k belongs to row k - 2; entries 0 and 1 are zero. With zero padding the
        # first two rows need no special case. L is stored as its sub-diagonals l1, l2 and
        # e = l1 * d, which is all the factorisation needs from the previous rows.
        n, m = y.shape
        q = 1.0 - p
        w = np.ones((n, m))
        l1 = np.zeros((n + 2, m))
        l2 = np.zeros((n + 2, m))
        e = np.zeros((n + 2, m))
        u = np.zeros((n + 2, m))
        v = np.empty((n, m))
        for _ in range(n_iter):
            for i in range(n):
                k = i + 2
                c1 = pen_off2[k - 1]
                c2 = pen_off2[k - 2]
                a = pen_diag[k]
                b = pen_off1[k]
                c = pen_off2[k]
                for j in range(m):
                    ek = b - c1 * l1[k - 1, j]
                    inv_d = 1.0 / (a + w[i, j] - l1[k - 1, j] * e[k - 1, j] - l2[k - 2, j] * c2)
                    uk = w[i, j] * y[i, j] - l1[k - 1, j] * u[k - 1, j] - l2[k - 2, j] * u[k - 2, j]
                    e[k, j] = ek
                    l1[k, j] = ek * inv_d
                    l2[k, j] = c * inv_d
                    u[k, j] = uk
                    v[i, j] = uk * inv_d
            for i in range(n - 1, -1, -1):
                k = i + 2
                for j in range(m):
                    z[i, j] = v[i, j] - l1[k, j] * z[i + 1, j] - l2[k, j] * z[i + 2, j]
            for i in range(n):
                for j in range(m):
                    # As published (p above, 1-p below the baseline), except that an exact
                    # tie gets 1-p instead of 0 (as in pybaselines): on a flat lead all
                    # weights would be 0 and W + lam D'D singular, leaving the result to how
                    # the solver treats a singular matrix. 1-p keeps it positive definite.
                    w[i, j] = p if y[i, j] > z[i, j] else q
        return z

    return als_columns


def _penalty_bands(n: int, lam: float):
    """Diagonal, first and second off-diagonal of lam * D D' (D: n x n-2 second differences), padded by 2."""
    cols = n - 2
    diag, off1, off2 = np.zeros(n + 2), np.zeros(n + 2), np.zeros(n + 2)
    for offset, coef in enumerate((1.0, -2.0, 1.0)):
        diag[2 + offset:2 + offset + cols] += coef * coef
    off1[2:2 + cols] -= 2.0   # column k = i:     D[i, i] * D[i+1, i]
    off1[3:3 + cols] -= 2.0   # column k = i - 1: D[i, i-1] * D[i+1, i-1]
    off2[2:2 + cols] = 1.0    # column k = i:     D[i, i] * D[i+2, i]
    return lam * diag, lam * off1, lam * off2


_ALS_KERNEL = None
_ALS_BLOCK = 16   # signals per kernel call: the factors of 16 x 5000 samples stay in cache


def als_baseline(y, lam: float = ALS_LAM, p: float = ALS_P, n_iter: int = ALS_N_ITER) -> np.ndarray:
    """ALS baseline (Eilers & Boelens) along the last axis of y (..., n); float64, same shape.

    Equals `reference_als` signal by signal (to ~1e-9 of the signal scale; exact ties
    y == z aside, see the kernel) and is ~200x faster. Why not pybaselines.whittaker.asls
    (same result with max_iter=n_iter-1, tol=-1)? It costs ~18 ms per 12-lead record,
    which alone caps ingest near 110 records/s on two cores; this numba kernel solves a
    block of leads at once in ~1 ms per record.
    """
    global _ALS_KERNEL
    y = np.asarray(y, dtype=np.float64)
    if y.ndim < 1 or y.shape[-1] < 3:
        raise ValueError(f"als_baseline needs at least 3 samples along the last axis, got shape {y.shape}")
    if not (lam > 0):
        raise ValueError(f"lam must be > 0, got {lam}")
    if not (0 < p < 1):
        raise ValueError(f"p must be between 0 and 1, got {p}")
    if isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}")
    if not np.all(np.isfinite(y)):
        raise ValueError("als_baseline got NaN or inf; zero-fill them first (method step 2)")
    if _ALS_KERNEL is None:
        _ALS_KERNEL = _numba_als()
    n = y.shape[-1]
    rows = y.reshape(-1, n)
    bands = _penalty_bands(n, float(lam))
    out = np.empty_like(rows)
    for start in range(0, len(rows), _ALS_BLOCK):
        block = np.ascontiguousarray(rows[start:start + _ALS_BLOCK].T)
        z = np.zeros((n + 2, block.shape[1]))
        _ALS_KERNEL(block, *bands, float(p), int(n_iter), z)
        out[start:start + _ALS_BLOCK] = z[:n].T
    return out.reshape(y.shape)


# -- the pipeline --------------------------------------------------------------------

def _check_batch(signals, fs, source) -> np.ndarray:
    if isinstance(fs, bool) or not isinstance(fs, numbers.Real) or fs != FS:
        raise PreprocessingError(
            f"sampling rate is {fs} Hz; preprocessing needs {FS} Hz (the reader must resample)", source)
    x = np.asarray(signals)
    if x.ndim != 3 or x.shape[1] != len(LEADS):
        raise PreprocessingError(
            f"expected (12 leads, samples) per record, got array of shape {x.shape[1:] if x.ndim == 3 else x.shape}",
            source)
    if x.shape[-1] < N_SAMPLES:
        raise PreprocessingError(
            f"record has {x.shape[-1]} samples ({x.shape[-1] / FS:.2f} s); need at least {N_SAMPLES} "
            f"({N_SAMPLES // FS} s at {FS} Hz)", source)
    if not np.issubdtype(x.dtype, np.number):
        raise PreprocessingError(f"signal dtype {x.dtype} is not numeric", source)
    return x


def preprocess_ecg_batch(signals, fs: int = FS, *, source: str | None = None) -> np.ndarray:
    """Steps 1-5 for a batch (B, 12, n) -> (B, 12, 5000) float32; per-record statistics throughout."""
    x = _check_batch(signals, fs, source)
    # 1. truncate (a copy, in float64 for the solver)
    x = np.array(x[..., :N_SAMPLES], dtype=np.float64)
    # 2. NaN/inf -> 0
    np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    # 3. clip at +-4 std; one std per record over all leads and samples, centred on 0 (not on the mean)
    limit = CLIP_STD * x.std(axis=(1, 2), keepdims=True)
    np.clip(x, -limit, limit, out=x)
    # 4. baseline wander
    x -= als_baseline(x)
    # 5. one mean and one variance per lead group, in place on each group's view
    for group in _GROUP_SLICES:
        part = x[:, group]
        part -= part.mean(axis=(1, 2), keepdims=True)
        part /= np.sqrt(part.var(axis=(1, 2), keepdims=True) + NORM_EPS)
    return x.astype(np.float32)


def preprocess_ecg(signal, fs: int = FS, *, source: str | None = None) -> np.ndarray:
    """Steps 1-5 for one record (12, n) at 500 Hz -> (12, 5000) float32.

    Raises PreprocessingError (a RecordError and a ValueError, naming `source` when given)
    for a wrong sampling rate, shape, or a record shorter than 10 s.
    """
    x = np.asarray(signal)
    if x.ndim != 2:
        raise PreprocessingError(f"expected a (12, samples) array, got shape {x.shape}", source)
    return preprocess_ecg_batch(x[None], fs, source=source)[0]


def crop_ecg(x, length: int = CROP_LENGTH, *, train: bool, rng=None):
    """Step 6: a window of `length` samples along the last axis.

    Training: a random start from `rng` (np.random.Generator or seed; None = fresh entropy).
    Otherwise samples 0..length-1, so validation, test and embeddings are deterministic.
    Returns a view (slicing), so it works for numpy arrays and torch tensors alike.
    """
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    n = x.shape[-1]
    if n < length:
        raise ValueError(f"cannot crop {length} samples from a signal of {n}")
    if not train:
        return x[..., :length]
    start = int(np.random.default_rng(rng).integers(0, n - length + 1))
    return x[..., start:start + length]
