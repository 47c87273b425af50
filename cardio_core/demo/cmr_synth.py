"""Synthetic short-axis cine MRI with LV, myocardium and RV masks per ACDC group.

Geometry follows data_formats.md §6.2: a half-ellipsoid LV from base (z = 0) to
apex, a raised-cosine volume curve over the cycle, a myocardial ring of constant
area (so it thickens in systole), an RV crescent against the septum. Cavity
sizes are chosen on the *rasterised* pixel grid, so the mask volumes hit the
target EDV/ESV to within one pixel per slice: the indices recomputed from the
masks (`cardiac_indices`) land where the group's criteria say they should.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from cardio_core.labels import ACDC_GROUPS

__all__ = ["synthesize_cine", "cardiac_indices", "meets_group_criteria", "bsa_mosteller",
           "GROUP_TARGETS", "RV_LABEL", "MYO_LABEL", "LV_LABEL"]

RV_LABEL, MYO_LABEL, LV_LABEL = 1, 2, 3
MYO_DENSITY_G_PER_ML = 1.05

# group -> ranges drawn uniformly: LVEDVi mL/m², LVEF, ED wall mm, RVEDVi mL/m², RVEF
GROUP_TARGETS = {
    "NOR": dict(lvedvi=(65, 78), lvef=(0.58, 0.70), wall=(8, 10), rvedvi=(65, 85), rvef=(0.50, 0.62)),
    "DCM": dict(lvedvi=(130, 175), lvef=(0.15, 0.33), wall=(6, 7.5), rvedvi=(70, 100), rvef=(0.46, 0.55)),
    "HCM": dict(lvedvi=(55, 80), lvef=(0.65, 0.80), wall=(17, 24), rvedvi=(55, 80), rvef=(0.55, 0.65)),
    "MINF": dict(lvedvi=(95, 130), lvef=(0.22, 0.36), wall=(8, 10), rvedvi=(65, 90), rvef=(0.46, 0.60)),
    "RV": dict(lvedvi=(65, 78), lvef=(0.55, 0.68), wall=(8, 10), rvedvi=(125, 170), rvef=(0.20, 0.37)),
}


def bsa_mosteller(height_cm: float, weight_kg: float) -> float:
    """Body surface area in m² (Mosteller)."""
    if not (height_cm > 0 and weight_kg > 0):
        raise ValueError(f"height and weight must be positive, got {height_cm}, {weight_kg}")
    return float(np.sqrt(height_cm * weight_kg / 3600.0))


def _volume_curve(edv: float, esv: float, n_frames: int, es_idx: int) -> np.ndarray:
    """Raised cosine EDV -> ESV (at es_idx) -> back towards EDV."""
    k = np.arange(n_frames)
    down = (1 + np.cos(np.pi * k / es_idx)) / 2
    up = (1 - np.cos(np.pi * (k - es_idx) / (n_frames - es_idx))) / 2
    frac = np.where(k <= es_idx, down, up)
    return esv + (edv - esv) * frac


def _nearest_n(dist: np.ndarray, allowed: np.ndarray, n: int) -> np.ndarray:
    """Mask of the n allowed pixels with the smallest `dist` (a disc cut to the exact pixel count)."""
    out = np.zeros(dist.shape, dtype=bool)
    n = int(n)
    if n <= 0:
        return out
    flat = np.flatnonzero(allowed)
    if n > flat.size:
        raise ValueError(f"cannot place {n} pixels, only {flat.size} available")
    keep = flat[np.argpartition(dist.ravel()[flat], n - 1)[:n]]
    out.ravel()[keep] = True
    return out


def _first_n_allowed(order: np.ndarray, allowed: np.ndarray, n: int) -> np.ndarray:
    """`_nearest_n` for a distance map already sorted into `order` (flat indices, nearest first).

    The LV and RV distance maps do not change over slices and frames, so sorting them once
    replaces a partition per (slice, frame)."""
    out = np.zeros(allowed.shape, dtype=bool)
    n = int(n)
    if n <= 0:
        return out
    candidates = order[allowed.ravel()[order]]
    if n > candidates.size:
        raise ValueError(f"cannot place {n} pixels, only {candidates.size} available")
    out.ravel()[candidates[:n]] = True
    return out


def _myocardial_ring(lv: np.ndarray, thickness: np.ndarray, n: int, margin: int) -> np.ndarray:
    """The n pixels outside the cavity nearest to it, distances divided by the local wall
    thickness: a ring of constant area (so it thickens in systole).

    Computed in a box `margin` pixels around the cavity, which is exact when every chosen
    pixel is nearer than anything outside the box could be; otherwise on the whole image."""
    rows, cols = np.flatnonzero(lv.any(axis=1)), np.flatnonzero(lv.any(axis=0))
    if rows.size:
        box = (slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
               slice(max(cols[0] - margin, 0), cols[-1] + margin + 1))
        d_ring = ndimage.distance_transform_edt(~lv[box]) / thickness[box]
        ring = _nearest_n(d_ring, ~lv[box], n)
        # a pixel outside the box is >= margin + 1 px from the cavity
        if n <= 0 or d_ring[ring].max() < (margin + 1) / thickness.max():
            out = np.zeros_like(lv)
            out[box] = ring
            return out
    return _nearest_n(ndimage.distance_transform_edt(~lv) / thickness, ~lv, n)


def synthesize_cine(group: str, rng: np.random.Generator, *, shape: Sequence[int] = (128, 128),
                    n_slices: int = 8, n_frames: int = 16,
                    spacing: Sequence[float] = (1.7, 1.7, 10.0), bsa: float = 1.9,
                    ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Synthesise one ACDC-style cine for a diagnostic group.

    Returns (volume, masks, ed, es): volume (x, y, z, t) float32 SSFP-like
    intensities, masks (x, y, z, t) uint8 with 1 RV, 2 myocardium, 3 LV cavity,
    and ED/ES as 1-based frame numbers (the Info.cfg convention).
    """
    if group not in ACDC_GROUPS:
        raise ValueError(f"group must be one of {ACDC_GROUPS}, got {group!r}")
    nx, ny = (int(v) for v in shape)
    if nx < 64 or ny < 64 or n_slices < 3 or n_frames < 6:
        raise ValueError(f"need shape >= 64x64, >= 3 slices, >= 6 frames; got {shape}, {n_slices}, {n_frames}")
    sx, sy, sz = (float(v) for v in spacing)
    if min(sx, sy, sz) <= 0 or not bsa > 0:
        raise ValueError(f"spacing and bsa must be positive, got {spacing}, {bsa}")
    tg = {k: rng.uniform(*v) for k, v in GROUP_TARGETS[group].items()}
    px_ml = sx * sy * sz / 1000.0            # one voxel in mL

    ed_idx = 0
    es_idx = int(round(0.35 * n_frames))
    lv_edv, rv_edv = tg["lvedvi"] * bsa, tg["rvedvi"] * bsa
    lv_curve = _volume_curve(lv_edv, lv_edv * (1 - tg["lvef"]), n_frames, es_idx)
    rv_curve = _volume_curve(rv_edv, rv_edv * (1 - tg["rvef"]), n_frames, es_idx)

    # half-ellipsoid from base to apex: slice share of volume ∝ s(z)²
    s2 = 1 - ((np.arange(n_slices) + 0.5) / n_slices) ** 2
    share = s2 / s2.sum()
    lv_px = np.rint(lv_curve[None, :] * share[:, None] / px_ml).astype(int)    # (z, t)
    rv_px = np.rint(rv_curve[None, :] * share[:, None] / px_ml).astype(int)
    wall_px = tg["wall"] / sx
    r_ed = np.sqrt(lv_px[:, 0] / np.pi)
    myo_px = np.rint(np.pi * ((r_ed + wall_px * np.sqrt(s2) ** 0.3) ** 2 - r_ed ** 2)).astype(int)
    need = lv_px[:, 0] + rv_px[:, 0] + myo_px
    if need.max() > 0.6 * nx * ny:
        raise ValueError(f"heart does not fit a {nx}x{ny} image at spacing {sx} mm; use a larger image")

    # LV centre slightly right of the image centre (RV goes to image-left); sub-pixel
    # offsets avoid distance ties so pixel counts are exact
    cx = nx / 2 + rng.uniform(2, 6) + 0.37
    cy = ny / 2 + rng.uniform(-4, 4) + 0.21
    xx, yy = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    d_lv = np.hypot(xx - cx, yy - cy)
    ang = np.arctan2(yy - cy, xx - cx)
    septum_dir = np.pi + rng.uniform(-0.3, 0.3)        # towards the RV (image-left)
    # wall-thickness profile by angle: HCM thick septum, MINF thin akinetic sector
    cos_sep = np.cos(ang - septum_dir)
    thickness = np.ones_like(d_lv)
    infarct = np.zeros_like(d_lv, dtype=bool)
    if group == "HCM":
        thickness = 1.0 + 0.6 * np.clip(cos_sep, 0, None) ** 2
    if group == "MINF":
        half_width = np.deg2rad(rng.uniform(90, 120)) / 2
        centre = septum_dir + np.pi + rng.uniform(-1.0, 1.0)    # free wall
        infarct = np.abs(np.angle(np.exp(1j * (ang - centre)))) <= half_width
        thickness = np.where(infarct, 0.6, 1.0)

    masks = np.zeros((nx, ny, n_slices, n_frames), dtype=np.uint8)
    ring_margin = int(np.ceil(3 * wall_px * thickness.max())) + 2
    lv_order = np.argsort(d_lv, axis=None, kind="stable")
    rv_offset = rv_order = None
    everywhere = np.ones_like(infarct)
    for z in range(n_slices):
        lv_ed_mask = _first_n_allowed(lv_order, everywhere, lv_px[z, 0])
        akinetic = infarct & lv_ed_mask        # keeps its ED position all cycle long
        # RV disc centre: beside the LV towards the septum, at the ED outer radius
        r_out = np.sqrt((lv_px[z, 0] + myo_px[z]) / np.pi)
        if rv_offset is None:
            rv_offset = r_out * 1.0 + 2.0
        if rv_order is None:    # the RV centre is the same on every slice
            rcx, rcy = cx + rv_offset * np.cos(septum_dir), cy + rv_offset * np.sin(septum_dir)
            rv_order = np.argsort(np.hypot(xx - rcx, yy - rcy), axis=None, kind="stable")
        for t in range(n_frames):
            n_free = lv_px[z, t] - int(akinetic.sum())
            lv = akinetic | _first_n_allowed(lv_order, ~akinetic & ~infarct if n_free > 0 else ~akinetic,
                                             max(n_free, 0))
            if n_free < 0:   # should not happen with the targets above; fall back to a disc
                lv = _first_n_allowed(lv_order, everywhere, lv_px[z, t])
            myo = _myocardial_ring(lv, thickness, myo_px[z], ring_margin)
            rv = _first_n_allowed(rv_order, ~lv & ~myo, rv_px[z, t])
            m = masks[:, :, z, t]
            m[rv] = RV_LABEL
            m[myo] = MYO_LABEL
            m[lv] = LV_LABEL

    volume = _render_ssfp(masks, rng, (cx, cy))
    return volume, masks, ed_idx + 1, es_idx + 1


def _render_ssfp(masks: np.ndarray, rng: np.random.Generator, centre) -> np.ndarray:
    """SSFP-like intensities: bright blood, dark myocardium, textured tissue, Rician-like noise."""
    nx, ny, nz, nt = masks.shape
    xx, yy = np.ogrid[:nx, :ny]
    body = ((xx - nx / 2) / (0.47 * nx)) ** 2 + ((yy - ny / 2) / (0.42 * ny)) ** 2 <= 1
    # float32 throughout: the 4-D arrays are the bulk of the demo generator's time
    texture = ndimage.gaussian_filter(rng.standard_normal((nx, ny, nz), dtype=np.float32), sigma=(4, 4, 0))
    texture /= texture.std() + 1e-9
    tissue = np.where(body[..., None], rng.uniform(35, 55) + 8 * texture, 2.0).astype(np.float32)
    blood, myo = rng.uniform(250, 320), rng.uniform(70, 110)
    level = np.array([0.0, blood, myo, blood], dtype=np.float32)      # by label: bg, RV, MYO, LV
    vol = np.where(masks == 0, tissue[..., None], level[masks])
    vol = ndimage.gaussian_filter(vol, sigma=(0.7, 0.7, 0, 0))
    noise_sd = np.float32(rng.uniform(6, 12))
    real = vol + noise_sd * rng.standard_normal(vol.shape, dtype=np.float32)
    imag = noise_sd * rng.standard_normal(vol.shape, dtype=np.float32)
    # scanner magnitudes are integers; integer-valued float32 also gzips ~3x better
    return np.rint(np.hypot(real, imag))


def cardiac_indices(masks: np.ndarray, spacing: Sequence[float], ed: int, es: int,
                    bsa: float | None = None) -> dict:
    """Volumes (mL), ejection fractions, LV mass (g) and max ED wall thickness (mm) from masks.

    `masks` is (x, y, z, t) or a pair handled by the caller; `ed`/`es` are 1-based.
    Indexed values (per m²) are added when `bsa` is given.
    """
    masks = np.asarray(masks)
    if masks.ndim != 4:
        raise ValueError(f"masks must be (x, y, z, t), got shape {masks.shape}")
    if not (1 <= ed <= masks.shape[3] and 1 <= es <= masks.shape[3]):
        raise ValueError(f"ed/es must be 1-based frames within 1..{masks.shape[3]}, got {ed}, {es}")
    sx, sy, sz = (float(v) for v in spacing)
    px_ml = sx * sy * sz / 1000.0
    m_ed, m_es = masks[..., ed - 1], masks[..., es - 1]

    def vol(m, label):
        return float((m == label).sum() * px_ml)

    out = dict(lvedv=vol(m_ed, LV_LABEL), lvesv=vol(m_es, LV_LABEL),
               rvedv=vol(m_ed, RV_LABEL), rvesv=vol(m_es, RV_LABEL),
               lv_mass=vol(m_ed, MYO_LABEL) * MYO_DENSITY_G_PER_ML)
    out["lvef"] = 1 - out["lvesv"] / out["lvedv"] if out["lvedv"] else float("nan")
    out["rvef"] = 1 - out["rvesv"] / out["rvedv"] if out["rvedv"] else float("nan")
    # thickness = diameter of the largest disc inscribed in the myocardium, per slice
    wall = 0.0
    for z in range(m_ed.shape[2]):
        myo = m_ed[:, :, z] == MYO_LABEL
        if myo.any():
            wall = max(wall, 2 * float(ndimage.distance_transform_edt(myo, sampling=(sx, sy)).max()))
    out["max_wall_mm"] = wall
    if bsa is not None:
        for k in ("lvedv", "rvedv", "lv_mass"):
            out[k + "i"] = out[k] / bsa
    return out


def meets_group_criteria(indices: dict, group: str) -> bool:
    """Whether indexed measurements satisfy the ACDC group definition (data_formats.md §6.2)."""
    if group not in ACDC_GROUPS:
        raise ValueError(f"group must be one of {ACDC_GROUPS}, got {group!r}")
    lvef, rvef = indices["lvef"], indices["rvef"]
    lvedvi, rvedvi = indices["lvedvi"], indices["rvedvi"]
    if group == "NOR":
        return lvef > 0.50 and lvedvi < 90 and rvedvi < 100 and rvef > 0.40 and indices["max_wall_mm"] < 12.5
    if group == "DCM":
        return lvef < 0.40 and lvedvi > 100
    if group == "HCM":
        return lvef > 0.55 and indices["lv_massi"] > 110 and indices["max_wall_mm"] > 15
    if group == "MINF":
        return lvef < 0.40
    return rvedvi > 110 or rvef < 0.40   # RV
