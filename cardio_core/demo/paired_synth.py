"""One synthetic subject of a paired ECG + CMR cohort (UK Biobank-like): a heart, its cine and its ECG.

The link between the two modalities is physiological, not drawn towards any number: each subject gets a
heart condition (most hearts normal), the cine is rendered from that condition's geometry
(cmr_synth.synthesize_cine with the subject's body surface area), and the ECG is rendered from the heart the
cine shows: QRS voltage from its LV mass, QRS duration from its LV size, the resting rate from its ejection
fraction and the subject's age, and the findings such a heart produces (a hypertrophied LV: repolarisation
changes; a dilated LV: a left bundle-branch block; an old infarct: Q waves; an overloaded RV: a right axis).
The manifest's phenotypes are then measured from the cine's own masks (cardiac_indices), and the LV output
from the stroke volume and the ECG's heart rate, so every number in the manifest is what the files show.
"""
from __future__ import annotations

import numpy as np

from cardio_core.demo.cmr_synth import bsa_mosteller, cardiac_indices, synthesize_cine
from cardio_core.demo.ecg_synth import synthesize_ecg

__all__ = ["CONDITIONS", "draw_subject", "synthesize_subject"]

# share of hearts per condition in a population imaging cohort (mostly healthy volunteers)
CONDITIONS = {"NOR": 0.72, "HCM": 0.08, "DCM": 0.07, "MINF": 0.08, "RV": 0.05}


def _pick(rng: np.random.Generator, options: dict):
    keys = list(options)
    p = np.array([options[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def draw_subject(rng: np.random.Generator) -> dict:
    """Condition and demographics of one subject (UK Biobank's imaging visit: ages 45-82)."""
    condition = _pick(rng, CONDITIONS)
    male = rng.random() < (0.65 if condition in ("HCM", "DCM", "MINF") else 0.48)
    age = float(np.clip(rng.normal(64 + (5 if condition in ("DCM", "MINF") else 0), 7.5), 45, 82))
    height = float(rng.normal(176 if male else 163, 6.5))
    bmi = float(np.clip(rng.normal(26.5, 4.0), 17, 42))
    return dict(condition=condition, sex="M" if male else "F", age=int(round(age)),
                height=round(height, 1), weight=round(bmi * (height / 100) ** 2, 1))


def _ecg_findings(condition: str, hr: float, rng: np.random.Generator) -> list[str]:
    """The ECG classes a heart of this condition shows (synthesize_ecg renders them); the sinus rhythm's name
    follows the heart's rate."""
    sinus = ["SB"] if hr < 60 else ["SR"]
    if condition == "HCM":
        return sinus + ["LVH"] + (["STTA"] if rng.random() < 0.6 else [])
    if condition == "DCM":
        return sinus + (["CLBBB"] if rng.random() < 0.45 else ["STTA"])
    if condition == "MINF":
        return sinus + ["QWA"] + (["STTA"] if rng.random() < 0.5 else [])
    if condition == "RV":
        return sinus + ["RVH" if rng.random() < 0.5 else "RAD"]
    return sinus


# normal LV mass index (g/m²) of the cines' normal hearts: the QRS voltage scales with the mass around it
_NORMAL_LVMI = 58.0


def synthesize_subject(subject: dict, rng: np.random.Generator, *, shape=(128, 128), n_slices: int = 6,
                       n_frames: int = 10, spacing=(1.8, 1.8, 10.0)) -> dict:
    """The subject's cine volume (x, y, z, t), ED/ES frames, ECG (12, 5000) mV and measured phenotypes.

    The cine comes first: the ECG is then rendered from the heart the cine shows (its LV mass sets the QRS
    voltage, its LV size the QRS duration, its ejection fraction the resting rate)."""
    condition = subject["condition"]
    bsa = bsa_mosteller(subject["height"], subject["weight"])
    volume, masks, ed, es = synthesize_cine(condition, rng, shape=shape, n_slices=n_slices, n_frames=n_frames,
                                            spacing=spacing, bsa=bsa)
    ix = cardiac_indices(masks, spacing, ed, es, bsa=bsa)
    # a failing ventricle keeps its output with a faster rate; the rate falls slightly with age
    hr = float(np.clip(rng.normal(68, 8) + 25 * max(0.0, 0.5 - ix["lvef"]) - 0.1 * (subject["age"] - 60), 45, 99))
    findings = _ecg_findings(condition, hr, rng)
    voltage = float(np.clip(ix["lv_massi"] / _NORMAL_LVMI, 0.6, 3.0))
    if "LVH" in findings:      # the LVH class already scales the voltage by ~2.4: keep the mass the only source
        voltage /= 2.4
    physiology = dict(hr=hr, qrs_scale=voltage, qrs_stretch=1.0 + max(0.0, ix["lvedvi"] - 90.0) / 150.0)
    ecg, info = synthesize_ecg(findings, rng, age=subject["age"], sex=subject["sex"], device="chapman",
                               physiology=physiology)
    lvsv, rvsv = ix["lvedv"] - ix["lvesv"], ix["rvedv"] - ix["rvesv"]
    phenotypes = dict(LVEDV=round(ix["lvedv"], 1), LVESV=round(ix["lvesv"], 1), LVSV=round(lvsv, 1),
                      LVEF=round(100 * ix["lvef"], 1), LVCO=round(lvsv * info["hr"] / 1000, 2),
                      LVM=round(ix["lv_mass"], 1), RVEDV=round(ix["rvedv"], 1), RVESV=round(ix["rvesv"], 1),
                      RVSV=round(rvsv, 1), RVEF=round(100 * ix["rvef"], 1))
    return dict(ecg=ecg, volume=volume, ed=ed, es=es, findings=findings, hr=info["hr"], qrs_ms=info["qrs_ms"],
                phenotypes=phenotypes)
