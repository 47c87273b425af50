"""End-to-end ingest: bad input through the real CLI, resumability, persisted splits, arrays.

Every bad-input case is checked the same way: the problems table names the file and
the problem, `cardio ingest` prints it, the rest of the batch is stored, and records
stored by an earlier clean run keep identical rows, labels and preprocessed arrays.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from cardio_core import labels as L
import pytest
import wfdb

from cardio_core.data import ingest
from cardio_core.config import Workspace
from cardio_core.data.readers import acdc, chapman, ptbxl
from cardio_core.data.writers import write_chapman_record
from cardio_core.data.ingest import ingest_dataset
from cardio_core.data.preprocessing.cmr import preprocess_cmr
from cardio_core.data.preprocessing.ecg import preprocess_ecg
from cardio_core.data.preprocessing.storage import PreprocessedArrays
from cardio_core.store import Store

from cardio_cli.testing import run_cli

REPO = Path(__file__).resolve().parents[3]


# -- helpers ------------------------------------------------------------------------------

def _arrays(store: Store, ws: Workspace, dataset: str) -> dict[str, np.ndarray]:
    arr = PreprocessedArrays.from_store(store, ws.preprocessed_dir / dataset, dataset)
    return {rid: arr.get(rid) for rid in arr.record_ids}


def _records(store: Store, dataset: str) -> pd.DataFrame:
    return store.query_df("SELECT * FROM records WHERE dataset_id = ? ORDER BY record_id", [dataset]).set_index(
        "record_id")


def _labels(store: Store, dataset: str) -> dict[str, list[str]]:
    df = store.query_df("SELECT record_id, class FROM labels WHERE dataset_id = ? ORDER BY record_id, class",
                        [dataset])
    return df.groupby("record_id")["class"].agg(list).to_dict()


def _snapshot(store: Store, ws: Workspace, dataset: str) -> dict:
    return dict(arrays=_arrays(store, ws, dataset), records=_records(store, dataset), labels=_labels(store, dataset))


def _problems(store: Store, dataset: str) -> pd.DataFrame:
    return store.query_df("SELECT file, problem, stage FROM problems WHERE dataset_id = ?", [dataset])


def _assert_problem(ctx, file, fragment):
    """The problems table has a row naming `file` with `fragment` in it, and the CLI printed it."""
    probs = ctx["problems"]
    hits = probs[(probs["file"] == str(file)) & probs["problem"].str.contains(fragment, regex=False)]
    assert len(hits) == 1, f"no single problem row for {file} containing {fragment!r}:\n{probs.to_string()}"
    line = f"{file}: {hits['problem'].iloc[0]}"
    assert line in ctx["stdout"], f"CLI output lacks {line!r}"


def _assert_excluded(ctx, record_id, fragment):
    rec = ctx["records"].loc[record_id]
    assert bool(rec["excluded"]) and fragment in rec["exclusion_reason"], rec["exclusion_reason"]
    assert pd.isna(rec["split"]) and pd.isna(rec["fold"])
    assert record_id not in ctx["arrays"] and record_id not in ctx["labels"]


def _assert_kept(ctx, record_id, flag=None):
    rec = ctx["records"].loc[record_id]
    assert not bool(rec["excluded"]), rec["exclusion_reason"]
    assert ctx["arrays"][record_id].shape == (12, 5000)
    if flag is not None:
        assert flag in (rec["flags"] or ""), rec["flags"]


def _assert_untouched_records_intact(ctx, untouched):
    before, after = ctx["before"], ctx
    assert untouched, "the test should leave some records alone"
    assert any(rid in before["arrays"] for rid in untouched)
    cols = [c for c in before["records"].columns if c not in ("split", "fold")]
    for rid in untouched:
        assert (rid in after["arrays"]) == (rid in before["arrays"]), rid
        if rid in before["arrays"]:
            np.testing.assert_array_equal(after["arrays"][rid], before["arrays"][rid], err_msg=rid)
        assert after["labels"].get(rid) == before["labels"].get(rid), rid
        assert _row(after["records"], rid, cols) == _row(before["records"], rid, cols), rid


def _row(df: pd.DataFrame, rid: str, cols) -> dict:
    return {c: None if pd.isna(v) else v for c, v in df.loc[rid, cols].items()}


def _ingest_cli(ws: Workspace, dataset: str, path: Path) -> tuple[int, str, str]:
    return run_cli("--workspace", ws.root, "ingest", dataset, path, "--show-problems", "1000")


@pytest.fixture(scope="module")
def small_chunks():
    """Several chunks even for the small demo sets, so both worker processes get work."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ingest, "CHUNK_SIZE", 6)
        yield


def _clean_then_broken(tmp_path: Path, demo_root: Path, dataset: str, break_files) -> dict:
    """Copy the demo dataset, ingest it clean, break files with `break_files(folder, store)`, ingest
    again through the CLI. Returns the state after both runs and the breakage details."""
    folder = tmp_path / dataset
    shutil.copytree(demo_root / dataset, folder)
    ws = Workspace(tmp_path / "ws").ensure()
    store = Store(ws.db_path)
    ingest_dataset(store, ws, dataset, folder)
    before = _snapshot(store, ws, dataset)
    details = break_files(folder, store, before)
    time.sleep(0.01)  # distinct mtimes on coarse file systems
    rc, out, err = _ingest_cli(ws, dataset, folder)
    assert rc == 0, err
    return dict(_snapshot(store, ws, dataset), before=before, details=details, stdout=out, stderr=err,
                problems=_problems(store, dataset), folder=folder, ws=ws, store=store)


# -- Chapman --------------------------------------------------------------------------------

def _good_chapman(before) -> list[str]:
    recs = before["records"]
    return [rid for rid in recs.index if not recs.loc[rid, "excluded"] and pd.isna(recs.loc[rid, "flags"])]


def _break_chapman(folder: Path, store: Store, before: dict) -> dict:
    good = _good_chapman(before)
    hea = {rid: Path(before["records"].loc[rid, "source_path"]) for rid in good}
    truncated, garbled, template = good[0], good[1], good[2]
    # broken in place: records a clean run stored earlier
    mat = hea[truncated].with_suffix(".mat")
    mat.write_bytes(mat.read_bytes()[:5000])
    mat = hea[garbled].with_suffix(".mat")
    mat.write_bytes(bytes(range(256)) * 20)

    # new records written next to them, one per case
    rec = wfdb.rdrecord(str(hea[template].with_suffix("")))
    sig = rec.p_signal.T.copy()
    new_dir = folder / "WFDBRecords" / "46" / "460"
    new = {}

    def write(name, signal, fs=500, age=60, sex="Male", dx=("426783006",)):
        rid = f"JS9{len(new) + 1:04d}"
        new[name] = rid
        return write_chapman_record(new_dir, rid, signal, age=age, sex=sex, dx_codes=list(dx), fs=fs)

    def edit(path, old, repl):
        text = path.read_text()
        assert old in text, (old, text)
        path.write_text(text.replace(old, repl, 1))

    p = write("length_mismatch", sig)
    edit(p, f"{new['length_mismatch']} 12 500 5000", f"{new['length_mismatch']} 12 500 6000")
    write("fs_250", sig[:, ::2], fs=250)
    p = write("eleven_leads", sig)
    lines = p.read_text().splitlines()
    p.write_text("\n".join([lines[0].replace(" 12 ", " 11 ")] + lines[1:12] + lines[13:]) + "\n")
    p = write("unknown_lead", sig)
    edit(p, " V6\n", " V7\n")
    write("short", sig[:, :2500])
    nan_sig = sig.copy()
    nan_sig[3, 100:200] = np.nan
    write("nan_lead", nan_sig)
    flat_sig = sig.copy()
    flat_sig[7] = 0.0
    write("flat_lead", flat_sig)
    p = write("no_age", sig)
    edit(p, "#Age: 60\n", "")
    p = write("bad_age", sig)
    edit(p, "#Age: 60", "#Age: sixty")
    p = write("no_sex", sig)
    edit(p, "#Sex: Male\n", "")
    p = write("bad_sex", sig)
    edit(p, "#Sex: Male", "#Sex: X")
    p = write("no_dx", sig)
    edit(p, "#Dx: 426783006\n", "")
    p = write("bad_dx", sig)
    edit(p, "#Dx: 426783006", "#Dx: 426783006,SR")
    write("unknown_code", sig, dx=("426783006", "999999999"))
    write("only_unknown", sig, dx=("999999999",))
    untouched = [rid for rid in before["records"].index if rid not in (truncated, garbled)]
    return dict(truncated=truncated, garbled=garbled, hea=hea, new=new, new_dir=new_dir, untouched=untouched)


@pytest.fixture(scope="module")
def bad_chapman(tmp_path_factory, demo_root, small_chunks):
    return _clean_then_broken(tmp_path_factory.mktemp("bad_chapman"), demo_root, "chapman", _break_chapman)


def _new_hea(ctx, name) -> Path:
    return ctx["details"]["new_dir"] / f"{ctx['details']['new'][name]}.hea"


def test_chapman_records_broken_after_a_clean_run_are_excluded(bad_chapman):
    d = bad_chapman["details"]
    for key, fragment in (("truncated", "length mismatch"), ("garbled", "")):
        rid = d[key]
        hea = d["hea"][rid]
        probs = bad_chapman["problems"]
        row = probs[probs["file"] == str(hea)]
        assert len(row) == 1 and row["stage"].iloc[0] == "read", probs.to_string()
        _assert_problem(bad_chapman, hea, fragment)
        _assert_excluded(bad_chapman, rid, "unreadable: " + row["problem"].iloc[0])


@pytest.mark.parametrize("name, fragment", [
    ("length_mismatch", "header/data length mismatch"),
    ("eleven_leads", "11 leads; 12 required"),
    ("unknown_lead", "unknown lead names ['V7']"),
    ("short", "record is 5.0 s; 10 s required"),
    ("no_dx", "header has no #Dx line"),
    ("bad_dx", "malformed #Dx: 'SR'"),
])
def test_chapman_fatal_problems(bad_chapman, name, fragment):
    _assert_problem(bad_chapman, _new_hea(bad_chapman, name), fragment)
    _assert_excluded(bad_chapman, bad_chapman["details"]["new"][name], fragment)


@pytest.mark.parametrize("name, fragment", [
    ("fs_250", "resampled from 250 Hz to 500 Hz"),
    ("nan_lead", "invalid (NaN) samples in leads aVR"),
    ("flat_lead", "flat lead(s): V2"),
    ("no_age", "age missing: header has no #Age line"),
    ("bad_age", "malformed #Age: 'sixty'"),
    ("no_sex", "sex missing: header has no #Sex line"),
    ("bad_sex", "malformed #Sex: 'X'"),
    ("unknown_code", "SNOMED codes outside the 20-class table (ignored): 999999999"),
])
def test_chapman_warnings_keep_the_record_and_flag_it(bad_chapman, name, fragment):
    _assert_problem(bad_chapman, _new_hea(bad_chapman, name), fragment)
    _assert_kept(bad_chapman, bad_chapman["details"]["new"][name], flag=fragment)


def test_chapman_unknown_codes_only_excluded_with_reason(bad_chapman):
    rid = bad_chapman["details"]["new"]["only_unknown"]
    _assert_problem(bad_chapman, _new_hea(bad_chapman, "only_unknown"), "999999999")
    _assert_excluded(bad_chapman, rid, "no mapped SNOMED code")
    codes = bad_chapman["store"].query("SELECT code, mapped_class FROM record_codes WHERE record_id = ?", [rid])
    assert codes == [("999999999", None)]  # the raw code is kept for display


def test_chapman_resampled_record_matches_resample_then_preprocess(bad_chapman):
    rid = bad_chapman["details"]["new"]["fs_250"]
    rec = chapman.read_record(_new_hea(bad_chapman, "fs_250"))
    np.testing.assert_array_equal(bad_chapman["arrays"][rid], preprocess_ecg(rec.signal, fs=rec.fs))


def test_chapman_batch_goes_on_and_stored_records_are_intact(bad_chapman):
    _assert_untouched_records_intact(bad_chapman, bad_chapman["details"]["untouched"])
    d = bad_chapman["details"]
    n_before = len(bad_chapman["before"]["records"])
    assert len(bad_chapman["records"]) == n_before + len(d["new"])
    summary = [ln for ln in bad_chapman["stdout"].splitlines() if ln.startswith("chapman:")][0]
    n_usable = int((~bad_chapman["records"]["excluded"]).sum())
    assert f"{n_usable} usable records" in summary
    # every usable record has exactly one array and a split
    usable = bad_chapman["records"][~bad_chapman["records"]["excluded"]]
    assert set(usable.index) == set(bad_chapman["arrays"])
    assert usable["split"].isin(["train", "val", "test"]).all()


def test_problems_command_lists_the_stored_problems(bad_chapman):
    rc, out, _ = run_cli("--workspace", bad_chapman["ws"].root, "problems", "--dataset", "chapman",
                         "--limit", "1000")
    assert rc == 0
    for file, problem in bad_chapman["problems"][["file", "problem"]].itertuples(index=False):
        assert f"{file}: {problem}" in out


def test_reingesting_unchanged_files_skips_every_chunk_and_keeps_problems(bad_chapman):
    store, ws = bad_chapman["store"], bad_chapman["ws"]
    n_problems = len(bad_chapman["problems"])
    res = ingest_dataset(store, ws, "chapman", bad_chapman["folder"])
    n_chunks = -(-res.n_files // ingest.CHUNK_SIZE)
    assert res.n_skipped_chunks == n_chunks
    assert len(_problems(store, "chapman")) == n_problems  # not duplicated, not dropped
    np.testing.assert_array_equal(_arrays(store, ws, "chapman")[bad_chapman["details"]["untouched"][0]],
                                  bad_chapman["arrays"][bad_chapman["details"]["untouched"][0]])


# -- PTB-XL ---------------------------------------------------------------------------------

def _break_ptbxl(folder: Path, store: Store, before: dict) -> dict:
    db = pd.read_csv(folder / "ptbxl_database.csv")
    per_patient = db.groupby("patient_id")["ecg_id"].transform("size")
    single = set(db.loc[per_patient == 1, "ecg_id"].astype(str))
    recs = before["records"]
    usable = [rid for rid in recs.index if not recs.loc[rid, "excluded"] and rid in single]
    bad_scp, missing, corrupt = usable[:3]
    row = db["ecg_id"].astype(str) == bad_scp
    db.loc[row, "scp_codes"] = "{'SR': 0.0"  # unterminated dict literal
    db.to_csv(folder / "ptbxl_database.csv", index=False)
    hea = {rid: Path(recs.loc[rid, "source_path"]) for rid in (missing, corrupt)}
    hea[missing].unlink()
    hea[missing].with_suffix(".dat").unlink()
    dat = hea[corrupt].with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:10000])
    # records whose patient has one ECG stay drawn whatever happens to the others
    untouched = [rid for rid in usable if rid not in (bad_scp, missing, corrupt)]
    return dict(bad_scp=bad_scp, missing=missing, corrupt=corrupt, hea=hea, untouched=untouched)


@pytest.fixture(scope="module")
def bad_ptbxl(tmp_path_factory, demo_root, small_chunks):
    return _clean_then_broken(tmp_path_factory.mktemp("bad_ptbxl"), demo_root, "ptbxl", _break_ptbxl)


def test_ptbxl_malformed_scp_codes(bad_ptbxl):
    rid = bad_ptbxl["details"]["bad_scp"]
    csv = ptbxl.find_root(bad_ptbxl["folder"]) / "ptbxl_database.csv"
    _assert_problem(bad_ptbxl, csv, f"ecg_id {rid}: malformed scp_codes")
    _assert_excluded(bad_ptbxl, rid, "no longer in the dataset listing")


def test_ptbxl_file_named_in_csv_but_missing(bad_ptbxl):
    rid = bad_ptbxl["details"]["missing"]
    _assert_problem(bad_ptbxl, bad_ptbxl["details"]["hea"][rid], "is missing")
    _assert_excluded(bad_ptbxl, rid, "is missing")


def test_ptbxl_truncated_dat(bad_ptbxl):
    rid = bad_ptbxl["details"]["corrupt"]
    _assert_problem(bad_ptbxl, bad_ptbxl["details"]["hea"][rid], "length mismatch")
    _assert_excluded(bad_ptbxl, rid, "length mismatch")


def test_ptbxl_batch_goes_on_and_stored_records_are_intact(bad_ptbxl):
    _assert_untouched_records_intact(bad_ptbxl, bad_ptbxl["details"]["untouched"])
    usable = bad_ptbxl["records"][~bad_ptbxl["records"]["excluded"]]
    assert set(usable.index) == set(bad_ptbxl["arrays"])
    assert usable["patient_id"].is_unique


# -- ACDC -----------------------------------------------------------------------------------

def _copy_patient(src: Path, number: int) -> Path:
    name = f"patient{number:03d}"
    dst = src.parent / name
    shutil.copytree(src, dst)
    for f in dst.iterdir():
        f.rename(dst / f.name.replace(src.name, name))
    return dst


def _break_acdc(folder: Path, store: Store, before: dict) -> dict:
    patients = acdc.list_patients(folder)
    broken, template = patients[0], patients[1]
    gz = broken / f"{broken.name}_4d.nii.gz"
    data = gz.read_bytes()
    gz.write_bytes(data[:20] + bytes(len(data) - 20))  # gzip header kept, stream garbage
    new = {}
    p = new["missing_keys"] = _copy_patient(template, 901)
    p.joinpath("Info.cfg").write_text("\n".join(ln for ln in p.joinpath("Info.cfg").read_text().splitlines()
                                                if not ln.startswith(("ED", "Height"))) + "\n")
    p = new["three_d"] = _copy_patient(template, 902)
    img = nib.load(str(p / f"{p.name}_4d.nii.gz"))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[..., 0], img.affine), str(p / f"{p.name}_4d.nii.gz"))
    p = new["bad_gzip"] = _copy_patient(template, 903)
    (p / f"{p.name}_4d.nii.gz").write_bytes(gzip.compress(b"not a nifti")[:15])
    p = new["es_out_of_range"] = _copy_patient(template, 904)
    text = p.joinpath("Info.cfg").read_text()
    p.joinpath("Info.cfg").write_text("".join(f"ES: 99\n" if ln.startswith("ES:") else ln + "\n"
                                              for ln in text.splitlines()))
    untouched = [rid for rid in before["records"].index if rid != broken.name]
    return dict(broken=broken, new=new, untouched=untouched)


@pytest.fixture(scope="module")
def bad_acdc(tmp_path_factory, demo_root, small_chunks):
    return _clean_then_broken(tmp_path_factory.mktemp("bad_acdc"), demo_root, "acdc", _break_acdc)


@pytest.mark.parametrize("case, file, fragment", [
    ("missing_keys", "Info.cfg", "Info.cfg lacks ED, Height"),
    ("three_d", "_4d.nii.gz", "NIfTI is 3-D"),
    ("bad_gzip", "_4d.nii.gz", "cannot read NIfTI"),
    ("es_out_of_range", "Info.cfg", "ES 99 is outside 1.."),
])
def test_acdc_bad_patients(bad_acdc, case, file, fragment):
    folder = bad_acdc["details"]["new"][case]
    path = folder / file if file == "Info.cfg" else folder / f"{folder.name}{file}"
    _assert_problem(bad_acdc, path, fragment)
    _assert_excluded(bad_acdc, folder.name, fragment)


def test_acdc_patient_corrupted_after_a_clean_run(bad_acdc):
    broken = bad_acdc["details"]["broken"]
    _assert_problem(bad_acdc, broken / f"{broken.name}_4d.nii.gz", "cannot read NIfTI")
    _assert_excluded(bad_acdc, broken.name, "cannot read NIfTI")
    _assert_untouched_records_intact(bad_acdc, bad_acdc["details"]["untouched"])
    assert bad_acdc["records"].loc[bad_acdc["details"]["untouched"], "fold"].notna().all()


def test_missing_dataset_folder_is_a_clear_error_and_changes_nothing(bad_acdc, tmp_path):
    store, ws = bad_acdc["store"], bad_acdc["ws"]
    tables = ("datasets", "records", "labels", "record_codes", "problems", "preprocessed")
    snapshot = {t: store.query_df(f"SELECT * FROM {t} ORDER BY ALL") for t in tables}
    shards = sorted(p.name for p in ws.preprocessed_dir.rglob("*"))
    for dataset in ("chapman", "ptbxl", "acdc"):
        rc, out, err = run_cli("--workspace", ws.root, "ingest", dataset, tmp_path / "nowhere")
        assert rc == 1
        assert f"{tmp_path / 'nowhere'}" in err and "does not exist" in err
        assert "Traceback" not in err
    for t in tables:
        pd.testing.assert_frame_equal(store.query_df(f"SELECT * FROM {t} ORDER BY ALL"), snapshot[t])
    assert sorted(p.name for p in ws.preprocessed_dir.rglob("*")) == shards


# -- resumability -----------------------------------------------------------------------------

def _assert_same_as(store, ws, ref_store, ref_ws, dataset):
    got, ref = _snapshot(store, ws, dataset), _snapshot(ref_store, ref_ws, dataset)
    cols = [c for c in ref["records"].columns if c != "source_path"]
    pd.testing.assert_frame_equal(got["records"][cols], ref["records"][cols])
    assert got["labels"] == ref["labels"]
    assert got["arrays"].keys() == ref["arrays"].keys()
    for rid, a in ref["arrays"].items():
        np.testing.assert_array_equal(got["arrays"][rid], a, err_msg=rid)


def test_interrupted_ingest_resumes_and_equals_a_clean_run(ingested_ws, demo_root, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "CHUNK_SIZE", 4)
    ws = Workspace(tmp_path / "ws").ensure()
    store = Store(ws.db_path)
    real_store_chunk = ingest._store_chunk
    calls = []

    def store_two_then_die(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        real_store_chunk(*args, **kwargs)

    monkeypatch.setattr(ingest, "_store_chunk", store_two_then_die)
    with pytest.raises(KeyboardInterrupt):
        ingest_dataset(store, ws, "chapman", demo_root / "chapman", workers=1)
    assert store.scalar("SELECT ingested_at FROM datasets WHERE dataset_id = 'chapman'") is None
    monkeypatch.setattr(ingest, "_store_chunk", real_store_chunk)
    res = ingest_dataset(store, ws, "chapman", demo_root / "chapman", workers=2)
    assert res.n_skipped_chunks == 2
    ref_ws, ref_store, _ = ingested_ws
    _assert_same_as(store, ws, ref_store, ref_ws, "chapman")
    assert len(_problems(store, "chapman")) == len(_problems(ref_store, "chapman"))
    shards = {r[0] for r in store.query("SELECT DISTINCT shard FROM preprocessed WHERE dataset_id = 'chapman'")}
    assert {p.name for p in (ws.preprocessed_dir / "chapman").iterdir()} == shards


_KILLABLE_INGEST = textwrap.dedent("""
    import sys, time
    from cardio_cli.main import main
    from cardio_core.data import ingest
    ingest.CHUNK_SIZE = 4
    real = ingest._store_chunk
    def slow(*a, **k):
        real(*a, **k)
        time.sleep(0.4)  # leave time to be killed between chunks
    ingest._store_chunk = slow
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun_equals_a_clean_run(ingested_ws, demo_root, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "CHUNK_SIZE", 4)
    ws = Workspace(tmp_path / "ws").ensure()
    store = Store(ws.db_path)
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE_INGEST, "--workspace", str(ws.root), "ingest",
                             "chapman", str(demo_root / "chapman"), "--workers", "1"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while store.scalar("SELECT count(DISTINCT shard) FROM preprocessed") < 1:
            assert proc.poll() is None, "ingest finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    done_before = store.scalar("SELECT count(DISTINCT shard) FROM preprocessed")
    assert done_before < 4
    res = ingest_dataset(store, ws, "chapman", demo_root / "chapman", workers=2)
    assert res.n_skipped_chunks == done_before
    ref_ws, ref_store, _ = ingested_ws
    _assert_same_as(store, ws, ref_store, ref_ws, "chapman")
    assert not list((ws.preprocessed_dir / "chapman").glob("*.tmp*"))


# -- splits -------------------------------------------------------------------------------------

def test_chapman_split_persisted_without_leaks(ingested_ws):
    _, store, _ = ingested_ws
    recs = _records(store, "chapman")
    usable = recs[~recs["excluded"]]
    assert usable["split"].isin(["train", "val", "test"]).all()
    assert set(usable["split"]) == {"train", "val", "test"}
    assert usable["patient_id"].is_unique  # one record per patient: no patient in two splits
    assert recs.loc[recs["excluded"], "split"].isna().all()
    frac = usable["split"].value_counts(normalize=True)
    assert 0.5 <= frac["train"] <= 0.85


def test_ptbxl_one_record_per_patient_keyed_by_ecg_id(ingested_ws, demo_root):
    _, store, _ = ingested_ws
    db = pd.read_csv(demo_root / "ptbxl" / "ptbxl_database.csv")
    recs = _records(store, "ptbxl")
    assert set(recs.index) == set(db["ecg_id"].astype(str))  # every CSV row, by ecg_id
    usable = recs[~recs["excluded"]]
    assert usable["patient_id"].is_unique
    assert set(usable["patient_id"]) == {str(int(p)) for p in db["patient_id"]}
    for rid, path in usable["source_path"].items():
        assert Path(path).name == f"{int(rid):05d}_hr.hea"
    dropped = recs[recs["excluded"]]
    assert len(dropped) == len(db) - db["patient_id"].nunique()
    assert dropped["exclusion_reason"].str.contains("one record per patient").all()
    assert set(usable["split"]) <= {"display", "pool"}
    # the 10% stratified subset, topped up to >= 20 single-labelled records per rhythm label where the pool allows
    rule = json.loads(store.scalar("SELECT split_rule FROM datasets WHERE dataset_id = 'ptbxl'"))
    assert rule["n_stratified"] == max(1, round(0.10 * len(usable)))
    assert (usable["split"] == "display").sum() == rule["n_display"] == rule["n_stratified"] + rule["n_added"]
    assert "at least 20" in rule["display"]
    labs = store.query_df("SELECT record_id, class FROM labels WHERE dataset_id = 'ptbxl'")
    rhythm = labs[labs["class"].isin(L.RHYTHM_LABELS)].groupby("record_id")["class"].agg(list)
    single = pd.Series({r: c[0] for r, c in rhythm.items() if len(c) == 1})
    single = single[single.index.isin(usable.index)]
    for lab in L.RHYTHM_LABELS:
        of_label = single[single == lab].index
        shown = int((usable.loc[of_label, "split"] == "display").sum())
        assert shown == min(len(of_label), max(20, shown)), lab
        assert rule["single_labelled_per_label"][lab] == shown


def test_acdc_five_folds(ingested_ws):
    _, store, _ = ingested_ws
    recs = _records(store, "acdc")
    assert (recs["split"] == "cv").all()
    assert set(recs["fold"]) == {0, 1, 2, 3, 4}


def test_splits_are_deterministic_across_reingest(ingested_ws, demo_root, tmp_path):
    ref_ws, ref_store, _ = ingested_ws
    ws = Workspace(tmp_path / "ws").ensure()
    store = Store(ws.db_path)
    for name in ("chapman", "ptbxl", "acdc"):
        ingest_dataset(store, ws, name, demo_root / name, seed=0)
        q = "SELECT record_id, split, fold, excluded FROM records WHERE dataset_id = ? ORDER BY record_id"
        pd.testing.assert_frame_equal(store.query_df(q, [name]), ref_store.query_df(q, [name]))


# -- arrays -------------------------------------------------------------------------------------

def test_arrays_are_memory_mapped_and_equal_preprocessing_of_the_files(ingested_ws, demo_root):
    ws, store, _ = ingested_ws
    for name in ("chapman", "ptbxl", "acdc"):
        arr = PreprocessedArrays.from_store(store, ws.preprocessed_dir / name, name)
        recs = _records(store, name)
        assert sorted(arr.record_ids) == sorted(recs.index[~recs["excluded"]])
        shard = arr.manifest["shard"].iloc[0]
        assert isinstance(arr._shard(shard), np.memmap)
        for rid in arr.record_ids:
            path = recs.loc[rid, "source_path"]
            if name == "chapman":
                rec = chapman.read_record(Path(path))
                expected = preprocess_ecg(rec.signal, fs=rec.fs)
            elif name == "ptbxl":
                rec = ptbxl.read_record(demo_root / "ptbxl", int(rid))
                expected = preprocess_ecg(rec.signal, fs=rec.fs)
            else:
                rec = acdc.read_patient(Path(path))
                expected = preprocess_cmr(rec.volume, rec.ed, rec.es)
            np.testing.assert_array_equal(arr.get(rid), expected, err_msg=f"{name} {rid}")
