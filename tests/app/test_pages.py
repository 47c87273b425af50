"""Every page through Streamlit's AppTest on the synthetic workspace and on an empty one."""
import json
import re
from pathlib import Path

import pytest

from app.testing import BASELINE_ID, CMR_BASELINE_ID, RUN_ID, checkpoint_id, fill_store

from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
PAGES = ("overview", "explore", "compare", "subclusters", "metrics", "phenotypes", "jobs", "methods")
TITLES = {"overview": "CardioScope", "explore": "Explore", "compare": "Compare", "subclusters": "Sub-clusters",
          "metrics": "Metrics", "phenotypes": "Phenotypes from the ECG", "jobs": "Jobs", "methods": "Methods"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    fill_store(root)
    return root


def open_page(page, monkeypatch, root, **params):
    monkeypatch.setenv("CARDIO_WORKSPACE", str(root))
    monkeypatch.delenv("CARDIO_APP_PASSWORD", raising=False)
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=30)
    at.query_params.update(params)
    if page != "overview":
        at.switch_page(str(REPO / "pages" / f"{page}.py"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == TITLES[page]
    return at


def all_text(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [str(d.value.to_dict()) for d in at.dataframe]
    parts += [str(s.options) for s in at.selectbox]
    return "\n".join(parts)


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_workspace(page, monkeypatch, workspace):
    at = open_page(page, monkeypatch, workspace)
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_empty_workspace(page, monkeypatch, tmp_path):
    at = open_page(page, monkeypatch, tmp_path)
    if page in ("explore", "compare", "subclusters", "metrics", "phenotypes"):
        assert at.info and at.info[0].value.startswith(("No ", "Nothing"))
    if page == "overview":
        assert "No dataset" in all_text(at)


def test_overview_while_the_first_demo_job_prepares_the_data(monkeypatch, tmp_path):
    from cardio_core.config import Workspace
    from cardio_core.store import Store
    Store(Workspace(tmp_path).ensure().db_path).execute(
        "INSERT INTO jobs (job_id, kind, spec, status) VALUES ('demo-1', 'demo', '{}', 'running')")
    text = all_text(open_page("overview", monkeypatch, tmp_path))
    assert "demo job is generating and ingesting" in text and "cardio setup" not in text


def test_explore_state_round_trips_through_the_url(monkeypatch, workspace):
    at = open_page("explore", monkeypatch, workspace, w=checkpoint_id(5), colour="sex", view="cross_domain")
    assert at.selectbox(key="ex_w").value == checkpoint_id(5)
    assert at.selectbox(key="ex_view").value == "cross_domain"
    assert at.selectbox(key="ex_colour").value == "sex"
    at.selectbox(key="ex_view").set_value("chapman_test").run()
    at.selectbox(key="ex_colour").set_value("age").run()
    assert at.query_params["colour"] == "age" and at.query_params["w"] == checkpoint_id(5)
    assert at.query_params["view"] == "chapman_test"
    bad = open_page("explore", monkeypatch, workspace, colour="nonsense", w="no-such-weights")
    assert bad.selectbox(key="ex_colour").value == "rhythm"


def test_selection_from_a_shared_link_covers_every_filtered_record(monkeypatch, workspace):
    at = open_page("explore", monkeypatch, workspace, w=checkpoint_id(10), sel="b:-1000,1000,-1000,1000", sex="F")
    table = at.dataframe[-1].value
    assert len(table) and set(table["Sex"]) == {"F"}   # tables show human column names
    assert f"**{len(table)} selected**" in all_text(at)
    assert any(b.label.startswith("Download selection") for b in at.get("download_button"))
    at.selectbox(key="ex_colour").set_value("age").run()  # another change keeps the selection
    assert at.query_params["sel"].startswith("b:")


def test_review_mode_hides_ids_and_exact_ages(monkeypatch, workspace):
    at = open_page("explore", monkeypatch, workspace, review="1", sel="b:-1000,1000,-1000,1000")
    assert at.toggle(key="review").value is True
    table = at.dataframe[-1].value
    assert "Record" not in table.columns and set(table["Age"]) <= {"<30", "30-39", "40-49", "50-59", "60-69",
                                                                      "70-79", "80+", "unknown"}
    text = all_text(at)
    assert "JS0" not in text and "rec" not in at.query_params
    at.toggle(key="review").set_value(False).run()
    assert "review" not in at.query_params and "JS0" in all_text(at)


def test_bookmark_is_saved_and_listed_on_overview(monkeypatch, workspace):
    at = open_page("explore", monkeypatch, workspace, sel="b:0,5,0,5")
    at.text_input[0].input("SR island")
    at.text_area[0].input("check the multi-labelled ones")
    at.button[0].click().run()
    assert not at.exception and any("Saved" in s.value for s in at.success)
    overview = open_page("overview", monkeypatch, workspace)
    assert "SR island" in str([p.proto for p in overview.get("page_link")]) or "SR island" in all_text(overview)


def test_compare_and_metrics_tables(monkeypatch, workspace):
    at = open_page("compare", monkeypatch, workspace)
    assert at.selectbox(key="cmp_a").value == BASELINE_ID and at.selectbox(key="cmp_b").value == checkpoint_id(10)
    sil = next(d.value for d in at.dataframe if "% change" in d.value.columns)
    assert set(sil["Label"]) == {"overall", "AFIB", "GSVT", "PACE", "SB", "SR"}
    assert not any("_" in str(c) for d in at.dataframe for c in d.value.columns)   # no snake_case shown
    assert not any((d.value.astype(str) == "None").any().any() for d in at.dataframe)
    m = open_page("metrics", monkeypatch, workspace)
    per_class = m.dataframe[0].value
    assert {"F1", "Precision", "Recall"} <= set(per_class.columns) and "macro" in set(per_class["Label"])
    assert any("CSV" in b.label for b in m.get("download_button"))


def test_jobs_form_validates_fields(monkeypatch, workspace):
    at = open_page("jobs", monkeypatch, workspace)
    at.number_input(key="job_epochs").set_value(3)
    at.number_input(key="job_every").set_value(5)
    at.button[0].click().run()  # the form's submit button comes first
    at.run()
    errors = [e.value for e in at.error]
    assert any("checkpoint_every" in e or "1..3" in e for e in errors), errors
    at.number_input(key="job_epochs").set_value(0)
    at.button[0].click().run()
    at.run()
    assert any("1..10000" in e.value for e in at.error), [e.value for e in at.error]


def test_jobs_form_offers_only_registered_weights(monkeypatch, tmp_path):
    root = tmp_path / "ws"
    store = fill_store(root)
    weights_dir = root / "weights"
    weights_dir.mkdir(parents=True, exist_ok=True)
    (weights_dir / "model.safetensors").write_bytes(b"x")   # a suffix the catalogue never registers
    (weights_dir / "dropped.pth").write_bytes(b"x")          # not registered (yet)
    at = open_page("jobs", monkeypatch, root)
    offered = at.selectbox(key="job_weights").options
    from cardio_core.queries import list_weights
    assert sorted(offered) == sorted(list_weights(store, "ecg")["display"])   # shown by their display names
    assert not any("safetensors" in o or "dropped" in o for o in offered)
    assert any("dropped.pth" in c.value and "cardio weights scan" in c.value for c in at.caption)
    assert not any("safetensors" in c.value for c in at.caption)


def test_jobs_table_shows_progress_eta_and_stage(monkeypatch, workspace):
    at = open_page("jobs", monkeypatch, workspace)
    texts = " | ".join(str(getattr(e, "proto", e)) for e in at.get("progress"))
    assert "40% · ETA 9m 00s · train" in texts, texts


def test_checkpoint_choice_carries_over_to_other_pages(monkeypatch, workspace):
    at = open_page("explore", monkeypatch, workspace)
    at.selectbox(key="ex_w").set_value(checkpoint_id(5)).run()
    at.switch_page(str(REPO / "pages" / "compare.py")).run()
    assert not at.exception and at.selectbox(key="cmp_b").value == checkpoint_id(5)


def test_password_gate(monkeypatch, workspace):
    monkeypatch.setenv("CARDIO_WORKSPACE", str(workspace))
    monkeypatch.setenv("CARDIO_APP_PASSWORD", "s3cret-team-pass")
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=30).run()
    assert not at.exception and at.title[0].value == "CardioScope" and not at.get("metric")  # stopped at the gate
    at.text_input[0].input("guess")
    at.button[0].click().run()
    assert any("Wrong password" in e.value for e in at.error) and not at.get("metric")
    at.text_input[0].input("s3cret-team-pass")
    at.button[0].click().run()
    assert not at.exception and at.get("metric")  # the Overview's numbers are shown


def test_filters_survive_a_change_of_view(monkeypatch, workspace):
    from app.testing import CMR_BASELINE_ID
    at = open_page("explore", monkeypatch, workspace, labels="AFIB,SB", ds="chapman", age="40-70")
    assert at.multiselect(key="ex_labels").value == ["AFIB", "SB"]
    assert at.slider(key="ex_age").value == (40, 70)
    n_filtered = int(at.caption[0].value.split()[0].replace(",", ""))
    at.selectbox(key="ex_w").set_value(CMR_BASELINE_ID).run()  # ACDC: other labels, other datasets
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="ex_view").value == "acdc" and at.multiselect(key="ex_labels").value == []
    assert n_filtered > 0


def test_epoch_evolution_lists_only_runs_projected_in_the_view(monkeypatch, tmp_path):
    # A CMR run (sorted before the ECG run) must not be offered for the Chapman view, where it has no points.
    store = fill_store(tmp_path)
    store.execute("INSERT INTO runs (run_id, modality, dataset_id, parent_weights_id) "
                  "VALUES ('run-cmr-a', 'cmr', 'acdc', ?)", [CMR_BASELINE_ID])
    store.execute("INSERT INTO weights (weights_id, modality, name, kind, parent_weights_id) "
                  "VALUES ('run-cmr-a-e001', 'cmr', 'run-cmr-a epoch 1', 'checkpoint', ?)", [CMR_BASELINE_ID])
    store.execute("INSERT INTO checkpoints (weights_id, run_id, epoch, step, path) "
                  "VALUES ('run-cmr-a-e001', 'run-cmr-a', 1, 10, '/nowhere.ckpt')")
    store.execute("INSERT INTO projections (projection_id, weights_id, view, method) "
                  "VALUES ('run-cmr-a-e001:acdc', 'run-cmr-a-e001', 'acdc', 'umap')")
    at = open_page("compare", monkeypatch, tmp_path)
    assert at.selectbox(key="cmp_view").value == "chapman_test"
    assert at.selectbox(key="cmp_run").options == [RUN_ID]
    assert not [c.value for c in at.caption if "No checkpoint" in c.value or "No run" in c.value]
    assert any("Press ▶ Play" in c.value for c in at.caption)   # the evolution is an animation now


def test_acdc_view_names_groups_and_shows_one_folds_model_by_default(monkeypatch, workspace):
    at = open_page("explore", monkeypatch, workspace, w=CMR_BASELINE_ID, view="acdc")
    colour = at.selectbox(key="ex_colour")
    assert "group (ACDC)" in colour.options and "rhythm label" not in colour.options
    assert "one of the 20 classes" not in colour.options
    assert at.selectbox(key="ex_fold").value == "0"
    at.selectbox(key="ex_fold").set_value("all").run()
    assert any("five separate embedding spaces" in i.value for i in at.info)


def test_ptbxl_overlay_can_be_coloured_by_age(monkeypatch, workspace):
    at = open_page("explore", monkeypatch, workspace, w=checkpoint_id(10), view="cross_domain", colour="age")
    assert at.selectbox(key="ex_colour").value == "age" and not at.selectbox(key="ex_colour").disabled


def test_numbers_are_explained_next_to_them_and_on_the_methods_page(monkeypatch, workspace):
    from cardio_core.metrics.definitions import DEFINITIONS
    captions = lambda at: " ".join(c.value for c in at.caption)   # noqa: E731
    compare = open_page("compare", monkeypatch, workspace)
    text = captions(compare)
    assert DEFINITIONS["silhouette"][1] in text and DEFINITIONS["silhouette_change"][1] in text
    assert re.search(r"n = \d+ of \d+ single-labelled rhythm records", text), text
    assert DEFINITIONS["centroid_single"][1] in text
    assert "Fewer than 10 records: PACE" in text
    metrics = open_page("metrics", monkeypatch, workspace)
    assert DEFINITIONS["f1"][1] in captions(metrics) and DEFINITIONS["accuracy"][1] in captions(metrics)
    assert DEFINITIONS["silhouette"][1] in captions(open_page("overview", monkeypatch, workspace))
    methods = open_page("methods", monkeypatch, workspace)
    page = " ".join(m.value for m in methods.markdown)
    assert all(title in page for title, _, _ in DEFINITIONS.values())
    assert "method.md" not in page and "method.md" not in text    # no file the user does not have


def test_jobs_form_defaults_to_the_demo_preset_without_a_gpu_and_confirms_long_runs(monkeypatch, workspace):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")           # a machine without a GPU
    at = open_page("jobs", monkeypatch, workspace)
    assert at.selectbox(key="job_recipe").value == "demo_ecg"
    assert any("Estimated duration on this machine" in c.value for c in at.caption)
    at.selectbox(key="job_recipe").set_value("thesis_ecg").run()
    assert at.number_input(key="job_epochs").value == 200
    at.button[0].click().run()
    at.run()
    errors = " ".join(e.value for e in at.error)
    assert "this would take about" in errors and "launch it anyway" in errors
    assert "job_submitted" not in at.session_state          # nothing was queued


def test_job_cards_say_what_a_job_trains(monkeypatch, workspace):
    at = open_page("jobs", monkeypatch, workspace)
    cards = " ".join(c.value for c in at.caption)
    assert re.search(r"demo_ecg · \d+ epochs · from ", cards), cards


def test_review_mode_hides_demographics_of_a_tiny_selection_and_enrichment_has_no_inf(monkeypatch, workspace):
    from cardio_core.queries import projection_points
    from cardio_core.store import Store
    pts = projection_points(Store(Path(workspace) / "cardioscope.duckdb"), checkpoint_id(10), "chapman_test")
    x, y = float(pts["x"].iloc[0]), float(pts["y"].iloc[0])
    box = f"b:{x - 1e-6},{x + 1e-6},{y - 1e-6},{y + 1e-6}"     # one record
    at = open_page("explore", monkeypatch, workspace, w=checkpoint_id(10), review="1", sel=box)
    assert "**1 selected**" in all_text(at)
    assert any("Demographics hidden (< 5)" in c.value for c in at.caption)
    assert not any("Mean age" in d.value.columns for d in at.dataframe)
    enrichment = next(d.value for d in at.dataframe if "Enrichment" in d.value.columns)
    assert "inf" not in " ".join(map(str, enrichment["Enrichment"]))


def test_subclusters_says_where_to_select_and_metrics_flags_chance(monkeypatch, workspace):
    at = open_page("subclusters", monkeypatch, workspace)
    assert any("select with a box or lasso on Explore" in i.value for i in at.info)
    metrics = open_page("metrics", monkeypatch, workspace, cmr=CMR_BASELINE_ID)
    assert any("Chance level is 0.20" in c.value for c in metrics.caption)
    assert any("Fine-tuned = run" in c.value for c in metrics.caption)


def test_phenotypes_page_compares_checkpoints_with_demographics_and_the_paper(monkeypatch, workspace):
    at = open_page("phenotypes", monkeypatch, workspace)
    assert not at.error, [e.value for e in at.error]
    table = at.dataframe[0].value
    assert list(table["Phenotype"][:2]) == ["LV (mean)", "LVEDV"] and "RV (mean)" in set(table["Phenotype"])
    r_columns = [c for c in table.columns if c.endswith(" r")]
    assert r_columns[-1].startswith("Demographics only") and len(r_columns) == 4   # baseline, 2 checkpoints, demo
    lv = table[table["Phenotype"] == "LV (mean)"].iloc[0]
    assert lv[r_columns[-1]] < lv[r_columns[-2]]                  # the fixture's checkpoints beat demographics
    intervals = at.dataframe[1].value
    assert [c for c in intervals.columns if c.endswith("95% CI")] == [c[:-2] + " 95% CI" for c in r_columns]
    low, high = (float(x) for x in intervals.iloc[0, -1].split(" – "))
    assert low <= lv[r_columns[-1]] <= high
    published = at.dataframe[2].value
    assert "MMCL" in set(published["Model (published)"]) and published["LV r"].max() == 0.84
    # the scatter opens on the encoder with the best LV r, and its choice is in the URL
    assert at.selectbox(key="ph_model").value == checkpoint_id(10)
    assert at.query_params["model"] == [checkpoint_id(10)] or at.query_params["model"] == checkpoint_id(10)
    assert "r = " in at.get("plotly_chart")[0].proto.spec


def test_phenotypes_page_state_round_trips_through_the_url(monkeypatch, workspace):
    at = open_page("phenotypes", monkeypatch, workspace, model="demographics", phenotype="RVEF",
                   models=BASELINE_ID)
    assert at.selectbox(key="ph_model").value == "demographics"
    assert at.selectbox(key="ph_name").value == "RVEF"
    assert at.multiselect(key="ph_models").value == [BASELINE_ID]
    assert len([c for c in at.dataframe[0].value.columns if c.endswith(" r")]) == 2


def test_metrics_page_shows_what_demographics_alone_reach(monkeypatch, workspace):
    at = open_page("metrics", monkeypatch, workspace, cmr=CMR_BASELINE_ID)
    captions = [c.value for c in at.caption]
    assert any(c.startswith("Demographics alone (age and sex): linear-probe macro F1 0.210") for c in captions)
    assert any(c.startswith("Demographics alone (height and weight): accuracy 0.320") and "this encoder 0.630" in c
               for c in captions), captions


def _chapman_with_arrays(workspace):
    from cardio_core.store import Store
    from cardio_core.config import Workspace
    store = Store(Workspace(workspace).db_path)
    return [r for (r,) in store.query("SELECT record_id FROM preprocessed WHERE dataset_id = 'chapman' "
                                      "ORDER BY row_index")]


def test_explore_record_shows_where_the_model_looks_from_cached_maps(monkeypatch, workspace):
    cached = _chapman_with_arrays(workspace)[0]
    at = open_page("explore", monkeypatch, workspace, w=checkpoint_id(10), rec=f"chapman:{cached}")
    assert not at.error, [e.value for e in at.error]
    assert "Where the model looks" in all_text(at)
    maps = at.selectbox(key="att_src_explore")
    assert maps.options == ["block 3 self-attention received", "block 2 self-attention received",
                            "block 1 self-attention received", "attention pool weights"]
    assert len(at.get("plotly_chart")) >= 2   # the paper view (or its warning) and the attention view
    # one head, shareable through the URL; the pool of a fine-tuned checkpoint
    maps.set_value("pool").run()
    at.segmented_control(key="att_head_explore").set_value("3").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["att"] == "pool" and at.query_params["head"] == "3"
    assert "head 3" in all_text(at)
    # the baseline (mean pooling) has no pool to show
    base = open_page("explore", monkeypatch, workspace, w=BASELINE_ID, rec=f"chapman:{cached}")
    assert "attention pool weights" not in base.selectbox(key="att_src_explore").options


def test_explore_record_without_maps_queues_an_attention_job(monkeypatch, workspace, tmp_path):
    import shutil
    import json
    from cardio_core.store import Store
    root = tmp_path / "ws"
    shutil.copytree(workspace, root)               # this test submits a job: a private copy
    uncached = _chapman_with_arrays(root)[-1]
    monkeypatch.setenv("CARDIO_APP_SCHEDULER", "0")   # the job stays queued: nothing runs it here
    at = open_page("explore", monkeypatch, root, w=checkpoint_id(10), rec=f"chapman:{uncached}")
    assert "Not computed for this record" in all_text(at)
    at.button(key="att-compute-explore").click().run()
    assert not at.exception, [e.value for e in at.exception]
    from cardio_core.config import Workspace
    store = Store(Workspace(root).db_path)
    (job_id, spec), = store.query("SELECT job_id, spec FROM jobs WHERE kind = 'attention'")
    spec = json.loads(spec)
    assert (spec["weights"], spec["dataset"], spec["params"]["record_ids"]) == (checkpoint_id(10), "chapman",
                                                                               [uncached])
    assert f"attention maps in job {job_id} (" in all_text(at)   # queued, or starting where a scheduler runs


def test_explore_lda_view_says_which_records_it_was_fitted_on(monkeypatch, workspace):
    at = open_page("explore", monkeypatch, workspace, w=checkpoint_id(10), view="chapman_test_lda")
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="ex_view").value == "chapman_test_lda"
    text = all_text(at)
    assert "LDA (scikit-learn, Ledoit-Wolf shrinkage) of the 384-d embeddings" in text
    assert "fitted on 120 chapman train records" in text and "which it was not fitted on" in text
    # the baseline has no LDA view stored: it is not offered
    base = open_page("explore", monkeypatch, workspace, w=BASELINE_ID)
    assert "chapman_test_lda" not in base.selectbox(key="ex_view").options


def test_explore_cmr_record_draws_its_gradcam_over_the_frames(monkeypatch, workspace, tmp_path):
    import shutil
    import numpy as np
    import pandas as pd
    from cardio_core.analysis.cmr_maps import CMR_MAP_COLUMNS, store_cmr_maps
    from cardio_core.config import Workspace
    from cardio_core.store import Store
    root = tmp_path / "ws"
    shutil.copytree(workspace, root)
    store = Store(Workspace(root).db_path)
    store.execute("UPDATE datasets SET preprocessed_dir = replace(preprocessed_dir, ?, ?)", [str(workspace), str(root)])
    patient, fold = store.query("SELECT p.record_id, r.fold FROM preprocessed p JOIN records r USING (dataset_id, "
                                "record_id) WHERE dataset_id = 'acdc' ORDER BY row_index LIMIT 1")[0]
    at = open_page("explore", monkeypatch, root, w=CMR_BASELINE_ID, view="acdc", rec=f"acdc:{patient}",
                   fold=str(fold))
    assert "No Grad-CAM for these weights" in all_text(at)
    grid = np.zeros((7, 7), np.float32)
    grid[2, 3] = 1.0
    store_cmr_maps(store, pd.DataFrame([(CMR_BASELINE_ID, "acdc", patient, "gradcam", 2, "HCM", 0.81, "layer4", 7, 7,
                                         grid.ravel().tolist())], columns=CMR_MAP_COLUMNS))
    at = open_page("explore", monkeypatch, root, w=CMR_BASELINE_ID, view="acdc", rec=f"acdc:{patient}",
                   fold=str(fold))
    assert not at.error, [e.value for e in at.error]
    text = all_text(at)
    assert "Grad-CAM (fold 2's model) of the predicted group HCM (probability 0.81)" in text
    assert "layer4's 7 x 7 grid" in text
    import json
    frames = [c for c in at.get("plotly_chart") if '"ED"' in c.proto.spec]
    assert frames, "the CMR frames figure"
    spec = json.loads(frames[0].proto.spec)
    overlays = [t for t in spec["data"] if t.get("type") == "heatmap" and t.get("name") == "Grad-CAM"]
    assert len(overlays) == 3                                   # over ED, mid and ES
    z = overlays[0]["z"]
    if isinstance(z, dict):   # plotly's typed-array encoding of a numpy array
        import base64
        z = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape([int(n) for n in
                                                                                  z["shape"].split(",")])
    z = np.asarray(z, dtype=float)[::-1]
    assert z.shape == (210, 210) and z.max() == 1.0
    assert abs(np.unravel_index(z.argmax(), z.shape)[0] - (2.5 * 30)) <= 30   # the hot cell's rows, upsampled


def test_compare_sets_both_sides_beside_what_demographics_alone_reach(monkeypatch, workspace):
    at = open_page("compare", monkeypatch, workspace, base=BASELINE_ID, w=checkpoint_id(10))
    captions = [c.value for c in at.caption if c.value.startswith("Demographics alone (age and sex)")]
    assert len(captions) == 2, captions                       # one under A, one under B
    assert all("linear-probe macro F1 0.210" in c for c in captions)


def test_jobs_page_shows_a_sweeps_progress_curve_and_group_controls(monkeypatch, tmp_path):
    from app.testing import SWEEP_ID, write_sweep
    from cardio_core.config import Workspace
    from cardio_core.queries.sweeps import sweep_results
    root = tmp_path / "ws"
    store = fill_store(root)
    write_sweep(store, Workspace(root))
    at = open_page("jobs", monkeypatch, root)
    assert at.query_params["sweep"] == SWEEP_ID                  # the shown sweep is in the URL, to share
    progress = " | ".join(str(getattr(e, "proto", e)) for e in at.get("progress"))
    assert "of 9 jobs" in progress and "succeeded: 7" in progress and "failed: 1" in progress, progress
    # the curve's table: one row per fraction, the mean over the seeds scored so far
    curve = next(d.value for d in at.dataframe if "ci_low" in d.value.columns)
    results = sweep_results(store, SWEEP_ID)
    one = results[(results["fraction"] == 1.0)]["value"]
    assert curve["fraction"].tolist() == ["1 %", "10 %", "100 %"]
    assert curve.loc[curve["fraction"] == "100 %", "mean"].item() == pytest.approx(one.mean())
    assert curve["n"].tolist() == [2, 2, 3]                      # seed 2: 10 % failed, 1 % still running
    assert "Student t over seeds" in all_text(at)
    labels = [b.label for b in at.button]
    assert "Cancel sweep" in labels and "Resume sweep" in labels
    # resume queues a new job for the failed member only, in the same group
    at.button(key=f"resume-sweep-{SWEEP_ID}").click().run()
    members = store.query_df("SELECT status, count(*) AS n FROM jobs WHERE group_id = ? GROUP BY status",
                             [SWEEP_ID]).set_index("status")["n"].to_dict()
    assert members.get("queued") == 1 and members.get("failed") == 1, members


def test_jobs_form_launches_a_sweep_as_one_group(monkeypatch, tmp_path):
    root = tmp_path / "ws"
    store = fill_store(root)
    at = open_page("jobs", monkeypatch, root)
    at.checkbox(key="job_sweep").check()
    at.text_input(key="job_sweep_seeds").input("0, 1")
    at.multiselect(key="job_sweep_fractions").set_value([1.0, 0.1])
    at.number_input(key="job_epochs").set_value(1)
    at.number_input(key="job_every").set_value(1)
    at.button[0].click().run()
    at.run()
    assert not at.error, [e.value for e in at.error]
    group = store.scalar("SELECT group_id FROM job_groups")
    assert group and at.query_params["sweep"] == group
    specs = [json.loads(s) for (s,) in store.query("SELECT spec FROM jobs WHERE group_id = ?", [group])]
    assert sorted((s["seed"], s["params"]["train_fraction"]) for s in specs) == [(0, 0.1), (0, 1.0), (1, 0.1),
                                                                                (1, 1.0)]
    # a bad seed list is refused in the form, and nothing is queued
    at.text_input(key="job_sweep_seeds").input("0, x")
    at.button[0].click().run()
    at.run()
    assert any("whole numbers" in e.value for e in at.error), [e.value for e in at.error]
    assert store.scalar("SELECT count(*) FROM job_groups") == 1


def test_jobs_form_launches_a_phenotype_fine_tune_and_the_phenotypes_page_marks_its_own_head(monkeypatch, tmp_path):
    from app.testing import write_phenotype_results
    root = tmp_path / "ws"
    store = fill_store(root)
    with store.write() as con:   # a paired cohort's ECG side, as ingest_paired registers it
        con.execute("INSERT INTO datasets (dataset_id, modality, source_dir) VALUES ('paired_ecg', 'ecg', '/x')")
        for i in range(10):
            con.execute("INSERT INTO records (dataset_id, record_id, source_path, split) VALUES "
                        "('paired_ecg', ?, '/x', ?)", [f"s{i}", "train" if i < 7 else "val"])
    at = open_page("jobs", monkeypatch, root)
    at.radio(key="job_task").set_value("phenotypes").run()
    assert at.selectbox(key="job_dataset_phenotypes").options == ["paired"]
    at.number_input(key="job_epochs").set_value(2)
    at.number_input(key="job_every").set_value(1)
    at.button[0].click().run()
    at.run()
    assert not at.error, [e.value for e in at.error]
    spec = json.loads(store.scalar("SELECT spec FROM jobs WHERE kind = 'finetune_phenotypes'"))
    assert spec["dataset"] == "paired" and spec["modality"] is None and spec["epochs"] == 2

    # a checkpoint scored by its own head is named so on the Phenotypes page
    write_phenotype_results(store, [checkpoint_id(5), checkpoint_id(10)])
    store.execute("UPDATE metrics SET extra = json_merge_patch(extra, '{\"model\": \"finetuned_regression\"}') "
                  "WHERE weights_id = ? AND name = 'phenotype_r'", [checkpoint_id(10)])
    at = open_page("phenotypes", monkeypatch, root)
    names = at.multiselect(key="ph_models").options
    assert sum("own head" in n for n in names) == 1, names
    assert "read out by their own head" in all_text(at)
