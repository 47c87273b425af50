"""`cardio report RUN`: tables built from a store filled by hand, Markdown + CSV, the CLI."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from cardio_core.config import Workspace
from cardio_core.report import report_tables, write_report
from cardio_core.store import Store
from cardio_core.metrics.thesis import THESIS
from cardio_cli.testing import run_cli


def _metric(con, wid, scope, name, value, label="", fold=-1, ci=(None, None), **extra):
    con.execute("INSERT INTO metrics (weights_id, scope, name, label, fold, value, ci_low, ci_high, extra) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [wid, scope, name, label, fold, value, ci[0], ci[1], json.dumps(extra) if extra else None])


def _run(con, run_id, modality, dataset, parent, checkpoints):
    con.execute("INSERT INTO runs (run_id, modality, dataset_id, parent_weights_id) VALUES (?, ?, ?, ?)",
                [run_id, modality, dataset, parent])
    for wid, epoch, fold in checkpoints:
        con.execute("INSERT INTO checkpoints (weights_id, run_id, epoch, step, fold, path) VALUES (?, ?, ?, 0, ?, '')",
                    [wid, run_id, epoch, fold])


@pytest.fixture
def store(tmp_path):
    ws = Workspace(tmp_path / "ws").ensure()
    store = Store(ws.db_path)
    with store.write() as con:
        _run(con, "ecgrun", "ecg", "chapman", "base", [("ecgrun-e0010", 10, None), ("ecgrun-e0020", 20, None)])
        _metric(con, "base", "chapman_test", "silhouette", 0.05, ci=(0.04, 0.06))
        _metric(con, "ecgrun-e0010", "chapman_test", "silhouette", 0.10, ci=(0.08, 0.12))
        _metric(con, "ecgrun-e0020", "chapman_test", "silhouette", 0.20, ci=(0.18, 0.22), n=431)
        _metric(con, "base", "chapman_test", "silhouette", -0.02, label="SB")
        _metric(con, "ecgrun-e0020", "chapman_test", "silhouette", 0.30, label="SB")
        _metric(con, "base", "ptbxl_display", "silhouette", -0.01)
        _metric(con, "ecgrun-e0020", "ptbxl_display", "silhouette", 0.07)
        _metric(con, "ecgrun-e0020", "chapman_test", "centroid_single", 2.0, label="SR", n=40)
        _metric(con, "ecgrun-e0020", "chapman_test", "centroid_multi", 3.0, label="SR", n=10)
        _metric(con, "ecgrun-e0020", "chapman_test", "centroid_ratio", 1.5, label="SR")
        _metric(con, "ecgrun-e0020", "chapman_test", "centroid_pct_diff", 50.0, label="SR")
        _metric(con, "base", "cross_domain", "ptbxl_to_chapman_centroid", 4.0, label="SR")
        _metric(con, "ecgrun-e0020", "cross_domain", "ptbxl_to_chapman_centroid", 3.0, label="SR")
        _metric(con, "ecgrun-e0020", "cross_domain", "share_sr_closer_to_sb", 0.25)
        _metric(con, "ecgrun-e0020", "cross_domain", "domain_auroc", 0.9)
        _metric(con, "ecgrun-e0020", "chapman_test", "probe_age_r2", 0.3, mae=7.5)
        _metric(con, "ecgrun-e0020", "chapman_test", "probe_sex_auroc", 0.8)
        _metric(con, "ecgrun-e0020", "chapman_test", "knn_purity", 0.6)
        _metric(con, "ecgrun-e0020", "chapman_test", "linear_probe_macro_f1", 0.4)
        for cls, f1 in (("AFIB", 0.9), ("SB", 0.95)):
            _metric(con, "ecgrun-e0020", "chapman_test", "f1", f1, label=cls)
            _metric(con, "ecgrun-e0020", "chapman_test", "precision", f1 - 0.05, label=cls)
            _metric(con, "ecgrun-e0020", "chapman_test", "recall", f1 + 0.02, label=cls)
            _metric(con, "ecgrun-e0020", "chapman_test", "support", 100.0, label=cls)
        _metric(con, "ecgrun-e0020", "chapman_test", "f1", 0.55)
        _metric(con, "ecgrun-e0020", "chapman_test", "prevalence_f1_r", 0.7, p=0.01)

        _run(con, "cmrrun", "cmr", "acdc", "cbase",
             [("cmrrun-f0-e0005", 5, 0), ("cmrrun-f1-e0005", 5, 1), ("cmrrun-e0005", 5, None)])
        _metric(con, "cbase", "acdc", "silhouette", -0.1, sd=0.1)
        _metric(con, "cmrrun-e0005", "acdc", "silhouette", 0.06, sd=0.02)
        _metric(con, "cmrrun-e0005", "acdc", "silhouette", 0.2, label="DCM", fold=0)
        _metric(con, "cmrrun-e0005", "acdc", "silhouette", 0.4, label="DCM", fold=1)
        _metric(con, "cmrrun-e0005", "acdc", "intra_inter_ratio", 0.8, label="NOR", sd=0.05)
        _metric(con, "cmrrun-e0005", "acdc", "accuracy", 0.7, fold=0)
        _metric(con, "cmrrun-e0005", "acdc", "accuracy", 0.5, fold=1)
        _metric(con, "cmrrun-e0005", "acdc", "accuracy", 0.6, se=0.1)
        _metric(con, "cmrrun-e0005", "acdc", "probe_bmi_r2", 0.12, mae=3.0)
    return store


def _row(df, **where):
    m = pd.Series(True, index=df.index)
    for k, v in where.items():
        m &= df[k] == v
    assert m.sum() == 1, where
    return df[m].iloc[0]


def test_ecg_tables_hold_the_stored_numbers_with_change_and_thesis(store):
    t = report_tables(store, "ecgrun")
    sil = t["silhouette_chapman"]
    assert list(sil[sil["label"] == "overall"]["entry"]) == ["baseline", "epoch 10", "epoch 20"]
    last = _row(sil, label="overall", entry="epoch 20")
    assert last["value"] == pytest.approx(0.20) and last["ci_low"] == pytest.approx(0.18) and last["n"] == 431
    # a baseline silhouette at or below 0.05 is near zero: only the absolute change is given
    assert last["change"] == pytest.approx(0.15) and math.isnan(last["pct_change"])
    assert last["thesis"] == THESIS["silhouette_chapman"][1]
    assert _row(sil, label="overall", entry="baseline")["thesis"] == THESIS["silhouette_chapman"][0]
    sb = _row(sil, label="SB", entry="epoch 20")
    assert sb["change"] == pytest.approx(0.32) and math.isnan(sb["pct_change"])  # negative baseline: no %
    assert sb["thesis"] == THESIS["silhouette_chapman_per_label"]["SB"][1]
    assert math.isnan(_row(sil, label="SB", entry="epoch 10")["value"])  # missing, not a crash
    assert _row(t["silhouette_ptbxl"], label="overall", entry="epoch 20")["thesis"] == THESIS["silhouette_ptbxl"][1]

    cen = _row(t["centroids"], label="SR", entry="epoch 20")
    assert (cen["single"], cen["multi"], cen["ratio"], cen["pct_difference"], cen["n_single"]) == (2.0, 3.0, 1.5, 50.0, 40)
    cross = _row(t["cross_domain"], quantity="distance to Chapman SR centroid", entry="epoch 20")
    assert cross["value"] == 3.0 and cross["change"] == -1.0 and cross["pct_change"] == pytest.approx(-25.0)
    assert _row(t["cross_domain"], quantity="share of PTB-XL SR closer to the PTB-XL SB centroid", entry="epoch 20")["value"] == 0.25

    cls = t["classification"]
    assert set(cls["entry"]) == {"epoch 20"}
    afib = _row(cls, **{"class": "AFIB"})
    assert (afib["f1"], afib["precision"], afib["thesis_f1"]) == (0.9, pytest.approx(0.85), THESIS["f1_chapman"]["AFIB"])
    assert _row(cls, **{"class": "macro"})["f1"] == 0.55
    assert _row(cls, **{"class": "macro"})["thesis_f1"] == THESIS["macro_f1_chapman"]
    assert _row(cls, **{"class": "Pearson r (prevalence vs F1)"})["f1"] == 0.7

    probes = _row(t["probes"], entry="epoch 20")
    assert (probes["age_r2"], probes["age_mae"], probes["sex_auroc"], probes["knn_purity"],
            probes["linear_probe_macro_f1"], probes["domain_auroc"]) == (0.3, 7.5, 0.8, 0.6, 0.4, 0.9)


def test_cmr_tables_use_the_per_epoch_entries_and_fold_summaries(store):
    t = report_tables(store, "cmrrun")
    sil = t["acdc_silhouette"]
    assert set(sil["entry"]) == {"baseline", "epoch 5"}  # fold checkpoints are not entries
    overall = _row(sil, label="overall", entry="epoch 5")
    assert (overall["value"], overall["sd"]) == (0.06, 0.02)
    assert overall["change"] == pytest.approx(0.16)
    assert (overall["thesis"], overall["thesis_sd"]) == THESIS["acdc_silhouette"][1]
    dcm = _row(sil, label="DCM", entry="epoch 5")  # only per fold in the store: mean +- SD here
    assert dcm["value"] == pytest.approx(0.3) and dcm["sd"] == pytest.approx(0.1414, abs=1e-3)
    assert _row(t["acdc_intra_inter_ratio"], label="NOR", entry="epoch 5")["value"] == 0.8
    acc = _row(t["acdc_accuracy"], entry="epoch 5")
    assert (acc["accuracy"], acc["se"], acc["fold_0"], acc["fold_1"]) == (0.6, 0.1, 0.7, 0.5)
    assert (acc["thesis_accuracy"], acc["thesis_se"]) == THESIS["acdc_accuracy"]
    assert _row(t["probes"], entry="epoch 5")["bmi_r2"] == 0.12


def test_markdown_prints_counts_as_integers():
    from cardio_core.report import to_markdown
    md = to_markdown(pd.DataFrame({"label": ["SR"], "value": [0.1234], "n": [12.0], "n_single": [3.0]}))
    assert "| SR | 0.123 | 12 | 3 |" in md


def test_write_report_markdown_and_csv(store, tmp_path):
    paths = write_report(store, "ecgrun", tmp_path / "out")
    assert paths[0].name == "report.md" and all(p.exists() for p in paths)
    md = paths[0].read_text()
    assert "| label | entry |" in md and "thesis" in md and "—" in md
    assert "0.210" in md  # the thesis's fine-tuned Chapman silhouette beside ours
    names = {p.name for p in paths[1:]}
    assert {"silhouette_chapman.csv", "silhouette_ptbxl.csv", "centroids.csv", "cross_domain.csv",
            "classification.csv", "probes.csv"} <= names
    df = pd.read_csv(tmp_path / "out" / "silhouette_chapman.csv")
    assert df.loc[(df["label"] == "overall") & (df["entry"] == "epoch 20"), "value"].item() == pytest.approx(0.2)
    for p in paths[1:]:
        assert not pd.read_csv(p).empty
    # the store keeps the report with its run; writing it again replaces it
    write_report(store, "ecgrun", tmp_path / "out")
    rows = store.query("SELECT markdown, out_dir FROM reports WHERE run_id = 'ecgrun'")
    assert len(rows) == 1 and rows[0][0] == md and rows[0][1] == str(tmp_path / "out")


def test_cli_writes_report_and_rejects_unknown_run(store, tmp_path):
    ws_root = store.db_path.parent
    rc, out, err = run_cli("--workspace", ws_root, "report", "cmrrun")
    assert rc == 0, err
    report_dir = ws_root / "runs" / "cmrrun" / "report"
    assert (report_dir / "report.md").exists() and (report_dir / "acdc_accuracy.csv").exists()
    rc, out, err = run_cli("--workspace", ws_root, "report", "ecgrun", "--out", tmp_path / "elsewhere")
    assert rc == 0 and (tmp_path / "elsewhere" / "classification.csv").exists()
    rc, out, err = run_cli("--workspace", ws_root, "report", "nosuchrun")
    assert rc == 1 and "unknown run 'nosuchrun'" in err and "ecgrun" in err


def test_run_without_baseline_or_metrics_still_writes_dashes(store, tmp_path):
    with store.write() as con:
        _run(con, "empty", "ecg", "chapman", None, [])
        _run(con, "cmrempty", "cmr", "acdc", None, [("cmrempty-e0001", 1, None)])
    paths = write_report(store, "empty", tmp_path / "e")
    assert "_no data_" in paths[0].read_text()
    paths = write_report(store, "cmrempty", tmp_path / "c")
    df = pd.read_csv(tmp_path / "c" / "acdc_silhouette.csv")
    assert df["value"].isna().all() and "—" in paths[0].read_text()
