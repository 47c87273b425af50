"""Paired ECG + CMR cohorts: the CardioSoft XML reader, the manifest's validation and `cardio ingest paired`.

Each bad-input case goes through the real CLI on a copy of a small cohort: the problem names the manifest line
or the file, the other subjects are stored, and what an earlier clean ingest stored for them is unchanged.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cardio_core.config import Workspace
from cardio_core.data.ingest_paired import ingest_paired
from cardio_core.data.paired_view import load_paired_view
from cardio_core.data.readers import cardiosoft_xml, paired
from cardio_core.data.splits import paired_split
from cardio_core.data.writers import write_cardiosoft_xml
from cardio_core.errors import CardioError, DatasetError, RecordError
from cardio_core.store import Store

from cardio_cli.testing import run_cli

sys.path.insert(0, str(Path(__file__).parent))
from paired_cohort import LEADS, ecg_signal, rewrite_manifest, write_cohort  # noqa: E402

N = 8


@pytest.fixture(scope="module")
def cohort_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("paired_src") / "paired"
    write_cohort(root, N)
    return root


@pytest.fixture
def cohort(cohort_root, tmp_path) -> tuple[Path, list[dict]]:
    dst = tmp_path / "paired"
    shutil.copytree(cohort_root, dst)
    rows = pd.read_csv(dst / "manifest.csv", dtype=str, keep_default_na=False).to_dict("records")
    return dst, rows


def _ingest(tmp_path, root, name="ws"):
    ws = Workspace(tmp_path / name)
    rc, out, err = run_cli("--workspace", str(ws.root), "ingest", "paired", str(root), "--workers", "1")
    assert rc == 0, err
    return ws, Store(ws.db_path), out


def _records(store):
    return store.query_df("SELECT dataset_id, record_id, split, excluded, exclusion_reason, age, sex, bmi "
                          "FROM records ORDER BY dataset_id, record_id")


def _problems(store):
    return store.query_df("SELECT dataset_id, file, problem FROM problems ORDER BY problem_id")


# -- CardioSoft XML ----------------------------------------------------------------------

def test_cardiosoft_xml_round_trip_in_iso_8859_1(tmp_path):
    sig = ecg_signal(1)
    path = write_cardiosoft_xml(tmp_path / "1234567_20205_2_0.xml", sig, age=61, sex="M")
    raw = path.read_bytes()
    assert raw.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>') and "geprüft".encode("iso-8859-1") in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    got, fs = cardiosoft_xml.read_record(path)
    assert fs == 500 and got.shape == (12, 5000) and got.dtype == np.float32
    # 5 µV per unit: the round trip is exact to half a unit
    assert np.abs(got - sig).max() <= 0.0025 + 1e-6


def test_cardiosoft_xml_leads_in_any_order_and_the_resolution_scales(tmp_path):
    sig = ecg_signal(2)
    order = list(reversed(range(12)))
    path = write_cardiosoft_xml(tmp_path / "a.xml", sig[order], lead_names=[LEADS[i] for i in order],
                                resolution_uv=2.5)
    got, _ = cardiosoft_xml.read_record(path)
    assert np.abs(got - sig).max() <= 0.00125 + 1e-6


@pytest.mark.parametrize("case, expected", [
    ("missing_lead", "missing leads V6"),
    ("wrong_rate", "sampling rate 250 Hz is not supported"),
    ("short", "10 s (5000 samples) required"),
    ("not_xml", "malformed XML"),
    ("not_cardiosoft", "no StripData element"),
])
def test_cardiosoft_xml_bad_files_name_the_file_and_the_problem(tmp_path, case, expected):
    sig = ecg_signal(3)
    path = tmp_path / f"{case}.xml"
    if case == "missing_lead":
        write_cardiosoft_xml(path, sig[:11], lead_names=LEADS[:11])
    elif case == "wrong_rate":
        write_cardiosoft_xml(path, sig[:, ::2], fs=250)
    elif case == "short":
        write_cardiosoft_xml(path, sig[:, :2500])
    elif case == "not_xml":
        path.write_bytes(b"<CardiologyXML><StripData>")
    else:
        path.write_bytes(b"<?xml version='1.0'?><RestingECG><Waveform/></RestingECG>")
    with pytest.raises(RecordError) as exc:
        cardiosoft_xml.read_record(path)
    assert str(path) in str(exc.value) and expected in str(exc.value)


# -- the manifest ------------------------------------------------------------------------

def test_a_clean_cohort_reads_both_ecg_formats_and_4d_cines(cohort):
    root, _ = cohort
    m = paired.read_manifest(root)
    assert len(m.rows) == N and not m.problems and m.outcome_columns == ("heart_failure",)
    formats = set()
    for row in m.rows:
        s = paired.read_subject(root, row)
        formats.add(s.ecg_format)
        assert s.ecg.shape == (12, 5000) and s.fs == 500 and s.cmr.ndim == 4
        if row.ed_frame is None:
            assert (s.ed, s.es) == paired.default_frames(s.n_frames)
    assert formats == {"wfdb", "cardiosoft_xml"}


def test_a_manifest_without_a_required_column_is_refused_naming_the_columns(cohort):
    root, rows = cohort
    pd.DataFrame(rows).drop(columns=["LVEF", "cmr_path"]).to_csv(root / "manifest.csv", index=False)
    with pytest.raises(DatasetError) as exc:
        paired.read_manifest(root)
    assert "manifest.csv" in str(exc.value) and "cmr_path" in str(exc.value) and "LVEF" in str(exc.value)


@pytest.mark.parametrize("edit, expected", [
    (dict(LVEF="sixty"), "LVEF 'sixty' is not a number"),
    (dict(LVEF="97"), "LVEF 97 % is outside 5-95 %"),
    (dict(RVESV="-3"), "negative RVESV -3"),
    (dict(LVSV="120"), "LVSV 120 differs from LVEDV - LVESV"),
    (dict(ed_frame="0"), "ed_frame '0' is not a frame number"),
])
def test_a_bad_manifest_row_is_rejected_and_the_batch_goes_on(cohort, tmp_path, edit, expected):
    root, rows = cohort
    ws, store, _ = _ingest(tmp_path, root, "before")
    before = _records(store)
    rows[2].update(edit)
    rewrite_manifest(root, rows)
    ws2, store2, out = _ingest(tmp_path, root, "after")
    bad = rows[2]["subject_id"]
    probs = _problems(store2)
    hit = probs[probs["problem"].str.contains(expected, regex=False)]
    assert len(hit) == 1 and hit["file"].iloc[0].endswith("manifest.csv"), probs
    assert f"line 4, subject {bad}" in hit["problem"].iloc[0] and expected in out
    after = _records(store2)
    gone = after[after["record_id"] == bad]
    assert gone["excluded"].all() and gone["exclusion_reason"].str.startswith("manifest:").all()
    kept = after[after["record_id"] != bad].reset_index(drop=True)
    assert kept["exclusion_reason"].isna().all() and kept["split"].notna().all()
    cols = ["dataset_id", "record_id", "excluded", "age", "sex", "bmi"]
    assert kept[cols].equals(before[before["record_id"] != bad][cols].reset_index(drop=True))
    assert len(load_paired_view(store2)) == N - 1


def test_a_duplicate_subject_id_rejects_every_row_with_it(cohort, tmp_path):
    root, rows = cohort
    rows[5]["subject_id"] = rows[4]["subject_id"]
    rewrite_manifest(root, rows)
    _, store, out = _ingest(tmp_path, root)
    dup = rows[4]["subject_id"]
    probs = _problems(store)["problem"]
    assert probs.str.contains(f"subject id {dup} appears on lines 6, 7").sum() == 2
    assert dup not in load_paired_view(store).subject_ids and len(load_paired_view(store)) == N - 2


@pytest.mark.parametrize("case, expected", [
    ("ecg_missing", "does not exist"),
    ("cmr_missing", "4-D cine NIfTI is missing"),
    ("cmr_3d", "4-D"),
    ("xml_missing_lead", "missing leads V6"),
    ("xml_wrong_rate", "sampling rate 250 Hz is not supported"),
])
def test_a_bad_file_excludes_its_subject_names_the_file_and_keeps_the_rest(cohort, tmp_path, case, expected):
    root, rows = cohort
    _, store, _ = _ingest(tmp_path, root, "before")
    before = load_paired_view(store)
    before_ecg = {sid: before.ecg.arrays.get(sid) for sid in before.subject_ids}
    xml_row = next(r for r in rows if r["ecg_path"].endswith(".xml"))
    row = xml_row if case.startswith("xml") else rows[2]
    target = root / (row["cmr_path"] if case.startswith("cmr") else row["ecg_path"])
    if case == "ecg_missing":
        target.unlink()
    elif case == "cmr_missing":
        target.unlink()
    elif case == "cmr_3d":
        vol = np.asanyarray(nib.load(str(target)).dataobj)[..., 0]
        nib.save(nib.Nifti1Image(vol, np.eye(4)), str(target))
    elif case == "xml_missing_lead":
        write_cardiosoft_xml(target, ecg_signal(4)[:11], lead_names=LEADS[:11])
    else:
        write_cardiosoft_xml(target, ecg_signal(4)[:, ::2], fs=250)
    _, store2, out = _ingest(tmp_path, root, "after")
    probs = _problems(store2)
    hit = probs[probs["problem"].str.contains(expected, regex=False)]
    assert len(hit) == 1, probs
    assert hit["file"].iloc[0] == str(target) and f"subject {row['subject_id']}" in hit["problem"].iloc[0]
    assert str(target) in out
    recs = _records(store2).set_index(["dataset_id", "record_id"])
    side = "paired_cmr" if case.startswith("cmr") else "paired_ecg"
    other = "paired_ecg" if side == "paired_cmr" else "paired_cmr"
    assert recs.loc[(side, row["subject_id"]), "exclusion_reason"].startswith("unreadable:")
    assert "is unusable" in recs.loc[(other, row["subject_id"]), "exclusion_reason"]
    view = load_paired_view(store2)
    assert row["subject_id"] not in view.subject_ids and len(view) == N - 1
    for sid in view.subject_ids:   # the others' arrays are exactly those of the clean ingest
        assert np.array_equal(view.ecg.arrays.get(sid), before_ecg[sid])


def test_re_ingest_after_a_fix_restores_the_subject_and_skips_unchanged_chunks(cohort, tmp_path):
    root, rows = cohort
    ws = Workspace(tmp_path / "ws").ensure()
    store = Store(ws.db_path)
    first = ingest_paired(store, ws, root, workers=1)
    assert first.n_ok == N and first.n_skipped_chunks == 0
    again = ingest_paired(store, ws, root, workers=1)
    assert again.n_skipped_chunks == 1 and again.n_ok == N
    saved = rows[1]["LVEF"]
    rows[1]["LVEF"] = "abc"
    rewrite_manifest(root, rows)
    assert ingest_paired(store, ws, root, workers=1).n_ok == N - 1
    rows[1]["LVEF"] = saved
    rewrite_manifest(root, rows)
    fixed = ingest_paired(store, ws, root, workers=1)
    assert fixed.n_ok == N and fixed.n_rejected == 0
    assert not store.query("SELECT * FROM problems WHERE dataset_id = 'paired' AND stage = 'list'")


def test_splits_phenotypes_and_the_view_line_up(cohort, tmp_path):
    root, rows = cohort
    _, store, out = _ingest(tmp_path, root)
    assert f"{N} usable subjects" in out
    recs = _records(store)
    by = recs.pivot(index="record_id", columns="dataset_id", values="split")
    assert (by["paired_ecg"] == by["paired_cmr"]).all()        # one split per subject, in both datasets
    views = {s: load_paired_view(store, s) for s in ("train", "val", "test")}
    assert sum(len(v) for v in views.values()) == N
    for v in views.values():
        assert v.subject_ids == sorted(v.subject_ids)
        assert list(v.ecg.records["record_id"]) == v.subject_ids == list(v.cmr.records["record_id"])
        assert len(v.ecg.arrays) == len(v.cmr.arrays) == len(v)
    lvedv = dict(store.query("SELECT subject_id, value FROM subject_values WHERE name = 'LVEDV'"))
    assert lvedv == {r["subject_id"]: float(r["LVEDV"]) for r in rows}
    hf = dict(store.query("SELECT subject_id, value FROM subject_values WHERE kind = 'outcome'"))
    assert hf[rows[0]["subject_id"]] == 1.0 and sum(hf.values()) == 1.0


def test_paired_split_is_seeded_70_15_15_and_ignores_row_order():
    ids = [f"{1000000 + i}" for i in range(200)]
    a = paired_split(ids, seed=3)
    b = paired_split(list(reversed(ids)), seed=3)[::-1]
    assert (a == b).all()
    assert {k: int((a == k).sum()) for k in ("train", "val", "test")} == {"train": 140, "val": 30, "test": 30}
    assert not (paired_split(ids, seed=4) == a).all()
    with pytest.raises(ValueError):
        paired_split(["1", "1"])


def test_without_a_paired_cohort_the_view_says_how_to_get_one(tmp_path):
    ws = Workspace(tmp_path / "ws").ensure()
    with pytest.raises(CardioError, match="cardio ingest paired PATH"):
        load_paired_view(Store(ws.db_path), "train")
