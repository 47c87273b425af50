"""The phenotype probe as the analysis pass runs it (issue 13): every ECG encoder beside a paired cohort gets a
ridge probe of the ten CMR phenotypes, stored with its test predictions, the published numbers beside it, and the
demographics-only baseline computed once per ingested cohort."""
import json

import numpy as np
import pytest

from cardio_core.analysis import analyse
from cardio_core.analysis.phenotypes import analyse_phenotypes, phenotype_matrix
from cardio_core.catalog import ensure_random_weights
from cardio_core.config import Workspace
from cardio_core.data.ingest_paired import ingest_paired
from cardio_core.metrics.phenotypes import PHENOTYPES, PUBLISHED_GROUP_R
from cardio_core.store import Store
from cardio_core.vocabulary import DEMOGRAPHICS_MODEL, PHENOTYPE_SCOPE
from tests.cardio_core.data.paired_cohort import phenotypes, rewrite_manifest, write_cohort

N_SUBJECTS = 30


def _varied(rows):
    """Give each subject its own volumes (write_cohort's are nearly constant), so every r is defined."""
    rng = np.random.default_rng(7)
    for row in rows:
        lvedv, rvedv = rng.uniform(110, 190), rng.uniform(120, 200)
        row.update(phenotypes(round(lvedv, 1), round(lvedv * rng.uniform(0.3, 0.5), 1), round(rvedv, 1),
                              round(rvedv * rng.uniform(0.35, 0.55), 1), hr=float(rng.uniform(55, 85))))
        row["LVM"] = round(float(rng.uniform(80, 140)), 1)
        row["age"] = int(rng.integers(40, 80))
        row["height"], row["weight"] = float(rng.uniform(155, 190)), float(rng.uniform(55, 100))
    return rows


@pytest.fixture(scope="module")
def paired_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("phen")
    rows = _varied(write_cohort(root / "paired", N_SUBJECTS))
    rewrite_manifest(root / "paired", rows)
    ws = Workspace(root / "ws").ensure()
    store = Store(ws.db_path)
    assert ingest_paired(store, ws, root / "paired", seed=0, workers=1).n_ok == N_SUBJECTS
    return store, ws, root


def _metric(store, wid, metric):
    return store.query_df("SELECT label, value, ci_low, ci_high, extra FROM metrics WHERE weights_id = ? AND "
                          "scope = ? AND name = ? ORDER BY label", [wid, PHENOTYPE_SCOPE, metric])


def test_an_ecg_encoder_is_probed_on_every_phenotype_with_test_predictions_stored(paired_store):
    store, _, _ = paired_store
    wid = ensure_random_weights(store, "ecg")
    out = analyse_phenotypes(store, wid, device="cpu")
    assert "skipped" not in out
    per = _metric(store, wid, "phenotype_r")
    assert sorted(per["label"]) == sorted(PHENOTYPES)
    assert per["value"].notna().all() and (per["value"].abs() <= 1).all()
    assert (per["ci_low"] <= per["value"]).all() and (per["value"] <= per["ci_high"]).all()
    extra = json.loads(per["extra"].iloc[0])
    assert extra["fitted_on"] == "train" and extra["chosen_on"] == "val" and extra["scored_on"] == "test"
    groups = _metric(store, wid, "phenotype_group_r")
    assert list(groups["label"]) == ["LV", "RV"]
    lv = groups.set_index("label").loc["LV"]
    assert lv["value"] == pytest.approx(per.set_index("label").loc[["LVEDV", "LVESV", "LVSV", "LVEF", "LVCO",
                                                                    "LVM"], "value"].mean())
    assert json.loads(lv["extra"])["published"] == {k: v["LV"] for k, v in PUBLISHED_GROUP_R.items()}

    # the stored predictions are exactly the test subjects', and r recomputed from them is the stored r
    test_ids = sorted(r[0] for r in store.query("SELECT record_id FROM records WHERE dataset_id = 'paired_ecg' "
                                                "AND split = 'test' AND NOT excluded"))
    pred = store.query_df("SELECT subject_id, name, predicted, observed FROM phenotype_predictions "
                          "WHERE model_id = ?", [wid])
    assert sorted(pred["subject_id"].unique()) == test_ids and len(pred) == len(test_ids) * len(PHENOTYPES)
    lvedv = pred[pred["name"] == "LVEDV"].sort_values("subject_id")
    assert np.allclose(lvedv["observed"], phenotype_matrix(store, lvedv["subject_id"])[:, 0])
    assert np.corrcoef(lvedv["observed"], lvedv["predicted"])[0, 1] == pytest.approx(
        per.set_index("label").loc["LVEDV", "value"], abs=1e-9)
    # every split's embeddings are stored, so the probe can be re-read without re-embedding
    n_usable = store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'paired_ecg' AND NOT excluded")
    assert store.scalar("SELECT count(*) FROM embeddings WHERE weights_id = ? AND dataset_id = 'paired_ecg'",
                        [wid]) == n_usable

    # the demographics baseline came with it, once, scored on the same test subjects
    base = _metric(store, DEMOGRAPHICS_MODEL, "phenotype_r")
    assert sorted(base["label"]) == sorted(PHENOTYPES)
    assert json.loads(base["extra"].iloc[0])["features"] == ["age", "sex", "height", "weight"]
    assert sorted(store.query_df("SELECT DISTINCT subject_id FROM phenotype_predictions WHERE model_id = ?",
                                 [DEMOGRAPHICS_MODEL])["subject_id"]) == test_ids


def test_the_same_encoder_gives_the_same_scores_twice(paired_store):
    store, _, _ = paired_store
    wid = ensure_random_weights(store, "ecg")
    analyse_phenotypes(store, wid, device="cpu")
    first = _metric(store, wid, "phenotype_r")
    analyse_phenotypes(store, wid, device="cpu")
    again = _metric(store, wid, "phenotype_r")
    assert first[["label", "value", "ci_low", "ci_high"]].equals(again[["label", "value", "ci_low", "ci_high"]])
    assert store.scalar("SELECT count(*) FROM phenotype_predictions WHERE model_id = ?", [wid]) == \
        len(PHENOTYPES) * store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'paired_ecg' "
                                       "AND split = 'test' AND NOT excluded")


def test_the_analysis_pass_runs_the_probe_for_ecg_weights_only(paired_store, monkeypatch):
    store, _, _ = paired_store
    calls = []
    monkeypatch.setattr(analyse, "embed_weights", lambda *a, **k: None)
    monkeypatch.setattr(analyse, "project_weights", lambda *a, **k: None)
    monkeypatch.setattr(analyse, "analyse_phenotypes", lambda store, wid, **k: calls.append(wid))
    for modality in ("ecg", "cmr"):
        analyse.analyse_weights(store, ensure_random_weights(store, modality))
    assert calls == ["random-ecg"]


def test_a_cohort_too_small_to_probe_is_stored_as_a_reason_not_an_error(tmp_path):
    write_cohort(tmp_path / "paired", 6)
    ws = Workspace(tmp_path / "ws").ensure()
    store = Store(ws.db_path)
    ingest_paired(store, ws, tmp_path / "paired", seed=0, workers=1)
    wid = ensure_random_weights(store, "ecg")
    out = analyse_phenotypes(store, wid, device="cpu")
    assert "needs at least" in out["skipped"]
    row = _metric(store, wid, "phenotype_group_r")
    assert row["value"].isna().all() and "needs at least" in json.loads(row["extra"].iloc[0])["note"]


def test_re_ingesting_the_cohort_recomputes_the_demographics_baseline(paired_store):
    store, ws, root = paired_store
    analyse_phenotypes(store, ensure_random_weights(store, "ecg"), device="cpu")
    assert store.scalar("SELECT count(*) FROM metrics WHERE weights_id = ?", [DEMOGRAPHICS_MODEL])
    ingest_paired(store, ws, root / "paired", seed=0, workers=1)
    assert store.scalar("SELECT count(*) FROM metrics WHERE weights_id = ?", [DEMOGRAPHICS_MODEL]) == 0
    assert store.scalar("SELECT count(*) FROM phenotype_predictions WHERE model_id = ?", [DEMOGRAPHICS_MODEL]) == 0
