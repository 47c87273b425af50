"""A vectorised 12-lead ECG generator built on a moving cardiac dipole.

Each beat is a sum of Gaussian waves on three orthogonal components (X left,
Y inferior, Z anterior). The dipole is projected onto electrode potentials; the
limb leads are then derived with the Einthoven/Goldberger identities, as real
electrocardiographs derive them, so III = II - I etc. hold to the microvolt.
Class physiology follows data_formats.md §6.1 (rates, intervals, axes, bundle
branch blocks, pacing, fibrillation, hypertrophy, ST-T changes).

Everything is numpy on whole arrays: one 10 s record costs a few milliseconds.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import signal as sps

from cardio_core.labels import CLASSES

__all__ = ["synthesize_ecg", "DEVICES", "RHYTHM_PRIORITY"]

DEVICES = ("chapman", "ptbxl")
# When several rhythm-like labels are present, the first one in this order drives
# the beat timing (a paced record with AFIB underneath is paced on the ECG).
RHYTHM_PRIORITY = ("PACE", "CAVB", "AFIB", "GSVT", "SB", "SR")

_CHEST_ANGLES = np.deg2rad([120.0, 95.0, 75.0, 55.0, 30.0, 5.0])
_CHEST_GAIN = 1.7
# beat kinds
_NORMAL, _APB, _VPB, _PACED, _ESCAPE = range(5)


def _direction(theta_deg, elev_deg) -> np.ndarray:
    """Unit vectors (…, 3) from frontal angle (0 = left, 90 = inferior) and elevation toward anterior."""
    th = np.deg2rad(np.asarray(theta_deg, dtype=float))
    el = np.deg2rad(np.asarray(elev_deg, dtype=float))
    return np.stack([np.cos(el) * np.cos(th), np.cos(el) * np.sin(th), np.sin(el)], axis=-1)


class _Waves:
    """Collects Gaussian waves (centre s, sigma s, amplitude vector mV) before rendering."""

    def __init__(self):
        self.c, self.s, self.a = [], [], []

    def add(self, centres, sigma, vectors):
        centres = np.atleast_1d(np.asarray(centres, dtype=float))
        if centres.size == 0:
            return
        self.c.append(centres)
        self.s.append(np.broadcast_to(np.asarray(sigma, dtype=float), centres.shape))
        self.a.append(np.broadcast_to(np.asarray(vectors, dtype=float), centres.shape + (3,)))

    def render(self, n: int, fs: float) -> np.ndarray:
        """Sum all waves into a (3, n) dipole, each wave evaluated only within ±5 sigma."""
        out = np.zeros((3, n))
        if not self.c:
            return out
        c = np.concatenate(self.c) * fs
        s = np.concatenate(self.s) * fs
        a = np.concatenate(self.a)
        half = int(np.ceil(5 * s.max()))
        idx = np.rint(c).astype(np.int64)[:, None] + np.arange(-half, half + 1)[None, :]
        g = np.exp(-0.5 * ((idx - c[:, None]) / s[:, None]) ** 2)
        g[np.abs(idx - c[:, None]) > 5 * s[:, None]] = 0.0
        inside = (idx >= 0) & (idx < n)
        flat_idx = idx[inside]
        for k in range(3):
            out[k] = np.bincount(flat_idx, weights=(g * a[:, k:k + 1])[inside], minlength=n)
        return out


def _qt(rr):
    """QT in seconds from RR (Bazett-like: 400 ms at 60 bpm), bounded to physiological values."""
    return np.clip(0.40 * np.sqrt(rr), 0.26, 0.52)


def _sinus_times(rng, duration, hr, jitter_sd, *, resp_depth=0.03):
    """Beat onsets from -1 s to duration + 1 s with Gaussian jitter and respiratory modulation."""
    rr0 = 60.0 / hr
    n = int((duration + 2.0) / rr0 * 1.5) + 4
    resp_f = rng.uniform(0.2, 0.33)
    resp_phase = rng.uniform(0, 2 * np.pi)
    rr = rr0 + rng.normal(0, jitter_sd, n)
    t = -rng.uniform(0.3, 1.0) + np.concatenate([[0.0], np.cumsum(rr)[:-1]])
    rr = rr * (1 + resp_depth * np.sin(2 * np.pi * resp_f * t + resp_phase))
    t = t[0] + np.concatenate([[0.0], np.cumsum(rr)[:-1]])
    return t[t < duration + 1.0]


def _check_args(classes, fs, n_samples, device, sex):
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise ValueError(f"unknown classes {unknown}; expected names from labels.CLASSES")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if fs <= 0 or n_samples <= 0:
        raise ValueError(f"fs and n_samples must be positive, got fs={fs}, n_samples={n_samples}")
    if sex not in (None, "M", "F"):
        raise ValueError(f"sex must be 'M', 'F' or None, got {sex!r}")


def synthesize_ecg(classes: Sequence[str], rng: np.random.Generator, *, fs: int = 500,
                   n_samples: int = 5000, age: float | None = None, sex: str | None = None,
                   device: str = "chapman", physiology: dict | None = None) -> tuple[np.ndarray, dict]:
    """Synthesise one 12-lead ECG showing the given classes.

    `physiology` (the paired cohort's heart, optional) sets what the heart dictates instead of the class's
    own draw: `hr` (beats/min, sinus rhythms only), `qrs_scale` (QRS voltage, multiplied in: a heavier LV is
    a larger dipole) and `qrs_stretch` (QRS duration factor: a dilated LV conducts for longer). The random
    draws happen either way, so without it every record keeps its bytes.

    Returns (signal_mv, info): signal_mv is (12, n_samples) float32 in mV, leads in
    labels.LEADS order, quantised to 1 µV; info holds the targets used (rhythm,
    hr, pr_ms, qrs_ms, qt_ms, axis_deg) and the QRS onset times in seconds.
    """
    classes = set(classes)
    _check_args(classes, fs, n_samples, device, sex)
    physiology = dict(physiology or {})
    unknown = set(physiology) - {"hr", "qrs_scale", "qrs_stretch"}
    if unknown:
        raise ValueError(f"unknown physiology keys {sorted(unknown)}; expected hr, qrs_scale, qrs_stretch")
    duration = n_samples / fs
    older = 0.0 if age is None or age != age else float(np.clip((age - 50) / 40, 0, 1))

    rhythm = next((r for r in RHYTHM_PRIORITY if r in classes), "SR")
    info: dict = {"rhythm": rhythm, "device": device}

    # -- axis and voltage ---------------------------------------------------------
    if rhythm == "PACE":
        axis = rng.uniform(-75, -50)
    elif "LAFB" in classes:
        axis = rng.uniform(-80, -50)
    elif "LAD" in classes:
        axis = rng.uniform(-75, -40)
    elif "RVH" in classes or "RAD" in classes:
        axis = rng.uniform(105, 150)
    else:
        axis = rng.uniform(15, 75) - 15 * older   # axis drifts leftward with age
    r_amp = rng.uniform(1.0, 1.5) * (0.9 if sex == "F" else 1.0)
    qrs_scale = 1.0
    if "LVH" in classes:
        qrs_scale = rng.uniform(2.1, 2.7)
    if "LQV" in classes:
        qrs_scale = rng.uniform(0.22, 0.32)
    qrs_scale *= float(physiology.get("qrs_scale", 1.0))
    t_amp = rng.uniform(0.25, 0.4) * (0.5 if "LQV" in classes else 1.0)
    info["axis_deg"] = float(axis)

    # -- intervals ------------------------------------------------------------------
    pr = rng.uniform(0.13, 0.19)
    if "1AVB" in classes:
        pr = rng.uniform(0.22, 0.34)
    if "WPW" in classes:
        pr = rng.uniform(0.08, 0.11)

    # -- beat timing ----------------------------------------------------------------
    p_visible = True
    gsvt_kind = None
    if rhythm == "SB":
        hr = rng.uniform(42, 57)
        hr = float(physiology.get("hr", hr))
        onsets = _sinus_times(rng, duration, hr, rng.uniform(0.02, 0.05))
    elif rhythm == "GSVT":
        gsvt_kind = "ST" if rng.random() < 0.7 else "SVT"
        hr = rng.uniform(105, 150) if gsvt_kind == "ST" else rng.uniform(150, 200)
        p_visible = gsvt_kind == "ST"
        onsets = _sinus_times(rng, duration, hr, rng.uniform(0.003, 0.01), resp_depth=0.01)
    elif rhythm == "AFIB":
        hr = rng.uniform(70, 150)
        cv = rng.uniform(0.15, 0.30)
        mean_rr = 60.0 / hr
        n = int((duration + 2.0) / max(mean_rr * 0.6, 0.3)) + 4
        rr = np.maximum(rng.gamma(1 / cv**2, mean_rr * cv**2, n), 0.3)
        onsets = -rng.uniform(0.3, 1.0) + np.concatenate([[0.0], np.cumsum(rr)[:-1]])
        onsets = onsets[onsets < duration + 1.0]
        p_visible = False
    elif rhythm == "CAVB":
        hr = rng.uniform(30, 45)
        onsets = _sinus_times(rng, duration, hr, 0.01, resp_depth=0.0)
        p_visible = False   # P waves come from an independent atrial train below
    elif rhythm == "PACE":
        hr = rng.uniform(60, 80)
        onsets = _sinus_times(rng, duration, hr, 0.001, resp_depth=0.0)
        p_visible = rng.random() < 0.3   # atrial sensing, ventricular pacing
    else:   # SR, or no rhythm code at all
        hr = rng.uniform(62, 98)
        hr = float(physiology.get("hr", hr))
        onsets = _sinus_times(rng, duration, hr, rng.uniform(0.02, 0.05))
    info["gsvt_kind"] = gsvt_kind
    base_kind = {"PACE": _PACED, "CAVB": _ESCAPE}.get(rhythm, _NORMAL)
    kinds = np.full(onsets.size, base_kind)
    has_p = np.full(onsets.size, p_visible)

    # -- premature beats: APB resets the sinus node, VPB keeps it (compensatory) -----
    inside = np.flatnonzero((onsets > 0.6) & (onsets < duration - 0.8))
    for label, kind in (("APB", _APB), ("VPB", _VPB)):
        if label not in classes or inside.size < 3 or rhythm in ("AFIB", "PACE", "CAVB"):
            continue
        n_ect = int(rng.integers(1, 4))
        picks = np.sort(rng.choice(inside[1:-1], size=min(n_ect, inside.size - 2), replace=False))
        for i in picks:
            if kinds[i] != base_kind or kinds[i - 1] != base_kind:
                continue
            rr = onsets[i] - onsets[i - 1]
            if kind == _APB:
                new_t = onsets[i - 1] + rng.uniform(0.55, 0.8) * rr
                onsets[i:] -= onsets[i] - new_t       # non-compensatory pause
            else:
                onsets[i] = onsets[i - 1] + rng.uniform(0.5, 0.7) * rr   # next beat untouched
                has_p[i] = False
            kinds[i] = kind
    rr_prev = np.diff(onsets, prepend=onsets[0] - 60.0 / hr)
    info.update(hr=float(hr), pr_ms=float(pr * 1000) if p_visible else None,
                onsets_s=onsets[(onsets >= 0) & (onsets < duration)].tolist(),
                beat_kinds=kinds[(onsets >= 0) & (onsets < duration)].tolist())

    # -- per-beat amplitude: respiration and small beat-to-beat variation -------------
    beat_gain = (1 + 0.04 * np.sin(2 * np.pi * 0.25 * onsets + rng.uniform(0, 6.3))
                 ) * rng.normal(1, 0.015, onsets.size)

    w = _Waves()
    qrs_spans = []

    def add_beats(sel, offsets, sigmas, amps, thetas, elevs):
        """Add one template (lists of waves) to all beats in `sel`."""
        if not np.any(sel):
            return
        t0 = onsets[sel]
        gain = beat_gain[sel]
        for off, sg, am, th, el in zip(offsets, sigmas, amps, thetas, elevs):
            w.add(t0 + off, sg, (gain * am)[:, None] * _direction(th, el)[None, :])

    # normal (and APB, escape) ventricular template
    R = r_amp * qrs_scale
    r_elev = -25 if "LVH" in classes else -10
    off = [0.015, 0.045, 0.075]
    sig = [0.008, 0.011, 0.010]
    amp = [0.18 * qrs_scale, R, 0.35 * qrs_scale]
    th = [axis + 150, axis, axis + 160]
    el = [35, r_elev, -30]
    t_dir = (axis - 10, 20)
    if "RVH" in classes:
        amp[1] = R * 0.9
        el[1] = 40
        th[2], el[2] = 10, -20     # deep S in V5-V6
        amp[2] = 0.6
    if "LAFB" in classes:
        th[0], el[0], amp[0] = 80, 10, 0.25 * qrs_scale   # small q in aVL, r in inferior leads
    if "QWA" in classes:
        if rng.random() < 0.5:
            th[0], el[0] = -90, 0      # inferior Q in II, III, aVF
        else:
            th[0], el[0] = axis, -75   # anterior Q in V1-V4
        amp[0], sig[0], off[0] = 0.55 * max(qrs_scale, 0.6), 0.014, 0.02
    if "WPW" in classes:
        off.append(0.012)
        sig.append(0.018)
        amp.append(0.35 * qrs_scale)
        th.append(axis)
        el.append(0)
    if "CRBBB" in classes:
        off.append(0.105)
        sig.append(0.022)
        amp.append(0.55)
        th.append(180)
        el.append(55)
        t_dir = (axis - 10, -25)
    if "CLBBB" in classes:
        off, sig, amp, th, el = ([0.055, 0.105], [0.021, 0.021], [0.9 * qrs_scale, 0.9 * qrs_scale],
                                 [-10, -10], [-40, -40])
        t_dir = (170, 40)
    stretch = float(physiology.get("qrs_stretch", 1.0))
    if stretch != 1.0:
        off, sig = [o * stretch for o in off], [x * stretch for x in sig]
    normal_template = (off, sig, amp, th, el)
    qrs_spans.append(max(o + 2 * s for o, s in zip(off, sig)) - min(o - 2 * s for o, s in zip(off, sig)))

    escape_wide = rhythm == "CAVB" and rng.random() < 0.5
    for kind in (_NORMAL, _APB, _ESCAPE):
        sel = kinds == kind
        if kind == _ESCAPE and escape_wide:
            o, s, a, t_, e = normal_template
            add_beats(sel, [x * 1.6 for x in o], [x * 1.9 for x in s], a, t_, e)
        else:
            add_beats(sel, *normal_template)
    if escape_wide:
        qrs_spans[0] *= 1.7

    # ventricular ectopic: wide, bizarre, no P, discordant T
    vpb_theta = axis + rng.choice([-110, 120])
    add_beats(kinds == _VPB, [0.04, 0.10], [0.025, 0.028], [1.5 * min(qrs_scale, 1.5), 0.8],
              [vpb_theta, vpb_theta + 30], [-20, 20])

    # paced: LBBB-like wide QRS with a superior axis, preceded by a spike
    pace_sel = kinds == _PACED
    paced_template = ([0.05, 0.10], [0.022, 0.022], [0.9 * qrs_scale, 1.0 * qrs_scale],
                      [axis, axis + 10], [-40, -40])
    if "CRBBB" in classes:
        paced_template = tuple(list(x) + [y] for x, y in zip(paced_template, (0.13, 0.02, 0.5, 180, 55)))
    add_beats(pace_sel, *paced_template)
    if rhythm == "PACE":
        qrs_spans[0] = 0.10 + 0.044 + 0.006

    # T waves (RR-dependent QT); inverted/flattened for STTA, discordant for wide beats
    qt = _qt(rr_prev)
    t_sigma = 0.045
    t_gain = t_amp * (rng.uniform(-0.9, 0.15) if "STTA" in classes else 1.0)
    if "LVH" in classes and rng.random() < 0.4:
        t_gain = -abs(t_gain)          # strain pattern
    ventricular = (kinds == _VPB) | (kinds == _PACED)
    widen = np.where(ventricular, 0.06, 0.0) + (0.04 if ({"CRBBB", "CLBBB"} & classes) else 0.0)
    t_centres = onsets + qt + widen - 2.0 * t_sigma
    t_vec = np.where(ventricular[:, None],
                     _direction(axis + 180, 30)[None, :] * 0.5 * beat_gain[:, None],
                     _direction(*t_dir)[None, :] * (t_gain * beat_gain)[:, None])
    t_vec[kinds == _VPB] = _direction(vpb_theta + 180, -20) * 0.6
    w.add(t_centres, t_sigma, t_vec)
    if "STTA" in classes:
        st_dep = rng.uniform(0.05, 0.2)
        w.add(onsets + 0.16, 0.05, np.broadcast_to(_direction(axis, -10) * -st_dep, (onsets.size, 3)))
    info["qt_ms"] = float(_qt(60.0 / hr) * 1000)
    info["qrs_ms"] = float(qrs_spans[0] * 1000)

    # -- atrial activity --------------------------------------------------------------
    p_amp = rng.uniform(0.1, 0.18)
    if rhythm == "CAVB":
        atrial = _sinus_times(rng, duration, rng.uniform(62, 95), 0.02)
        w.add(atrial + 0.05, 0.022, np.broadcast_to(_direction(55, 0) * p_amp, (atrial.size, 3)))
    else:
        sinus_p = has_p & (kinds != _VPB) & (kinds != _APB)
        w.add(onsets[sinus_p] - pr + 0.05, 0.022,
              np.broadcast_to(_direction(55, 0) * p_amp, (int(sinus_p.sum()), 3)))
        apb = kinds == _APB
        w.add(onsets[apb] - 0.14 + 0.05, 0.02,
              np.broadcast_to(_direction(-60, 10) * p_amp, (int(apb.sum()), 3)))

    fs = float(fs)
    dipole = w.render(n_samples, fs)
    t = np.arange(n_samples) / fs

    if rhythm == "AFIB":   # fibrillatory baseline projected mostly on II/III/aVF/V1
        n_comp = int(rng.integers(3, 6))
        f = rng.uniform(4, 9, n_comp)[:, None]
        ph = rng.uniform(0, 2 * np.pi, n_comp)[:, None]
        am = rng.uniform(0.3, 1.0, n_comp)[:, None] * (1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5, n_comp)[:, None] * t))
        fwave = (am * np.sin(2 * np.pi * f * t + ph)).sum(0)
        fwave *= rng.uniform(0.05, 0.15) / (np.abs(fwave).max() + 1e-9)
        dipole += _direction(100, 35)[:, None] * fwave[None, :]
    if rhythm == "PACE":   # 2-4 ms pacing spike just before each paced QRS
        spike_amp = rng.uniform(0.5, 3.0)
        spike_dir = _direction(rng.uniform(-120, -60), rng.uniform(-20, 40))
        width = int(rng.integers(1, 3))
        starts = np.rint((onsets[pace_sel] - 0.004) * fs).astype(int)
        idx = (starts[:, None] + np.arange(width)[None, :]).ravel()
        idx = idx[(idx >= 0) & (idx < n_samples)]
        dipole[:, idx] += spike_dir[:, None] * spike_amp

    sig_mv = _leads_from_dipole(dipole, rng, t, device)
    return sig_mv, info


def _leads_from_dipole(dipole: np.ndarray, rng: np.random.Generator, t: np.ndarray,
                       device: str) -> np.ndarray:
    """Project to electrodes, add electrode-level noise, apply the device, derive 12 leads.

    Noise is added to electrode potentials (RA, LA, LL, V1-V6), so the derived limb
    leads keep Einthoven's law exactly, as in real recordings.
    """
    X, Y, Z = dipole
    n = t.size
    fs = 1.0 / (t[1] - t[0])
    # electrode potentials relative to an arbitrary reference: I = LA - RA, II = LL - RA
    lead_I = X
    lead_II = 0.5 * X + 0.866 * Y
    chest = _CHEST_GAIN * (np.cos(_CHEST_ANGLES)[:, None] * X + np.sin(_CHEST_ANGLES)[:, None] * Z + 0.15 * Y)
    ra = np.zeros(n)
    la = lead_I.copy()
    ll = lead_II.copy()
    wct = (ra + la + ll) / 3
    elec = np.vstack([ra, la, ll, chest + wct])          # (9, n)

    n_el = elec.shape[0]
    wander_amp = rng.uniform(0.05, 0.3)
    wf = rng.uniform(0.05, 0.5, (n_el, 2))
    wander = (np.sin(2 * np.pi * wf[..., None] * t + rng.uniform(0, 6.3, (n_el, 2, 1)))).sum(1)
    wander *= wander_amp * rng.uniform(0.2, 1.0, (n_el, 1)) / 2
    emg_sd = rng.uniform(0.005, 0.02)
    hum = rng.uniform(0.005, 0.02) * np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 6.3))
    elec = elec + wander + rng.normal(0, emg_sd, elec.shape) + hum * rng.uniform(0.5, 1.0, (n_el, 1))
    elec *= rng.uniform(0.85, 1.15)        # per-record amplitude variation (skin, body habitus)

    if device == "ptbxl":
        # A different front end: more gain, a 0.5-40 Hz band (spikes and hum smoothed),
        # then its own amplifier noise. Linear, so Einthoven still holds.
        elec *= 1.25
        sos = sps.butter(2, [0.5, 40.0], btype="bandpass", fs=fs, output="sos")
        elec = sps.sosfilt(sos, elec, axis=1)
        elec += rng.normal(0, 0.004, elec.shape)

    ra, la, ll, ch = elec[0], elec[1], elec[2], elec[3:]
    # Devices digitise I and II and compute the other limb leads; do the same in µV.
    i_uv = np.rint((la - ra) * 1000)
    ii_uv = np.rint((ll - ra) * 1000)
    iii_uv = ii_uv - i_uv
    avr_uv = np.rint(-(i_uv + ii_uv) / 2)
    avl_uv = np.rint(i_uv - ii_uv / 2)
    avf_uv = np.rint(ii_uv - i_uv / 2)
    v_uv = np.rint((ch - (ra + la + ll) / 3) * 1000)
    out = np.vstack([i_uv, ii_uv, iii_uv, avr_uv, avl_uv, avf_uv, v_uv])
    np.clip(out, -32767, 32767, out=out)
    return (out / 1000.0).astype(np.float32)
