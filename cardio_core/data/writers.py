"""Writers that reproduce the on-disk formats of Chapman, PTB-XL and ACDC exactly.

Used by the demo-data generator and by the reader tests. The details (signed
checksums, `#Age:` without a space, float gain for PTB-XL, alphabetical Info.cfg)
follow data_formats.md §1-4; each was checked against the real fixture files.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np
import pandas as pd
import scipy.io

from cardio_core.labels import LEADS

# -- Chapman ---------------------------------------------------------------------------

_INVALID_INT16 = -32768  # WFDB's "invalid sample" for format 16; read back as NaN


def chapman_record_folder(record_id: str) -> str:
    """`WFDBRecords/NN/NNN` for a record id like `JS01053` (the rule of data_formats.md §1.1)."""
    digits = "".join(ch for ch in str(record_id) if ch.isdigit())
    if not digits or int(digits) < 1:
        raise ValueError(f"record id {record_id!r} has no positive number in it")
    n = int(digits) - 1
    top = f"{n // 1000 + 1:02d}"
    return f"WFDBRecords/{top}/{top}{(n % 1000) // 100}"


def _quantise_mv(signal_mv: np.ndarray) -> np.ndarray:
    """mV -> int16 at 1 uV/LSB; NaN becomes the invalid-sample value -32768."""
    sig = np.asarray(signal_mv, dtype=np.float64)
    digital = np.clip(np.round(np.nan_to_num(sig * 1000.0, nan=0.0)), -32767, 32767).astype(np.int16)
    digital[np.isnan(sig)] = _INVALID_INT16
    return digital


def _signed_checksum(channel: np.ndarray) -> int:
    value = int(channel.astype(np.int64).sum()) & 0xFFFF
    return value - 0x10000 if value >= 0x8000 else value


def write_chapman_record(folder: Path, record_id: str, signal_mv: np.ndarray, *,
                         age: int | str | None, sex: str | None, dx_codes: Sequence[str],
                         fs: int = 500, line_ending: str = "\n", comments: Sequence[str] | None = None) -> Path:
    """Write `<id>.mat` (MAT v4, int16) and a hand-written `<id>.hea` like JS01053's. Returns the .hea path.

    `comments` replaces Chapman's six comment lines (`Age:`, `Sex:`, `Dx:`, ...) for a WFDB record of
    another cohort; each is written after a `#`."""
    signal_mv = np.asarray(signal_mv)
    if signal_mv.ndim != 2 or signal_mv.shape[0] != len(LEADS):
        raise ValueError(f"signal_mv must be (12, n_samples); got shape {signal_mv.shape}")
    if line_ending not in ("\n", "\r\n"):
        raise ValueError(f"line_ending must be '\\n' or '\\r\\n'; got {line_ending!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    digital = _quantise_mv(signal_mv)
    scipy.io.savemat(folder / f"{record_id}.mat", {"val": digital}, format="4")

    lines = [f"{record_id} {len(LEADS)} {int(fs)} {digital.shape[1]}"]
    lines += [f"{record_id}.mat 16+24 1000/mV 16 0 {int(ch[0]) if ch.size else 0} {_signed_checksum(ch)} 0 {name}"
              for name, ch in zip(LEADS, digital)]
    if comments is not None:
        lines += [f"#{c}" for c in comments]
    else:
        lines += [
            f"#Age: {'NaN' if age is None else age}",
            f"#Sex: {'Unknown' if sex is None else sex}",
            "#Dx: " + ",".join(str(c) for c in dx_codes),
            "#Rx: Unknown", "#Hx: Unknown", "#Sx: Unknown",
        ]
    hea = folder / f"{record_id}.hea"
    hea.write_bytes((line_ending.join(lines) + line_ending).encode("ascii"))
    return hea


# ConditionNames_SNOMED-CT.csv rows, verbatim (typos included), data_formats.md §1.4.
CONDITION_NAMES: tuple[tuple[str, str, str], ...] = (
    ("1AVB", "1 degree atrioventricular block", "270492004"),
    ("2AVB", "2 degree atrioventricular block", "195042002"),
    ("2AVB1", "2 degree atrioventricular block(Type one)", "54016002"),
    ("2AVB2", "2 degree atrioventricular block(Type two)", "28189009"),
    ("3AVB", "3 degree atrioventricular block", "27885002"),
    ("ABI", "atrial bigeminy", "251173003"),
    ("ALS", "Axis left shift", "39732003"),
    ("APB", "atrial premature beats", "284470004"),
    ("AQW", "abnormal Q wave", "164917005"),
    ("ARS", "Axis right shift", "47665007"),
    ("AVB", "atrioventricular block", "233917008"),
    ("CCR", "countercolockwise rotation", "251199005"),
    ("CR", "colockwise rotation", "251198002"),
    ("ERV", "Early repolarization of the ventricles", "428417006"),
    ("FQRS", "fQRS Wave", "164942001"),
    ("IDC", "Interior differences conduction", "698252002"),
    ("IVB", "Intraventricular block", "698252002"),
    ("JEB", "junctional escape beat", "426995002"),
    ("JPT", "junctional premature beat", "251164006"),
    ("LBBB", "left bundle branch block", "164909002"),
    ("LBBBB", "left back bundle branch block", "164909002"),
    ("LFBBB", "left front bundle branch block", "164909002"),
    ("LVH", "left ventricle hypertrophy", "164873001"),
    ("LVQRSAL", "lower voltage QRS in all lead", "251146004"),
    ("LVQRSCL", "lower voltage QRS in chest lead", "251148003"),
    ("LVQRSLL", "lower voltage QRS in limb lead", "251147008"),
    ("MI", "myocardial infarction", "164865005"),
    ("MIBW", "myocardial infraction in back wall", "164865005"),
    ("MIFW", "Myocardial infgraction in the front wall", "164865005"),
    ("MILW", "Myocardial infraction in the lower wall", "164865005"),
    ("MISW", "Myocardial infraction in the side wall", "164865005"),
    ("PRIE", "PR interval extension", "164947007"),
    ("PWC", "P wave Change", "164912004"),
    ("QTIE", "QT interval extension", "111975006"),
    ("RAH", "right atrial hypertrophy", "446358003"),
    ("RBBB", "right bundle branch block", "59118001"),
    ("RVH", "right ventricle hypertrophy", "89792004"),
    ("STDD", "ST drop down", "429622005"),
    ("STE", "ST extension", "164930006"),
    ("STTC", "ST-T Change", "428750005"),
    ("STTU", "ST tilt up", "164931005"),
    ("TWC", "T wave Change", "164934002"),
    ("TWO", "T wave opposite", "59931005"),
    ("UW", "U wave", "164937009"),
    ("VB", "ventricular bigeminy", "11157007"),
    ("VEB", "ventricular escape beat", "75532003"),
    ("VFW", "ventricular fusion wave", "13640000"),
    ("VPB", "ventricular premature beat", "17338001"),
    ("VPE", "ventricular preexcitation", "195060002"),
    ("VET", "ventricular escape trigeminy", "251180001"),
    ("WAVN", "Wandering in the atrioventricalualr node", "195101003"),
    ("WPW", "WPW", "74390002"),
    ("SB", "Sinus Bradycardia", "426177001"),
    ("SR", "Sinus Rhythm", "426783006"),
    ("AFIB", "Atrial Fibrillation", "164889003"),
    ("ST", "Sinus Tachycardia", "427084000"),
    ("AF", "Atrial Flutter", "164890007"),
    ("SA", "Sinus Irregularity", "427393009"),
    ("SVT", "Supraventricular Tachycardia", "426761007"),
    ("AT", "Atrial Tachycardia", "713422000"),
    ("AVNRT", "Atrioventricular  Node Reentrant Tachycardia", "233896004"),
    ("AVRT", "Atrioventricular Reentrant Tachycardia", "233897008"),
    ("SAAWR", "Sinus Atrium to Atrial Wandering Rhythm", "195101003"),
)


def write_chapman_tables(root: Path, record_relpaths: Sequence[str]) -> None:
    """Write ConditionNames_SNOMED-CT.csv (with BOM), the top-level RECORDS and one RECORDS per leaf.

    `record_relpaths` are record stems relative to `root`, e.g. `WFDBRecords/02/020/JS01053`.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "ConditionNames_SNOMED-CT.csv", "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["Acronym Name", "Full Name", "Snomed_CT"])
        writer.writerows(CONDITION_NAMES)

    leaves: dict[str, list[str]] = {}
    for rel in record_relpaths:
        rel = str(rel).replace("\\", "/").removesuffix(".hea").removesuffix(".mat")
        folder, _, stem = rel.rpartition("/")
        if not folder or not stem:
            raise ValueError(f"record path {rel!r} must look like 'WFDBRecords/NN/NNN/<id>'")
        leaves.setdefault(folder, []).append(stem)
    (root / "RECORDS").write_text("".join(f"{leaf}/\n" for leaf in sorted(leaves)))
    for leaf, stems in leaves.items():
        (root / leaf).mkdir(parents=True, exist_ok=True)
        (root / leaf / "RECORDS").write_text("".join(f"{s}\n" for s in sorted(stems)))


# -- PTB-XL ----------------------------------------------------------------------------

PTBXL_LEAD_NAMES: tuple[str, ...] = ("I", "II", "III", "AVR", "AVL", "AVF",
                                     "V1", "V2", "V3", "V4", "V5", "V6")

PTBXL_COLUMNS: tuple[str, ...] = (
    "ecg_id", "patient_id", "age", "sex", "height", "weight", "nurse", "site", "device",
    "recording_date", "report", "scp_codes", "heart_axis", "infarction_stadium1",
    "infarction_stadium2", "validated_by", "second_opinion", "initial_autogenerated_report",
    "validated_by_human", "baseline_drift", "static_noise", "burst_noise", "electrodes_problems",
    "extra_beats", "pacemaker", "strat_fold", "filename_lr", "filename_hr",
)

# Columns the real CSV writes as floats (`15709.0`) although they hold integers.
_PTBXL_FLOAT_COLUMNS = ("patient_id", "age", "height", "weight", "nurse", "site", "validated_by")


def ptbxl_record_stem(ecg_id: int, fs: int = 500) -> str:
    """`records500/00000/00001_hr` (fs 500) or `records100/00000/00001_lr` (fs 100)."""
    if fs not in (100, 500):
        raise ValueError(f"PTB-XL records are 100 or 500 Hz; got fs={fs}")
    suffix = "hr" if fs == 500 else "lr"
    return f"records{fs}/{(int(ecg_id) // 1000) * 1000:05d}/{int(ecg_id):05d}_{suffix}"


def write_ptbxl_record(root: Path, ecg_id: int, signal_mv: np.ndarray, fs: int = 500) -> str:
    """Write one record byte-for-byte as wfdb.wrsamp writes PTB-XL's; returns the relative stem.

    The header and the format-16 .dat are written directly: wrsamp spends 0.1-0.25 s per
    call on field bookkeeping, which dominated demo-data generation. Samples are
    round(mV * 1000) (as wrsamp's adc); out-of-range values clip to +-32767 and NaN
    becomes -32768, where wrsamp would refuse the record.
    """
    signal_mv = np.asarray(signal_mv, dtype=np.float64)
    if signal_mv.ndim != 2 or signal_mv.shape[0] != len(LEADS):
        raise ValueError(f"signal_mv must be (12, n_samples); got shape {signal_mv.shape}")
    rel = ptbxl_record_stem(ecg_id, fs)
    folder_rel, stem = rel.rsplit("/", 1)
    folder = Path(root) / folder_rel
    folder.mkdir(parents=True, exist_ok=True)
    digital = _quantise_mv(signal_mv)                                   # (12, n) int16
    # format 16: little-endian int16, samples multiplexed (one frame = 12 leads)
    (folder / f"{stem}.dat").write_bytes(np.ascontiguousarray(digital.T).astype("<i2").tobytes())
    checksums = digital.astype(np.int64).sum(axis=1) % 65536           # wrsamp's unsigned checksum
    n = digital.shape[1]
    lines = [f"{stem} {len(PTBXL_LEAD_NAMES)} {int(fs)} {n}"]
    lines += [f"{stem}.dat 16 1000.0(0)/mV 16 0 {int(ch[0]) if n else 0} {int(cs)} 0 {name}"
              for name, ch, cs in zip(PTBXL_LEAD_NAMES, digital, checksums)]
    (folder / f"{stem}.hea").write_bytes(("\n".join(lines) + "\n").encode("ascii"))
    return rel


def _format_float(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
        return ""
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


def write_ptbxl_tables(root: Path, database: pd.DataFrame) -> None:
    """Write ptbxl_database.csv (28 columns, real order and number formats) and scp_statements.csv."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    db = database.copy()
    if "ecg_id" not in db.columns:
        db = db.reset_index()
    if "ecg_id" not in db.columns:
        raise ValueError("database needs an 'ecg_id' column or index")
    unknown = set(db.columns) - set(PTBXL_COLUMNS) - {"index"}
    if unknown:
        raise ValueError(f"database has columns that PTB-XL does not: {sorted(unknown)}")
    for col in PTBXL_COLUMNS:
        if col not in db.columns:
            db[col] = ""
    db = db[list(PTBXL_COLUMNS)].copy()
    # Fill the file names from ecg_id where the caller left them out.
    for col, fs in (("filename_lr", 100), ("filename_hr", 500)):
        empty = db[col].isna() | (db[col].astype(str) == "")
        db.loc[empty, col] = [ptbxl_record_stem(e, fs) for e in db.loc[empty, "ecg_id"]]
    for col in _PTBXL_FLOAT_COLUMNS:
        db[col] = [_format_float(v) for v in db[col]]
    db["scp_codes"] = [repr({k: float(v) for k, v in c.items()}) if isinstance(c, dict) else ("" if c is None else c)
                       for c in db["scp_codes"]]
    db["ecg_id"] = db["ecg_id"].astype(int)
    db = db.sort_values("ecg_id")
    db.to_csv(root / "ptbxl_database.csv", index=False, lineterminator="\n")

    statements = pd.DataFrame(SCP_STATEMENTS, columns=SCP_STATEMENT_COLUMNS).set_index(SCP_STATEMENT_COLUMNS[0])
    statements.index.name = None
    for col in ("diagnostic", "form", "rhythm"):
        statements[col] = statements[col].map(lambda v: 1.0 if v else np.nan)
    statements.to_csv(root / "scp_statements.csv", lineterminator="\r\n")


SCP_STATEMENT_COLUMNS: tuple[str, ...] = (
    "", "description", "diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass",
    "Statement Category", "SCP-ECG Statement Description", "AHA code", "aECG REFID", "CDISC Code",
    "DICOM Code",
)

_IMPULSE = "Statements related to impulse formation (abnormalities)"
_ECTOPIC = "Statements related to ectopic rhythm abnormalities"

# (code, description, diagnostic, form, rhythm, class, subclass, category, SCP description,
#  AHA, aECG REFID, CDISC, DICOM). Rhythm rows from data_formats.md §3.4; diagnostic and
# form rows carry the class/subclass that PTB-XL's aggregation uses.
SCP_STATEMENTS: tuple[tuple, ...] = (
    ("NDT", "non-diagnostic T abnormalities", 1, 1, 0, "STTC", "STTC", "other ST-T descriptive statements", "non-diagnostic T abnormalities", "", "", "", ""),
    ("NST_", "non-specific ST changes", 1, 1, 0, "STTC", "NST_", "Basic roots for coding ST-T changes and abnormalities", "non-specific ST changes", "", "", "", ""),
    ("DIG", "digitalis-effect", 1, 1, 0, "STTC", "STTC", "other ST-T descriptive statements", "suggests digitalis-effect", "205", "", "", ""),
    ("LNGQT", "long QT-interval", 1, 1, 0, "STTC", "STTC", "other ST-T descriptive statements", "long QT-interval", "", "", "", ""),
    ("NORM", "normal ECG", 1, 0, 0, "NORM", "NORM", "Normal/abnormal", "normal ECG", "1", "", "", "F-000B7"),
    ("IMI", "inferior myocardial infarction", 1, 0, 0, "MI", "IMI", "Myocardial Infarction", "inferior myocardial infarction", "161", "", "", ""),
    ("ASMI", "anteroseptal myocardial infarction", 1, 0, 0, "MI", "AMI", "Myocardial Infarction", "anteroseptal myocardial infarction", "165", "", "", ""),
    ("LVH", "left ventricular hypertrophy", 1, 0, 0, "HYP", "LVH", "Hypertrophy", "left ventricular hypertrophy", "142", "", "", "D3-31360"),
    ("LAFB", "left anterior fascicular block", 1, 0, 0, "CD", "LAFB/LPFB", "Intraventricular and intra-atrial conduction disturbances", "left anterior fascicular block", "101", "", "", ""),
    ("ISC_", "non-specific ischemic", 1, 0, 0, "STTC", "ISC_", "Basic roots for coding ST-T changes and abnormalities", "ischemic ST-T changes", "226", "", "", ""),
    ("IRBBB", "incomplete right bundle branch block", 1, 0, 0, "CD", "IRBBB", "Intraventricular and intra-atrial conduction disturbances", "incomplete right bundle branch block", "106", "", "", ""),
    ("1AVB", "first degree AV block", 1, 0, 0, "CD", "_AVB", "Atrioventricular conduction abnormalities", "first degree AV block", "82", "", "", ""),
    ("IVCD", "non-specific intraventricular conduction disturbance (block)", 1, 0, 0, "CD", "IVCD", "Intraventricular and intra-atrial conduction disturbances", "non-specific intraventricular conduction delay", "", "", "", ""),
    ("ISCAL", "ischemic in anterolateral leads", 1, 0, 0, "STTC", "ISCA", "Myocardial Ischemia", "ischemic in anterolateral leads", "", "", "", ""),
    ("CRBBB", "complete right bundle branch block", 1, 0, 0, "CD", "CRBBB", "Intraventricular and intra-atrial conduction disturbances", "complete right bundle branch block", "105", "", "", ""),
    ("CLBBB", "complete left bundle branch block", 1, 0, 0, "CD", "CLBBB", "Intraventricular and intra-atrial conduction disturbances", "complete left bundle branch block", "104", "", "", ""),
    ("ILMI", "inferolateral myocardial infarction", 1, 0, 0, "MI", "IMI", "Myocardial Infarction", "inferolateral myocardial infarction", "", "", "", ""),
    ("LAO/LAE", "left atrial overload/enlargement", 1, 0, 0, "HYP", "LAO/LAE", "Hypertrophy", "left atrial overload/enlargement", "", "", "", ""),
    ("AMI", "anterior myocardial infarction", 1, 0, 0, "MI", "AMI", "Myocardial Infarction", "anterior myocardial infarction", "", "", "", ""),
    ("ALMI", "anterolateral myocardial infarction", 1, 0, 0, "MI", "AMI", "Myocardial Infarction", "anterolateral myocardial infarction", "", "", "", ""),
    ("WPW", "Wolf-Parkinson-White syndrome", 1, 0, 0, "CD", "WPW", "Atrioventricular conduction abnormalities", "Wolf-Parkinson-White syndrome", "", "", "", ""),
    ("RVH", "right ventricular hypertrophy", 1, 0, 0, "HYP", "RVH", "Hypertrophy", "right ventricular hypertrophy", "143", "", "", ""),
    ("LPFB", "left posterior fascicular block", 1, 0, 0, "CD", "LAFB/LPFB", "Intraventricular and intra-atrial conduction disturbances", "left posterior fascicular block", "102", "", "", ""),
    ("ABQRS", "abnormal QRS", 0, 1, 0, "", "", "QRS abnormalities", "abnormal QRS(QRS changes)", "", "", "", ""),
    ("PVC", "ventricular premature complex", 0, 1, 0, "", "", "ectopic beats", "ventricular premature complex", "", "", "", ""),
    ("LVOLT", "low QRS voltages in the frontal and horizontal leads", 0, 1, 0, "", "", "Chamber Hypertrophy or Enlargement", "low QRS voltages in the frontal and horizontal leads", "", "", "", ""),
    ("HVOLT", "high QRS voltage", 0, 1, 0, "", "", "Chamber Hypertrophy or Enlargement", "high QRS voltage", "", "", "", ""),
    ("QWAVE", "Q waves present", 0, 1, 0, "", "", "QRS abnormalities", "Q waves present", "", "", "", ""),
    ("STD_", "non-specific ST depression", 0, 1, 0, "", "", "Basic roots for coding ST-T changes and abnormalities", "ST depression", "", "", "", ""),
    ("STE_", "non-specific ST elevation", 0, 1, 0, "", "", "Basic roots for coding ST-T changes and abnormalities", "ST elevation", "", "", "", ""),
    ("INVT", "inverted T-waves", 0, 1, 0, "", "", "Basic roots for coding ST-T changes and abnormalities", "inverted T-waves", "", "", "", ""),
    ("SR", "sinus rhythm", 0, 0, 1, "", "", _IMPULSE, "sinus rhythm", "20", "MDC_ECG_RHY_SINUS_RHY", "", ""),
    ("AFIB", "atrial fibrillation", 0, 0, 1, "", "", _IMPULSE, "atrial fibrillation", "50", "MDC_ECG_RHY_ATR_FIB", "", "D3-31520"),
    ("STACH", "sinus tachycardia", 0, 0, 1, "", "", _IMPULSE, "sinus tachycardia", "21", "MDC_ECG_RHY_SINUS_TACHY", "", ""),
    ("SARRH", "sinus arrhythmia", 0, 0, 1, "", "", _IMPULSE, "sinus arrhythmia", "23", "MDC_ECG_RHY_SINUS_ARRHY", "", ""),
    ("SBRAD", "sinus bradycardia", 0, 0, 1, "", "", _IMPULSE, "sinus bradycardia", "22", "MDC_ECG_RHY_SINUS_BRADY", "", ""),
    ("PACE", "normal functioning artificial pacemaker", 0, 0, 1, "", "", "Pacemaker types and pacemaker function", "normal functioning artificial pacemaker", "", "", "", ""),
    ("SVARR", "supraventricular arrhythmia", 0, 0, 1, "", "", _IMPULSE, "supraventricular arrhythmia", "", "", "", ""),
    ("BIGU", "bigeminal pattern (unknown origin, SV or Ventricular)", 0, 0, 1, "", "", _ECTOPIC, "bigeminal pattern (unknown origin, SV or Ventricular)", "", "", "", ""),
    ("AFLT", "atrial flutter", 0, 0, 1, "", "", _IMPULSE, "atrial flutter", "51", "MDC_ECG_RHY_ATR_FLUT", "", ""),
    ("SVTAC", "supraventricular tachycardia", 0, 0, 1, "", "", _IMPULSE, "supraventricular tachycardia", "55", "MDC_ECG_RHY_SV_TACHY", "", "D3-31290"),
    ("PSVT", "paroxysmal supraventricular tachycardia", 0, 0, 1, "", "", _IMPULSE, "paroxysmal supraventricular tachycardia", "", "MDC_ECG_RHY_SV_TACHY_PAROX", "", ""),
    ("TRIGU", "trigeminal pattern (unknown origin, SV or Ventricular)", 0, 0, 1, "", "", _ECTOPIC, "trigeminal pattern (unknown origin, SV or Ventricular)", "", "", "", ""),
)


# -- ACDC ------------------------------------------------------------------------------

def _save_nifti(data: np.ndarray, spacing: tuple[float, float, float], path: Path) -> None:
    zooms = tuple(float(s) for s in spacing) + ((1.0,) if data.ndim == 4 else ())
    img = nib.Nifti1Image(data, np.diag([*map(float, spacing), 1.0]))
    img.header.set_data_dtype(data.dtype)
    img.header.set_zooms(zooms)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(path))


def write_acdc_info(path: Path, *, ed: int, es: int, group: str | None, height: float,
                    weight: float, n_frames: int) -> None:
    """Info.cfg: six `key: value` lines in alphabetical key order, LF, trailing newline."""
    items = {"ED": str(int(ed)), "ES": str(int(es)), "Group": group, "Height": f"{float(height):.1f}",
             "NbFrame": str(int(n_frames)), "Weight": f"{float(weight):.1f}"}
    text = "".join(f"{k}: {v}\n" for k, v in sorted(items.items()) if v is not None)
    Path(path).write_bytes(text.encode("ascii"))


def write_acdc_patient(folder: Path, patient_id: str, volume: np.ndarray, spacing: tuple[float, float, float], *,
                       ed: int, es: int, group: str | None, height: float, weight: float,
                       masks: dict[int, np.ndarray] | None = None, dtype=np.int16,
                       write_citation: bool = True) -> Path:
    """Write one ACDC patient folder: Info.cfg, the 4-D cine, the ED/ES frames and optional _gt masks."""
    volume = np.asarray(volume)
    if volume.ndim != 4:
        raise ValueError(f"volume must be (x, y, z, t); got shape {volume.shape}")
    if len(spacing) != 3:
        raise ValueError(f"spacing must be (sx, sy, sz) in mm; got {spacing!r}")
    n_frames = volume.shape[3]
    for name, frame in (("ed", ed), ("es", es)):
        if not 1 <= int(frame) <= n_frames:
            raise ValueError(f"{name}={frame} is outside 1..{n_frames} (1-based, as in Info.cfg)")
    dtype = np.dtype(dtype)
    data = np.round(volume).astype(dtype) if dtype.kind == "i" else volume.astype(dtype)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_acdc_info(folder / "Info.cfg", ed=ed, es=es, group=group, height=height, weight=weight,
                    n_frames=n_frames)
    _save_nifti(data, spacing, folder / f"{patient_id}_4d.nii.gz")
    for frame in sorted({int(ed), int(es)}):
        _save_nifti(np.ascontiguousarray(data[..., frame - 1]), spacing,
                    folder / f"{patient_id}_frame{frame:02d}.nii.gz")
    for frame, mask in (masks or {}).items():
        mask = np.asarray(mask)
        if mask.shape != volume.shape[:3]:
            raise ValueError(f"mask for frame {frame} has shape {mask.shape}; expected {volume.shape[:3]}")
        _save_nifti(mask.astype(np.uint8), spacing, folder / f"{patient_id}_frame{int(frame):02d}_gt.nii.gz")
    if write_citation:
        (folder / "MANDATORY_CITATION.md").write_text(
            "Synthetic stand-in for an ACDC patient folder. Work using the real ACDC data must cite:\n"
            "O. Bernard et al., IEEE TMI 37(11):2514-2525, 2018, doi:10.1109/TMI.2018.2837502\n")
    return folder


# -- UK Biobank resting ECG (field 20205, GE CardioSoft CardiologyXML) -----------------

CARDIOSOFT_RESOLUTION_UV = 5.0   # µV per unit, what UK Biobank's resting ECGs carry


def cardiosoft_xml_name(eid: str | int, instance: int = 2) -> str:
    """`<eid>_20205_<instance>_0.xml`, UK Biobank's name for a resting-ECG export."""
    return f"{eid}_20205_{int(instance)}_0.xml"


def write_cardiosoft_xml(path: Path, signal_mv: np.ndarray, *, fs: int = 500,
                         resolution_uv: float = CARDIOSOFT_RESOLUTION_UV, age: int | None = None,
                         sex: str | None = None, comment: str = "Ruhe-EKG, Messung geprüft",
                         lead_names: Sequence[str] = LEADS) -> Path:
    """Write a CardioSoft `CardiologyXML` resting ECG, ISO-8859-1 encoded, as UK Biobank exports it.

    The 10 s strip goes into `StripData`: `NumberOfLeads`, `SampleRate`, `ChannelSampleCountTotal`,
    `Resolution` (µV per unit) and one `WaveformData lead="..."` of comma-separated integers per
    lead (samples = round(µV / resolution)). `comment` is a free-text field (its default has a
    non-ASCII character, as real exports' German texts do). `lead_names` relabels the leads (tests
    use it to write a file with a lead missing).
    """
    signal_mv = np.asarray(signal_mv, dtype=np.float64)
    if signal_mv.ndim != 2 or signal_mv.shape[0] != len(lead_names):
        raise ValueError(f"signal_mv must be ({len(lead_names)}, n_samples); got shape {signal_mv.shape}")
    if not resolution_uv > 0:
        raise ValueError(f"resolution_uv must be positive, got {resolution_uv}")
    from xml.sax.saxutils import escape
    units = np.rint(np.nan_to_num(signal_mv) * 1000.0 / resolution_uv).astype(np.int64)
    n = units.shape[1]
    res = f"{resolution_uv:g}"
    lines = ['<?xml version="1.0" encoding="ISO-8859-1"?>', "<CardiologyXML>",
             "  <ObservationType>RestECG</ObservationType>",
             "  <PatientInfo>"]
    if age is not None:
        lines.append(f'    <Age units="years">{int(age)}</Age>')
    if sex is not None:
        lines.append(f"    <Gender>{'MALE' if sex == 'M' else 'FEMALE'}</Gender>")
    lines += ["  </PatientInfo>",
              f"  <Interpretation><Comment>{escape(comment)}</Comment></Interpretation>",
              "  <StripData>",
              f"    <NumberOfLeads>{len(lead_names)}</NumberOfLeads>",
              f'    <SampleRate units="Hz">{int(fs)}</SampleRate>',
              f"    <ChannelSampleCountTotal>{n}</ChannelSampleCountTotal>",
              f'    <Resolution units="uVperLsb">{res}</Resolution>']
    for name, row in zip(lead_names, units):
        lines.append(f'    <WaveformData lead="{escape(str(name))}">' + ",".join(map(str, row.tolist()))
                     + "</WaveformData>")
    lines += ["  </StripData>", "</CardiologyXML>", ""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("\r\n".join(lines).encode("iso-8859-1"))
    return path


# -- paired ECG + CMR cohort -------------------------------------------------------------

def write_cine_nifti(path: Path, volume: np.ndarray, spacing: tuple[float, float, float], *,
                     dtype=np.int16) -> Path:
    """A 4-D short-axis cine (x, y, slices, time) as one NIfTI, like an ACDC `_4d.nii.gz`."""
    volume = np.asarray(volume)
    if volume.ndim != 4:
        raise ValueError(f"volume must be (x, y, z, t); got shape {volume.shape}")
    dtype = np.dtype(dtype)
    data = np.round(volume).astype(dtype) if dtype.kind == "i" else volume.astype(dtype)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_nifti(data, spacing, path)
    return path


def write_paired_manifest(root: Path, rows: Sequence[dict], columns: Sequence[str]) -> Path:
    """`manifest.csv` of a paired cohort: one row per subject, the given column order, LF, empty = missing."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(list(rows), columns=list(columns))
    path = root / "manifest.csv"
    df.to_csv(path, index=False, lineterminator="\n")
    return path
