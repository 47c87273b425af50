"""Write synthetic Chapman-, PTB-XL-, ACDC- and paired-cohort-format datasets for the demo and the tests.

The plan (labels, IDs, demographics, quirks) is drawn in the calling process from
the master seed; every record then gets its own seed derived from (seed, dataset,
index), so the bytes on disk do not depend on how many workers wrote them.
All file formats come from cardio_core.data.writers.

One cohesive module over 400 lines: the three datasets' plans and the worker pool that
writes them share the seeding scheme above, which splitting would scatter.
"""
from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal as sps

from cardio_core.data.readers.paired import FRAME_COLUMNS, REQUIRED_COLUMNS
from cardio_core.labels import ACDC_GROUPS, CLASSES, INTEGRATION_CODE
from cardio_core.demo.cmr_synth import bsa_mosteller, synthesize_cine
from cardio_core.demo.ecg_synth import synthesize_ecg

__all__ = ["generate_demo_datasets", "SIZES", "plan_chapman", "plan_ptbxl", "plan_acdc", "plan_paired"]

SIZES = {
    "default": {"chapman": 2000, "ptbxl": 600, "acdc": 150, "paired": 500},
    "tiny": {"chapman": 80, "ptbxl": 30, "acdc": 10, "paired": 40},
    # the real datasets' sizes: Chapman-Shaoxing-Ningbo 45,152 ECGs, PTB-XL 21,799, ACDC 150 patients; a paired
    # cohort of UK Biobank's imaging size is out of a demo's reach, so "full" keeps the default's
    "full": {"chapman": 45152, "ptbxl": 21799, "acdc": 150, "paired": 500},
}
_DATASET_TAG = {"chapman": 1, "ptbxl": 2, "acdc": 3, "paired": 4}
# records per pool task; ACDC patients cost ~0.3 s each, so small ACDC tasks balance the two workers
_CHUNK = {"chapman": 50, "ptbxl": 50, "acdc": 2, "paired": 10}


def _rng(seed: int, dataset: str, index: int | None = None) -> np.random.Generator:
    key = [seed, _DATASET_TAG[dataset]] + ([] if index is None else [index + 1])
    return np.random.default_rng(np.random.SeedSequence(key))


def _pick(rng, options: dict):
    """Draw a key of `options` with probability proportional to its value."""
    keys = list(options)
    p = np.array([options[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


# -- Chapman ---------------------------------------------------------------------------

# Source SNOMED codes per class with weights from the Cha et al. counts (data_formats.md §2).
_SOURCE_CODES = {
    "AFIB": {"164889003": 1780, "164890007": 8060},
    "SR": {"426783006": 8125, "427393009": 2550},
    "1AVB": {"270492004": 1140, "164947007": 52},
    "APB": {"284470004": 1312, "251170000": 62, "63593006": 9, "251173003": 3},
    "CLBBB": {"733534002": 213, "164909002": 240},
    "VPB": {"427172004": 1091, "17338001": 294, "13640000": 116, "11157007": 3},
    "LVH": {"55827005": 5401, "164873001": 647},
    "STTA": {"429622005": 1668, "164931005": 176, "164930006": 801, "428750005": 1158,
             "55930002": 4232, "164934002": 7043, "59931005": 2877},
}
_SVT_CODES = {"426761007": 724, "713422000": 297, "233897008": 26}
_UNMAPPED_EXTRAS = ("59118001", "251199005", "251198002", "164912004", "698252002",
                    "428417006", "365413008", "61721007")
_RHYTHM_PREVALENCE = {"SB": 0.35, "SR": 0.22, "AFIB": 0.18, "GSVT": 0.17, "PACE": 0.025,
                      "CAVB": 0.003, None: 0.03}
_QUIRKS = ("age_nan", "age_nan", "trailing_comma", "unknown_code", "only_unmapped",
           "flat_lead", "invalid_samples")


def _secondary_labels(rng, rhythm) -> set[str]:
    sinus = rhythm in ("SR", "SB", "GSVT", None)
    p = {"STTA": 0.35 if rhythm in ("SB", "AFIB") else 0.28,
         "LVH": 0.18 if rhythm == "SR" else 0.10,
         "LQV": 0.023, "QWA": 0.024, "VPB": 0.0 if rhythm == "PACE" else 0.033,
         "APB": 0.03 if sinus else 0.0, "1AVB": 0.035 if rhythm in ("SR", "SB") else 0.0,
         "WPW": 0.002 if rhythm in ("SR", None) else 0.0}
    labels = {c for c, q in p.items() if rng.random() < q}
    bbb = _pick(rng, {"CRBBB": 0.025, "CLBBB": 0.01, None: 0.965})
    axis = _pick(rng, {"LAD": 0.035, "LAFB": 0.009, "RAD": 0.02, "RVH": 0.003, None: 0.933})
    labels |= {x for x in (bbb, axis) if x}
    if "LQV" in labels:
        labels.discard("LVH")
    return labels


def _chapman_label_sets(rng, n: int) -> list[set[str]]:
    """Guaranteed combinations first (each rhythm x bundle-branch block, the usual
    co-occurrences, every class), then draws at realistic prevalences; shuffled."""
    q = max(1, n // 400)
    quota = []
    for rhythm in ("AFIB", "GSVT", "PACE", "SB", "SR"):
        for bbb in ("CRBBB", "CLBBB"):
            quota += [{rhythm, bbb}] * q
    quota += [{"SB", "STTA"}, {"SR", "LVH"}, {"SR", "1AVB"}, {"PACE"}] * q
    rhythm_for = {"CAVB": set(), "PACE": set(), "WPW": {"SR"}, "APB": {"SR"}, "1AVB": {"SB"}}
    for c in CLASSES:
        if c not in ("AFIB", "GSVT", "SB", "SR", "CRBBB", "CLBBB"):
            quota += [{c} | rhythm_for.get(c, {"SR"})] * q
    quota = quota[:n]
    rest = []
    for _ in range(n - len(quota)):
        rhythm = _pick(rng, _RHYTHM_PREVALENCE)
        rest.append(({rhythm} if rhythm else set()) | _secondary_labels(rng, rhythm))
    sets = [set(s) for s in quota] + rest
    order = rng.permutation(n)
    return [sets[i] for i in order]


def _chapman_ids(rng, n: int) -> list[str]:
    """Real-looking IDs with gaps: ~30% in the Shaoxing range, the rest in the Ningbo range."""
    n_sx = int(round(0.3 * n))
    ids, cur = [], 0
    for i in range(n):
        if i == n_sx:
            cur = max(cur, 10646)
        cur += 1 + (int(rng.integers(1, 4)) if rng.random() < 0.05 else 0)
        ids.append(f"JS{cur:05d}")
    return ids


def plan_chapman(n: int, seed: int) -> list[dict]:
    """One dict per record: id, classes, age, sex, quirk (None or a name). Codes come after synthesis."""
    rng = _rng(seed, "chapman")
    label_sets = _chapman_label_sets(rng, n)
    ids = _chapman_ids(rng, n)
    quirk_at = {}
    if n >= 2 * len(_QUIRKS):
        for idx, name in zip(rng.choice(n, size=len(_QUIRKS), replace=False), _QUIRKS):
            quirk_at[int(idx)] = name
    plan = []
    for i, (rid, labels) in enumerate(zip(ids, label_sets)):
        age = rng.normal(58, 17) + (10 if "AFIB" in labels else 0) - (6 if "SB" in labels else 0)
        plan.append(dict(index=i, record_id=rid, classes=sorted(labels),
                         age=int(np.clip(round(age), 5, 95)),
                         sex="M" if rng.random() < 0.56 else "F", quirk=quirk_at.get(i),
                         ningbo=int(rid[2:]) > 10646))
    return plan


def _chapman_codes(rng, classes: list[str], info: dict, ningbo: bool) -> list[str]:
    """SNOMED codes for a record, rhythm code first (as the real headers list it)."""
    codes = []
    rhythm = next((c for c in ("AFIB", "CAVB", "GSVT", "SB", "SR") if c in classes), None)
    rest = [c for c in classes if c != rhythm]
    if rhythm == "AFIB":
        codes.append("164890007" if ningbo else _pick(rng, _SOURCE_CODES["AFIB"]))
    elif rhythm == "GSVT":
        codes.append("427084000" if info.get("gsvt_kind") == "ST" else _pick(rng, _SVT_CODES))
    elif rhythm:
        codes.append(_pick(rng, _SOURCE_CODES[rhythm]) if rhythm in _SOURCE_CODES else INTEGRATION_CODE[rhythm])
    for c in rng.permutation(rest):
        codes.append(_pick(rng, _SOURCE_CODES[c]) if c in _SOURCE_CODES else INTEGRATION_CODE[c])
    if rng.random() < 0.06 or not codes:
        # real headers always list at least one code; a record without a class gets an unmapped one
        codes.append(str(rng.choice(_UNMAPPED_EXTRAS)))
    return codes


def _chapman_chunk(root: str, items: list[dict], seed: int) -> list[str]:
    from cardio_core.data.writers import chapman_record_folder, write_chapman_record
    root = Path(root)
    written = []
    for it in items:
        rng = _rng(seed, "chapman", it["index"])
        quirk = it["quirk"]
        classes = ["SR"] if quirk == "only_unmapped" else it["classes"]
        sig, info = synthesize_ecg(classes, rng, age=it["age"], sex=it["sex"], device="chapman")
        codes = _chapman_codes(rng, it["classes"], info, it["ningbo"])
        age = it["age"]
        if quirk == "age_nan":
            age = None
        elif quirk == "trailing_comma":
            codes = codes + [""]
        elif quirk == "unknown_code":
            codes = codes + ["251238007"]
        elif quirk == "only_unmapped":
            codes = ["59118001", "251199005"]
        elif quirk == "flat_lead":
            sig[9] = 0.0
        elif quirk == "invalid_samples":
            start = int(rng.integers(100, 4800))
            sig[7, start:start + 25] = np.nan     # written as -32768, WFDB's invalid sample
        rel = chapman_record_folder(it["record_id"])
        write_chapman_record(root / rel, it["record_id"], sig, age=age,
                             sex="Male" if it["sex"] == "M" else "Female", dx_codes=codes)
        written.append(f"{rel}/{it['record_id']}")
    return written


# -- PTB-XL ----------------------------------------------------------------------------

_PTBXL_RHYTHMS = {"SR": 0.77, "AFIB": 0.07, "STACH": 0.038, "SARRH": 0.035, "SBRAD": 0.03,
                  "PACE": 0.014, "SVARR": 0.007, "BIGU": 0.004, "AFLT": 0.0035, "SVTAC": 0.0015,
                  "PSVT": 0.0012, "TRIGU": 0.001, None: 0.025}
_RHYTHM_TO_SYNTH = {"SR": ["SR"], "SARRH": ["SR"], "AFIB": ["AFIB"], "AFLT": ["AFIB"],
                    "STACH": ["GSVT"], "SVARR": ["GSVT"], "SVTAC": ["GSVT"], "PSVT": ["GSVT"],
                    "SBRAD": ["SB"], "PACE": ["PACE"], "BIGU": ["SR", "VPB"], "TRIGU": ["SR", "VPB"],
                    None: ["SR"]}
# diagnostic/form statement -> (probability, synthetic class or None)
_PTBXL_DIAG = {"LVH": (0.08, "LVH"), "CLBBB": (0.025, "CLBBB"), "CRBBB": (0.025, "CRBBB"),
               "IRBBB": (0.05, None), "LAFB": (0.07, "LAFB"), "1AVB": (0.04, "1AVB"),
               "IMI": (0.08, "QWA"), "ASMI": (0.08, "QWA"), "NDT": (0.08, "STTA"),
               "ISC_": (0.05, "STTA"), "LVOLT": (0.02, "LQV"), "RVH": (0.005, "RVH"),
               "WPW": (0.003, "WPW"), "PVC": (0.04, "VPB"), "IVCD": (0.03, None)}
_GERMAN = {"SR": "sinusrhythmus", "AFIB": "vorhofflimmern", "STACH": "sinustachykardie",
           "SBRAD": "sinusbradykardie", "SARRH": "sinusarrhythmie", "PACE": "schrittmacher-ekg",
           "AFLT": "vorhofflattern", "SVTAC": "supraventrikulaere tachykardie",
           "PSVT": "paroxysmale supraventrikulaere tachykardie", "SVARR": "supraventrikulaere arrhythmie",
           "BIGU": "bigeminus", "TRIGU": "trigeminus", "NORM": "normales ekg",
           "LVH": "linksventrikulaere hypertrophie", "CLBBB": "kompletter linksschenkelblock",
           "CRBBB": "kompletter rechtsschenkelblock", "IRBBB": "inkompletter rechtsschenkelblock",
           "LAFB": "linksanteriorer hemiblock", "1AVB": "av-block i. grades",
           "IMI": "inferiorer infarkt, alter unbestimmt", "ASMI": "anteroseptaler infarkt",
           "NDT": "unspezifische t-veraenderungen", "ISC_": "ischaemische st-t-veraenderungen",
           "LVOLT": "periphere niederspannung", "RVH": "rechtsventrikulaere hypertrophie",
           "WPW": "wpw-syndrom", "PVC": "ventrikulaere extrasystole(n)",
           "IVCD": "intraventrikulaere leitungsstoerung"}
_DEVICES = ("CS-12   E", "AT-6 C 5.5", "AT-6     6", "CS100    3", "AT-60    3", "CS-12")


def plan_ptbxl(n: int, seed: int) -> list[dict]:
    """Rows of ptbxl_database.csv (without file names) plus the classes to synthesise."""
    rng = _rng(seed, "ptbxl")
    q = max(1, n // 200)
    rhythm_quota = [[r] for r in _PTBXL_RHYTHMS if r] * q + [[]] * q + [["SR", "PACE"], ["SR", "BIGU"]] * q
    rhythm_lists = rhythm_quota[:n] + [[r] if (r := _pick(rng, _PTBXL_RHYTHMS)) else []
                                       for _ in range(n - min(n, len(rhythm_quota)))]
    rhythm_lists = [rhythm_lists[i] for i in rng.permutation(n)]
    ecg_ids = np.sort(rng.choice(np.arange(1, 21838), size=n, replace=False))
    # patients: most have one record, a few have 2-3 (three guaranteed)
    sizes = [2, 3, 2] if n >= 10 else []
    while sum(sizes) < n:
        sizes.append(int(_pick(rng, {1: 0.9, 2: 0.07, 3: 0.03})))
    if sizes:
        sizes[-1] -= sum(sizes) - n
    patient_ids = rng.choice(np.arange(1, 21800), size=len(sizes), replace=False)
    owner = np.repeat(np.arange(len(sizes)), sizes)[rng.permutation(n)]
    patients = []
    for _ in sizes:
        age = float(np.clip(round(rng.normal(62, 17)), 2, 95))
        patients.append(dict(age=300.0 if age > 89 else age, sex=int(rng.random() < 0.48),
                             fold=int(rng.integers(1, 11)), height=round(rng.normal(168, 9)),
                             weight=round(rng.normal(75, 14)), has_hw=rng.random() < 0.32))
    plan = []
    for i in range(n):
        p = patients[owner[i]]
        rhythms = rhythm_lists[i]
        diag = [s for s, (prob, _) in _PTBXL_DIAG.items() if rng.random() < prob]
        if "CLBBB" in diag and "CRBBB" in diag:
            diag.remove("CRBBB")
        if "LVOLT" in diag and "LVH" in diag:
            diag.remove("LVH")
        classes = set(_RHYTHM_TO_SYNTH[rhythms[0] if rhythms else None])
        if "PACE" in rhythms:
            classes.add("PACE")
        classes |= {_PTBXL_DIAG[s][1] for s in diag if _PTBXL_DIAG[s][1]}
        scp = {}
        if not diag and rhythms in (["SR"], ["SARRH"]):
            scp["NORM"] = 100.0
        for s in diag:
            scp[s] = float(rng.choice([15.0, 35.0, 50.0, 80.0, 100.0]))
        for r in rhythms:
            scp[r] = 0.0
        report = " ".join(_GERMAN[k] for k in (rhythms + (["NORM"] if "NORM" in scp else []) + diag))
        if rng.random() < 0.1:
            report = report.replace(" ", ", ", 1)          # a comma, so the field gets quoted
        axis = "ALAD" if "LAFB" in diag else "RAD" if "RVH" in diag else ("MID" if rng.random() < 0.7 else "")
        age = p["age"] if rng.random() > 0.01 else float("nan")
        date = pd.Timestamp("1984-01-01") + pd.Timedelta(seconds=int(rng.integers(0, 17 * 365 * 86400)))
        plan.append(dict(
            index=i, classes=sorted(classes), ecg_id=int(ecg_ids[i]),
            row=dict(
                ecg_id=int(ecg_ids[i]), patient_id=float(patient_ids[owner[i]]), age=age, sex=p["sex"],
                height=float(p["height"]) if p["has_hw"] else np.nan,
                weight=float(p["weight"]) if p["has_hw"] else np.nan,
                nurse=float(rng.integers(0, 12)) if rng.random() < 0.93 else np.nan,
                site=float(rng.integers(0, 51)) if rng.random() < 0.99 else np.nan,
                device=str(rng.choice(_DEVICES)), recording_date=date.strftime("%Y-%m-%d %H:%M:%S"),
                report=report, scp_codes=scp, heart_axis=axis,
                infarction_stadium1=(str(rng.choice(["unknown", "Stadium I", "Stadium II", "Stadium III"]))
                                     if {"IMI", "ASMI"} & set(diag) else ""),
                infarction_stadium2="",
                validated_by=float(rng.integers(0, 12)) if rng.random() < 0.57 else np.nan,
                second_opinion=bool(rng.random() < 0.03),
                initial_autogenerated_report=bool(rng.random() < 0.2),
                validated_by_human=bool(rng.random() < 0.74),
                baseline_drift=" , II,III,AVF" if rng.random() < 0.07 else "",
                static_noise=" , I-V1,  " if rng.random() < 0.15 else "",
                burst_noise="V5" if rng.random() < 0.03 else "",
                electrodes_problems="",
                extra_beats=("VES" if "PVC" in diag else "1ES") if ("PVC" in diag or "BIGU" in rhythms) else "",
                pacemaker="ja, pacemaker" if "PACE" in rhythms else "",
                strat_fold=p["fold"])))
    return plan


def _ptbxl_chunk(root: str, items: list[dict], seed: int) -> list[tuple[int, str, str]]:
    from cardio_core.data.writers import write_ptbxl_record
    root = Path(root)
    out = []
    for it in items:
        rng = _rng(seed, "ptbxl", it["index"])
        age = it["row"]["age"]
        sig, _ = synthesize_ecg(it["classes"], rng, age=None if age != age else min(age, 90),
                                sex="F" if it["row"]["sex"] else "M", device="ptbxl")
        hr = write_ptbxl_record(root, it["ecg_id"], sig, fs=500)
        # the 100 Hz copy is a decimation of the same recording, as in PTB-XL
        lr = write_ptbxl_record(root, it["ecg_id"], sps.resample_poly(sig, 1, 5, axis=1), fs=100)
        out.append((it["ecg_id"], hr, lr))
    return out


# -- ACDC ------------------------------------------------------------------------------

def plan_acdc(n: int, seed: int) -> list[dict]:
    """Balanced groups in ID blocks (as in the real training set), BMI spread over all categories."""
    rng = _rng(seed, "acdc")
    groups = [ACDC_GROUPS[i * len(ACDC_GROUPS) // n] for i in range(n)]
    plan = []
    for i, group in enumerate(groups):
        male = rng.random() < 0.6
        height = rng.normal(176 if male else 164, 7)
        bmi = _pick(rng, {17.3: 0.08, 22.5: 0.4, 27.5: 0.32, 33.0: 0.2}) + rng.uniform(-1.2, 1.2)
        weight = bmi * (height / 100) ** 2
        big = i == 1          # one patient wider than 210 px exercises the centre crop
        thin = i == 3         # one patient with 5 mm slices
        plan.append(dict(
            index=i, patient_id=f"patient{i + 1:03d}", group=group,
            height=round(float(height), 1), weight=round(float(weight), 1),
            shape=(232, 256) if big else (128, 128),
            n_slices=12 if thin else int(rng.integers(7, 10)),
            # real cines have 12-35 frames; the low end keeps the 4-D files (most of the
            # generator's time: rendering and gzip) small
            n_frames=int(rng.integers(12, 16)),
            spacing=(round(float(rng.uniform(1.37, 1.5)), 4) if big else round(float(rng.uniform(1.7, 1.85)), 4),) * 2
            + (5.0 if thin else 10.0,),
            dtype="float32" if rng.random() < 0.4 else "int16"))
    return plan


def _acdc_chunk(root: str, items: list[dict], seed: int) -> list[str]:
    from cardio_core.data.writers import write_acdc_patient
    root = Path(root)
    out = []
    for it in items:
        rng = _rng(seed, "acdc", it["index"])
        bsa = bsa_mosteller(it["height"], it["weight"])
        volume, masks, ed, es = synthesize_cine(it["group"], rng, shape=it["shape"], n_slices=it["n_slices"],
                                                n_frames=it["n_frames"], spacing=it["spacing"], bsa=bsa)
        folder = root / "database" / "training" / it["patient_id"]
        write_acdc_patient(folder, it["patient_id"], volume, it["spacing"], ed=ed, es=es, group=it["group"],
                           height=it["height"], weight=it["weight"],
                           masks={ed: masks[..., ed - 1], es: masks[..., es - 1]},
                           dtype=np.dtype(it["dtype"]).type)
        out.append(str(folder.relative_to(root)))
    return out


# -- paired ECG + CMR cohort (UK Biobank-like) ------------------------------------------

PAIRED_SPACING = (1.8, 1.8, 10.0)
PAIRED_COLUMNS = REQUIRED_COLUMNS + FRAME_COLUMNS + ("heart_failure",)


def plan_paired(n: int, seed: int) -> list[dict]:
    """Subject ids (UK Biobank-style 7-digit eids), ECG file format (half WFDB, half CardioSoft XML), and
    whether the manifest lists the ED/ES frames (half do); the heart and body are drawn per subject."""
    rng = _rng(seed, "paired")
    eids = np.sort(rng.choice(np.arange(1_000_000, 6_000_000), size=n, replace=False))
    return [dict(index=i, eid=str(int(eid)), xml=bool(rng.random() < 0.5), frames=bool(rng.random() < 0.5))
            for i, eid in enumerate(eids)]


def _paired_chunk(root: str, items: list[dict], seed: int) -> list[dict]:
    from cardio_core.data.writers import (cardiosoft_xml_name, write_cardiosoft_xml, write_chapman_record,
                                          write_cine_nifti)
    from cardio_core.demo.paired_synth import draw_subject, synthesize_subject
    root = Path(root)
    rows = []
    for it in items:
        rng = _rng(seed, "paired", it["index"])
        subject = draw_subject(rng)
        out = synthesize_subject(subject, rng, spacing=PAIRED_SPACING)
        eid = it["eid"]
        if it["xml"]:
            ecg_path = f"ecg/{cardiosoft_xml_name(eid)}"
            write_cardiosoft_xml(root / ecg_path, out["ecg"], age=subject["age"], sex=subject["sex"])
        else:
            write_chapman_record(root / "ecg", eid, out["ecg"], age=None, sex=None, dx_codes=(),
                                 comments=(f"Age: {subject['age']}", f"Sex: {'Male' if subject['sex'] == 'M' else 'Female'}"))
            ecg_path = f"ecg/{eid}.hea"
        cmr_path = f"cmr/{eid}_sa_cine.nii.gz"
        write_cine_nifti(root / cmr_path, out["volume"], PAIRED_SPACING)
        ph = out["phenotypes"]
        rows.append(dict(subject_id=eid, ecg_path=ecg_path, cmr_path=cmr_path, age=subject["age"],
                         sex=subject["sex"], height=subject["height"], weight=subject["weight"], **ph,
                         ed_frame=out["ed"] if it["frames"] else "", es_frame=out["es"] if it["frames"] else "",
                         heart_failure=int(ph["LVEF"] < 40)))
    return rows


# -- driver ----------------------------------------------------------------------------

_WORKERS = {"chapman": _chapman_chunk, "ptbxl": _ptbxl_chunk, "acdc": _acdc_chunk, "paired": _paired_chunk}


def _resolve_size(size) -> dict[str, int]:
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"size must be one of {sorted(SIZES)} or a dict, got {size!r}")
        return dict(SIZES[size])
    if isinstance(size, dict):
        bad = set(size) - set(_DATASET_TAG)
        if bad:
            raise ValueError(f"unknown datasets in size: {sorted(bad)}")
        out = {k: int(size.get(k, 0)) for k in _DATASET_TAG}
        if any(v < 0 for v in out.values()):
            raise ValueError(f"sizes must be >= 0, got {out}")
        return out
    raise ValueError(f"size must be a name or a dict, got {type(size).__name__}")


def _pool_context():
    """fork where it is safe (POSIX, no other Python threads): workers start in milliseconds
    with everything imported, and a script without an `if __name__ == "__main__":` guard
    works. A threaded caller (the app's job runner) gets spawn, which forking could deadlock."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def generate_demo_datasets(root: Path, *, size: str | dict = "default", seed: int = 0,
                           progress: bool = False, workers: int = 2) -> dict:
    """Write root/chapman, root/ptbxl, root/acdc and root/paired in the real on-disk layouts.

    Returns paths, record counts and the wall time. The same seed gives the same
    bytes whatever `workers` is.
    """
    from cardio_core.data.writers import PTBXL_COLUMNS, write_chapman_tables, write_paired_manifest, write_ptbxl_tables

    counts = _resolve_size(size)
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    root = Path(root)
    t0 = time.perf_counter()
    plans = {"chapman": plan_chapman(counts["chapman"], seed),
             "ptbxl": plan_ptbxl(counts["ptbxl"], seed),
             "acdc": plan_acdc(counts["acdc"], seed),
             "paired": plan_paired(counts["paired"], seed)}
    dirs = {name: root / name for name in plans}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    # biggest jobs first so the pool finishes together
    tasks = []
    for name in ("acdc", "paired", "chapman", "ptbxl"):
        items = plans[name]
        for start in range(0, len(items), _CHUNK[name]):
            tasks.append((name, start, items[start:start + _CHUNK[name]]))
    results: dict[tuple[str, int], list] = {}
    def progress_bar():
        from tqdm import tqdm

        class Bar(tqdm):
            monitor_interval = 0    # no monitor thread: a threaded process would get spawn workers
        return Bar(total=len(tasks), desc="demo data", unit="chunk", disable=not progress)

    if int(workers) == 1 or len(tasks) <= 1:
        with progress_bar() as bar:
            for name, start, items in tasks:
                results[(name, start)] = _WORKERS[name](str(dirs[name]), items, seed)
                bar.update()
    else:
        with ProcessPoolExecutor(max_workers=int(workers), mp_context=_pool_context()) as pool:
            futures = {pool.submit(_WORKERS[name], str(dirs[name]), items, seed): (name, start)
                       for name, start, items in tasks}
            with progress_bar() as bar:
                for fut in futures:
                    results[futures[fut]] = fut.result()
                    bar.update()

    def collect(name):
        return [x for (n, start), part in sorted(results.items()) if n == name for x in part]

    chapman_paths = collect("chapman")
    write_chapman_tables(dirs["chapman"], chapman_paths)
    ptbxl_files = {eid: (hr, lr) for eid, hr, lr in collect("ptbxl")}
    db = pd.DataFrame([it["row"] for it in plans["ptbxl"]], columns=list(PTBXL_COLUMNS[:-2]))
    db["filename_lr"] = [ptbxl_files[e][1] for e in db["ecg_id"]]
    db["filename_hr"] = [ptbxl_files[e][0] for e in db["ecg_id"]]
    write_ptbxl_tables(dirs["ptbxl"], db)
    paired_rows = collect("paired")
    write_paired_manifest(dirs["paired"], paired_rows, PAIRED_COLUMNS)
    (root / "DEMO_DATA.txt").write_text(
        "Synthetic data written by cardio_core.demo (not real patients).\n"
        f"seed={seed} sizes={counts}\n")
    return {"chapman": str(dirs["chapman"]), "ptbxl": str(dirs["ptbxl"]), "acdc": str(dirs["acdc"]),
            "paired": str(dirs["paired"]),
            "n_chapman": len(chapman_paths), "n_ptbxl": len(db), "n_acdc": len(collect("acdc")),
            "n_paired": len(paired_rows),
            "seconds": round(time.perf_counter() - t0, 1)}
