"""A number shown in the app (cardio_core.queries) and in the report for the same run is the same number.

Both read the stored metrics and summarise them with cardio_core.metrics (percent change,
fold mean ± SE, the prevalence-F1 Pearson r), so the edge cases agree too: a baseline of 0
gives no percent change in either, never inf in one and NaN in the other.
"""
import math

import numpy as np
import pytest

from cardio_core import queries
from cardio_core.analysis.metric_rows import MetricRows, store_classification, store_cmr_accuracy
from cardio_core.catalog import register_weights
from cardio_core.labels import CLASSES
from cardio_core.pipeline.runs import register_checkpoint, register_run
from cardio_core.report import report_tables
from cardio_core.store import Store


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=1e-12)


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    rng = np.random.default_rng(0)
    for modality, base in (("ecg", "base-ecg"), ("cmr", "base-cmr")):
        register_weights(store, weights_id=base, modality=modality, name=base, kind="pretrained", path=None)
        run = f"run-{modality}"
        register_run(store, run, "job", modality, "chapman" if modality == "ecg" else "acdc", "demo", {}, base)
        register_checkpoint(store, weights_id=f"{run}-e0002", run_id=run, job_id="job", epoch=2, step=10, fold=None,
                            path=None, modality=modality, parent_id=base, name="e2", metrics={}, config={})
    # silhouettes: SR has a baseline of exactly 0 (percent change undefined), AFIB a negative one
    for wid, values in (("base-ecg", {"": 0.05, "SR": 0.0, "AFIB": -0.07, "SB": 0.2}),
                        ("run-ecg-e0002", {"": 0.15, "SR": 0.12, "AFIB": 0.02, "SB": 0.1})):
        rows = MetricRows(wid)
        for label, v in values.items():
            rows.add("chapman_test", "silhouette", v, label=label, ci=(v - 0.01, v + 0.01), n=10)
        rows.save(store, ["chapman_test"], ["silhouette"])
    y_true = (rng.random((200, len(CLASSES))) < np.linspace(0.02, 0.5, len(CLASSES))).astype(int)
    y_prob = np.clip(y_true * 0.3 + rng.random(y_true.shape) * 0.5, 0, 1)   # imperfect: F1 varies by class
    store_classification(store, "run-ecg-e0002", y_true, y_prob, CLASSES)
    store_cmr_accuracy(store, "run-cmr-e0002", {0: 0.4, 1: 0.55, 2: 0.3, 3: 0.5, 4: 0.45})
    return store


def test_silhouette_change_and_percent_change_agree(store):
    app = queries.silhouette_comparison(store, "base-ecg", "run-ecg-e0002").set_index("label")
    report = report_tables(store, "run-ecg")["silhouette_chapman"]
    report = report[report["entry"] == "epoch 2"].set_index("label")
    for label in ("overall", "SR", "AFIB", "SB"):
        assert same(app.loc[label, "change"], report.loc[label, "change"]), label
        assert same(app.loc[label, "pct_change"], report.loc[label, "pct_change"]), label
    assert math.isnan(app.loc["SR", "pct_change"])          # baseline 0: no percent change, in both
    assert math.isnan(app.loc["AFIB", "pct_change"])        # negative baseline: only the absolute change
    assert app.loc["AFIB", "change"] == pytest.approx(0.09)
    assert app.loc["SB", "pct_change"] == pytest.approx(-50.0)   # 0.2 -> 0.1


def test_prevalence_f1_pearson_r_agrees(store):
    fit = queries.prevalence_vs_f1(queries.per_class_table(store, "run-ecg-e0002"))
    report = report_tables(store, "run-ecg")["classification"].set_index("class")
    assert same(fit["r"], report.loc["Pearson r (prevalence vs F1)", "f1"])
    assert not math.isnan(fit["r"])


def test_cmr_fold_accuracy_mean_and_se_agree(store):
    app = queries.acdc_folds(store, "run-cmr-e0002")
    report = report_tables(store, "run-cmr")["acdc_accuracy"].set_index("entry").loc["epoch 2"]
    assert same(app["accuracy_mean"], report["accuracy"])
    assert same(app["accuracy_se"], report["se"])
    values = np.array([0.4, 0.55, 0.3, 0.5, 0.45])
    assert app["accuracy_se"] == pytest.approx(values.std(ddof=1) / np.sqrt(5))


def test_paired_change_interval_and_few_record_flag_agree(store):
    rows = MetricRows("run-ecg-e0002")
    for label, (v, lo, hi) in {"": (0.10, 0.06, 0.14), "SR": (0.12, 0.05, 0.2), "AFIB": (0.09, -0.3, 0.4),
                               "SB": (-0.1, -0.2, 0.0)}.items():
        rows.add("chapman_test", "silhouette_change", v, label=label, ci=(lo, hi), baseline_weights_id="base-ecg")
    rows.save(store, ["chapman_test"], ["silhouette_change"])
    app = queries.silhouette_comparison(store, "base-ecg", "run-ecg-e0002").set_index("label")
    report = report_tables(store, "run-ecg")["silhouette_chapman"]
    report = report[report["entry"] == "epoch 2"].set_index("label")
    for label in ("overall", "SR", "AFIB", "SB"):
        assert same(app.loc[label, "change_ci_low"], report.loc[label, "change_ci_low"]), label
        assert same(app.loc[label, "change_ci_high"], report.loc[label, "change_ci_high"]), label
        assert bool(app.loc[label, "few_records"]) == bool(report.loc[label, "few_records"]), label
    assert app.loc["AFIB", "change_ci_low"] == -0.3
    assert not app.loc["overall", "few_records"]
    # a pair the change was not measured for shows no paired interval
    other = queries.silhouette_comparison(store, "run-ecg-e0002", "base-ecg")
    assert other["change_ci_low"].isna().all()


def test_best_checkpoint_is_marked_and_shown_alike(store):
    for epoch, f1 in ((4, 0.6), (6, 0.5)):
        register_checkpoint(store, weights_id=f"run-ecg-e{epoch:04d}", run_id="run-ecg", job_id="job", epoch=epoch,
                            step=10, fold=None, path=None, modality="ecg", parent_id="base-ecg", name="e",
                            metrics={"val/macro_f1": f1}, config={})
    best = queries.best_checkpoint(store, "run-ecg")
    assert best["weights_id"] == "run-ecg-e0004" and best["metric"] == "val/macro_f1" and best["epoch"] == 4
    from cardio_core.report import best_line, run_entries
    run, _ = run_entries(store, "run-ecg")
    assert "run-ecg-e0004" in best_line(run) and "val/macro_f1 = 0.6000" in best_line(run)
    # the Jobs form, continuing from the run, offers the best checkpoint first
    order = queries.continuation_order(store, ["base-ecg", "run-ecg-e0002", "run-ecg-e0006", "run-ecg-e0004"],
                                       "run-ecg")
    assert order[:3] == ["run-ecg-e0004", "run-ecg-e0002", "run-ecg-e0006"] and order[3] == "base-ecg"
    assert queries.best_checkpoint_of(store, "run-ecg-e0006")["weights_id"] == "run-ecg-e0004"
