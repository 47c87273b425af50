"""cardio_core.queries: the read models behind the app's pages, on the synthetic workspace."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.testing import BASELINE_ID, CMR_BASELINE_ID, RUN_ID, checkpoint_id, fill_store
from cardio_core import queries
from cardio_core.labels import CLASSES


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return fill_store(tmp_path_factory.mktemp("ws"))


def test_projection_points_join_records_and_labels(store):
    pts = queries.projection_points(store, checkpoint_id(10), "cross_domain")
    assert set(pts["dataset_id"]) == {"chapman", "ptbxl"}
    n_test = store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'chapman' AND split = 'test'")
    assert (pts["dataset_id"] == "chapman").sum() == n_test
    row = pts.iloc[0]
    classes = sorted(r[0] for r in store.query("SELECT class FROM labels WHERE dataset_id = ? AND record_id = ?",
                                               [row.dataset_id, row.record_id]))
    assert sorted(row.labels.split(",")) == classes
    assert row.multi == (len(classes) > 1)
    # labels are listed in CLASSES order
    for s in pts["labels"]:
        idx = [CLASSES.index(c) for c in s.split(",") if c]
        assert idx == sorted(idx)
    with pytest.raises(ValueError, match="view must be one of"):
        queries.projection_points(store, BASELINE_ID, "nonsense")


def test_box_and_lasso_selection_cover_all_points_inside():
    pts = pd.DataFrame({"x": [0.0, 1.0, 2.0, 5.0], "y": [0.0, 1.0, 2.0, 5.0], "record_id": list("abcd")})
    box = queries.selection_mask(pts, {"box": [{"x": [2.5, 0.5], "y": [0.5, 2.5]}]})
    assert box.tolist() == [False, True, True, False]
    triangle = {"lasso": [{"x": [-1, 4, -1], "y": [-1, -1, 4]}]}  # inside: x + y < 3
    assert queries.selection_mask(pts, triangle).tolist() == [True, True, False, False]
    both = queries.selection_mask(pts, {**triangle, "record_ids": ["d"]})
    assert both.tolist() == [True, True, False, True]
    assert not queries.selection_mask(pts, None).any()
    with pytest.raises(ValueError, match="at least 3 vertices"):
        queries.points_in_polygon(pts["x"], pts["y"], [0, 1], [0, 1])


def test_filters_and_selection_summary(store):
    pts = queries.projection_points(store, checkpoint_id(10), "chapman_test")
    afib = queries.filter_points(pts, labels=["AFIB"])
    assert len(afib) and all("AFIB" in s.split(",") for s in afib["labels"])
    old_women = queries.filter_points(pts, age_range=(60, 120), sexes=["F"])
    assert (old_women["age"] >= 60).all() and (old_women["sex"] == "F").all()
    with pytest.raises(ValueError, match="low <= high"):
        queries.filter_points(pts, age_range=(80, 20))
    mask = queries.has_class(pts, "AFIB")
    summary = queries.selection_summary(pts, mask)
    row = summary["labels"].set_index("label").loc["AFIB"]
    assert row["share_selected"] == 1.0 and row["share_rest"] == 0.0 and np.isinf(row["enrichment"])
    assert summary["demographics"].loc["selected", "n"] == mask.sum()
    assert summary["demographics"].loc["rest", "n"] == (~mask).sum()


def test_review_mode_deidentifies():
    table = pd.DataFrame({"record_id": ["JS00001"], "age": [63.0], "sex": ["F"]})
    out = queries.deidentify(table)
    assert "record_id" not in out.columns and out.loc[0, "age"] == "60-69"
    assert queries.age_bands(pd.Series([12, 30, 79.9, 85, None])).tolist() == ["<30", "30-39", "70-79", "80+", "unknown"]


def test_colour_values(store):
    pts = queries.projection_points(store, CMR_BASELINE_ID, "acdc")
    assert set(queries.colour_values(pts, "split")) <= {f"fold {k}" for k in range(5)}
    assert set(queries.colour_values(pts, "bmi_category")) <= {"underweight", "normal", "overweight", "obese", "unknown"}
    assert queries.colour_values(pts, "age").dtype == float
    with pytest.raises(ValueError, match="needs cls"):
        queries.colour_values(pts, "class")


def test_silhouette_comparison_change_and_ci(store):
    table = queries.silhouette_comparison(store, BASELINE_ID, checkpoint_id(10)).set_index("label")
    assert table.loc["overall", "baseline_value"] == pytest.approx(0.039)
    assert table.loc["SB", "change"] == pytest.approx(0.276 - 0.068)
    assert table.loc["SB", "pct_change"] == pytest.approx(100 * (0.276 - 0.068) / 0.068)
    assert (table["other_ci_low"] < table["other_value"]).all()


def test_per_class_prevalence_fit_and_acdc(store):
    table = queries.per_class_table(store, checkpoint_id(10))
    assert table["label"].iloc[0] == "macro" and table["label"].tolist()[1:] == list(CLASSES)   # macro first
    fit = queries.prevalence_vs_f1(table)
    rows = table[table["label"] != "macro"]
    assert fit["r"] == pytest.approx(np.corrcoef(rows["prevalence"], rows["f1"])[0, 1])
    folds = queries.acdc_folds(store, CMR_BASELINE_ID)
    accs = [0.60, 0.65, 0.58, 0.70, 0.62]
    assert folds["accuracy_mean"] == pytest.approx(np.mean(accs))
    assert folds["accuracy_se"] == pytest.approx(np.std(accs, ddof=1) / np.sqrt(5))
    assert set(folds["intra_inter"]["label"]) == {"DCM", "HCM", "MINF", "NOR", "RV"}


def test_probe_trend_and_thesis(store):
    trend = queries.probe_trend(store, RUN_ID, BASELINE_ID)
    age = trend[trend["name"] == "probe_age_r2"]
    assert age["epoch"].tolist() == [0, 5, 10] and age["value"].is_monotonic_decreasing
    thesis = queries.thesis_side_by_side(store, BASELINE_ID, checkpoint_id(10)).set_index("metric")
    assert thesis.loc["silhouette SB", "thesis_finetuned"] == 0.276
    assert thesis.loc["silhouette, Chapman test (rhythm)", "finetuned"] == pytest.approx(0.210)


def test_workspace_summary_and_next_steps(store, tmp_path):
    summary = queries.workspace_summary(store)
    assert summary["datasets"].set_index("dataset_id").loc["chapman", "usable"] == 300
    steps = " ".join(queries.next_steps(summary))
    assert "weights/" in steps and "failed" in steps
    empty = queries.workspace_summary(fill_store.__globals__["Store"](tmp_path / "empty.duckdb"))
    assert any("No dataset" in s for s in queries.next_steps(empty))


def test_next_steps_while_the_first_demo_job_prepares_the_data(tmp_path):
    # The app's first start queues the demo job: the Overview must not ask the user to run `cardio setup`.
    empty = fill_store.__globals__["Store"](tmp_path / "empty.duckdb")
    empty.execute("INSERT INTO jobs (job_id, kind, spec, status) VALUES ('demo-1', 'demo', '{}', 'running')")
    steps = " ".join(queries.next_steps(queries.workspace_summary(empty)))
    assert "demo job is generating" in steps and "cardio setup" not in steps


def test_record_signal_restricted_to_roots(store, tmp_path):
    ws_root = Path(store.db_path).parent
    rid = store.scalar("SELECT record_id FROM preprocessed WHERE dataset_id = 'chapman' LIMIT 1")
    info = queries.record_info(store, "chapman", rid)
    array, fs = queries.load_record_signal(store, info, "preprocessed", [ws_root])
    assert array.shape == (12, 5000) and fs == 500.0
    with pytest.raises(ValueError, match="outside the workspace"):
        queries.load_record_signal(store, info, "preprocessed", [tmp_path / "elsewhere"])
    cmr = queries.record_info(store, "acdc", store.scalar("SELECT record_id FROM preprocessed WHERE dataset_id = 'acdc' LIMIT 1"))
    assert queries.load_record_signal(store, cmr, "preprocessed", [ws_root])[0].shape == (3, 210, 210)
    assert queries.record_info(store, "chapman", "nope") is None


FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "physionet"


@pytest.mark.skipif(not (FIXTURES / "JS01053.hea").exists(), reason="PhysioNet fixtures not available")
def test_raw_preview_of_a_real_chapman_record(tmp_path):
    from app.ecg_paper import ecg_paper_figure
    from cardio_core.store.store import Store
    pytest.importorskip("cardio_core.data.readers.chapman")
    store = Store(tmp_path / "s.duckdb")
    store.execute("INSERT INTO datasets (dataset_id, modality, source_dir) VALUES ('chapman', 'ecg', ?)", [str(FIXTURES)])
    store.execute("INSERT INTO records (dataset_id, record_id, source_path) VALUES ('chapman', 'JS01053', ?)",
                  [str(FIXTURES / "JS01053.hea")])
    info = queries.record_info(store, "chapman", "JS01053")
    signal, fs = queries.load_record_signal(store, info, "raw", [FIXTURES])
    assert signal.shape == (12, 5000) and fs == 500
    fig = ecg_paper_figure(signal, fs)
    assert [t.name for t in fig.data] == ["ECG", "1 mV"] and "10.0 s" in fig.layout.annotations[-1].text
    with pytest.raises(ValueError, match="outside"):
        queries.load_record_signal(store, info, "raw", [tmp_path])


def test_baseline_for_follows_lineage_and_never_crosses_modality():
    import pandas as pd
    w = pd.DataFrame({
        "weights_id": ["mdm", "random-cmr", "run-e1", "cmr-e1"],
        "modality": ["ecg", "cmr", "ecg", "cmr"],
        "kind": ["pretrained", "random", "checkpoint", "checkpoint"],
        "parent_weights_id": [None, None, "mdm", "random-cmr"],
    })
    assert queries.baseline_for(w, "run-e1") == "mdm"
    assert queries.baseline_for(w, "cmr-e1") == "random-cmr"   # its parent, not the ECG pretrained weights
    assert queries.baseline_for(w.assign(parent_weights_id=None), "cmr-e1") is None


def test_projection_method_says_how_the_layout_was_computed(store):
    import json
    assert queries.projection_method(store, BASELINE_ID, "chapman_test").endswith("of the embeddings")
    params = {"n_neighbors": 30, "min_dist": 0.25, "seed": 42,
              "pre_reduction": {"method": "pca", "n_components": 50, "input_dims": 384}}
    with store.write() as con:
        con.execute("INSERT INTO projections (projection_id, weights_id, view, method, params, aligned_to) "
                    "VALUES ('pm-test:chapman_test', 'pm-test', 'chapman_test', 'umap', ?, NULL)", [json.dumps(params)])
    assert queries.projection_method(store, "pm-test", "chapman_test") == (
        "UMAP (n_neighbors 30, min_dist 0.25, seed 42) of the first 50 principal components of the 384-d embeddings")
    assert queries.projection_method(store, "pm-test", "cross_domain") == ""


def test_centroids_relative_to_the_embedding_scale(tmp_path):
    from cardio_core.analysis.metric_rows import MetricRows
    from cardio_core.store import Store
    s = Store(tmp_path / "s.duckdb")
    for wid, scale in (("a", 2.0), ("b", 8.0)):    # b's whole space is 4x wider
        rows = MetricRows(wid)
        rows.add("chapman_test", "embedding_scale", scale)
        rows.add("chapman_test", "centroid_single", scale * 0.5, label="SR")
        rows.add("chapman_test", "centroid_multi", scale * 0.75, label="SR")
        rows.save(s, ["chapman_test"], ["embedding_scale", "centroid_single", "centroid_multi"])
    table = queries.centroid_tables(s, ["a", "b"])["single_multi"].set_index("weights_id")
    assert table.loc["b", "centroid_single"] == 4 * table.loc["a", "centroid_single"]     # raw: grows 4x
    assert table.loc["a", "centroid_single_rel"] == table.loc["b", "centroid_single_rel"] == 0.5   # relative: same


def test_weights_names_carry_the_fold_and_the_overview_counts_exclusions_apart(store):
    from cardio_core.queries.weights import display_name
    row = pd.Series({"kind": "checkpoint", "epoch": 1, "fold": 3, "run_id": "r", "modality": "cmr", "name": "x"})
    assert display_name(row.to_frame().T.itertuples().__next__()) == "r · fold 3 · epoch 1"
    row["fold"] = None
    assert display_name(row.to_frame().T.itertuples().__next__()) == "r · all folds · epoch 1"
    datasets = queries.workspace_summary(store)["datasets"]
    assert {"excluded", "with_warnings", "usable"} <= set(datasets.columns)


def test_the_default_run_is_the_newest_that_succeeded(store):
    runs = queries.runs_overview(store, "ecg")
    assert queries.default_run(runs) == RUN_ID
    failed = runs.iloc[:1].assign(run_id="newer-failed", status="failed")
    assert queries.default_run(pd.concat([failed, runs], ignore_index=True)) == RUN_ID


def test_label_baseline_sets_demographics_beside_the_weights(store):
    chapman = queries.label_baseline(store, checkpoint_id(10), "chapman")
    assert chapman["baseline"] == pytest.approx(0.21) and chapman["features"] == ["age", "sex"]
    assert chapman["weights"] == store.scalar("SELECT value FROM metrics WHERE weights_id = ? AND scope = "
                                              "'chapman_test' AND name = 'linear_probe_macro_f1' AND label = ''",
                                              [checkpoint_id(10)])
    acdc = queries.label_baseline(store, CMR_BASELINE_ID, "acdc")
    assert acdc["baseline"] == pytest.approx(0.32) and acdc["se"] > 0
    assert acdc["weights"] == pytest.approx(queries.acdc_folds(store, CMR_BASELINE_ID)["accuracy_mean"])
    with store.write() as con:
        con.execute("DELETE FROM metrics WHERE weights_id = 'demographics' AND scope = 'acdc'")
    assert queries.label_baseline(store, CMR_BASELINE_ID, "acdc") == {}
