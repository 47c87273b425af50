"""A small paired ECG + CMR cohort written with the project's writers, for reader and ingest tests.

Deliberately independent of the demo generator: the tests below break single files and manifest cells, and
need to know exactly what each subject's files hold.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from cardio_core import labels as L
from cardio_core.data.readers.paired import REQUIRED_COLUMNS
from cardio_core.data.writers import (cardiosoft_xml_name, write_cardiosoft_xml, write_chapman_record,
                                      write_cine_nifti, write_paired_manifest)
from cardio_core.demo.cmr_synth import synthesize_cine
from cardio_core.demo.ecg_synth import synthesize_ecg

COLUMNS = REQUIRED_COLUMNS + ("ed_frame", "es_frame", "heart_failure")
SPACING = (1.8, 1.8, 10.0)


def phenotypes(lvedv: float, lvesv: float, rvedv: float, rvesv: float, hr: float = 65.0) -> dict:
    lvsv, rvsv = lvedv - lvesv, rvedv - rvesv
    return dict(LVEDV=lvedv, LVESV=lvesv, LVSV=lvsv, LVEF=round(100 * lvsv / lvedv, 1),
                LVCO=round(lvsv * hr / 1000, 2), LVM=110.0, RVEDV=rvedv, RVESV=rvesv, RVSV=rvsv,
                RVEF=round(100 * rvsv / rvedv, 1))


def write_cohort(root: Path, n: int = 8, *, seed: int = 0) -> list[dict]:
    """`n` subjects, alternately WFDB and CardioSoft XML ECGs, 4-D cines; returns the manifest rows written."""
    root = Path(root)
    rows = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        eid = str(1000001 + i)
        ecg, _ = synthesize_ecg(["SR"], rng)
        if i % 2 == 0:
            write_chapman_record(root / "ecg", eid, ecg, age=None, sex=None, dx_codes=(),
                                 comments=("Age: 60", "Sex: Male"))
            ecg_path = f"ecg/{eid}.hea"
        else:
            ecg_path = f"ecg/{cardiosoft_xml_name(eid)}"
            write_cardiosoft_xml(root / ecg_path, ecg, age=60, sex="F")
        volume, _, ed, es = synthesize_cine("NOR", rng, shape=(96, 96), n_slices=3, n_frames=6, spacing=SPACING)
        cmr_path = f"cmr/{eid}_sa.nii.gz"
        write_cine_nifti(root / cmr_path, volume, SPACING)
        row = dict(subject_id=eid, ecg_path=ecg_path, cmr_path=cmr_path, age=50 + i, sex="M" if i % 2 else "F",
                   height=170.0, weight=70.0 + i, **phenotypes(150.0 + i, 60.0, 160.0, 70.0),
                   ed_frame=ed if i % 3 == 0 else "", es_frame=es if i % 3 == 0 else "",
                   heart_failure=int(i == 0))
        rows.append(row)
    write_paired_manifest(root, rows, COLUMNS)
    return rows


def rewrite_manifest(root: Path, rows: list[dict]) -> None:
    write_paired_manifest(root, rows, COLUMNS)


def ecg_signal(seed: int = 0) -> np.ndarray:
    return synthesize_ecg(["SR"], np.random.default_rng(seed))[0]


LEADS = L.LEADS
