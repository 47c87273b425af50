"""The demographics-only baselines of the labels (issue 13): what age and sex predict of Chapman's rhythm labels
and what height and weight predict of the ACDC groups, stored under the model 'demographics' in the scopes the
embeddings are scored in, once per ingest."""
import json

import numpy as np
import pytest

from cardio_core.analysis.demographic_baselines import ensure_label_baseline
from cardio_core.analysis.embeddings import probe_train_limit
from cardio_core.config import Workspace
from cardio_core.data.ingest import ingest_dataset
from cardio_core.store import Store
from cardio_core.vocabulary import DEMOGRAPHICS_MODEL

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ws_store(demo_root, tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("baselines")).ensure()
    store = Store(ws.db_path)
    for name in ("chapman", "acdc"):
        ingest_dataset(store, ws, name, demo_root / name, seed=0)
    return ws, store


def _rows(store, scope, name):
    return store.query_df("SELECT label, fold, value, ci_low, ci_high, extra FROM metrics WHERE weights_id = ? AND "
                          "scope = ? AND name = ? ORDER BY fold", [DEMOGRAPHICS_MODEL, scope, name])


def test_chapman_labels_from_age_and_sex_scored_as_the_linear_probe_is(ws_store):
    _, store = ws_store
    assert ensure_label_baseline(store, "chapman") is True
    assert ensure_label_baseline(store, "chapman") is False            # once per ingest
    row = _rows(store, "chapman_test", "linear_probe_macro_f1")
    assert len(row) == 1 and np.isfinite(row["value"].iloc[0]) and 0 <= row["value"].iloc[0] <= 1
    extra = json.loads(row["extra"].iloc[0])
    assert extra["features"] == ["age", "sex"] and extra["model"] == "hist_gradient_boosting"
    assert 0 <= extra["macro_auroc"] <= 1
    n_train = store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'chapman' AND split = 'train' "
                           "AND NOT excluded")
    assert extra["n_train"] == min(n_train, probe_train_limit(store))   # the linear probe's own train sample
    assert extra["n_test"] == store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'chapman' AND "
                                           "split = 'test' AND NOT excluded")


def test_acdc_groups_from_height_and_weight_per_cross_validation_fold(ws_store):
    _, store = ws_store
    assert ensure_label_baseline(store, "acdc") is True
    rows = _rows(store, "acdc", "accuracy")
    folds = rows[rows["fold"] >= 0]
    n_folds = store.scalar("SELECT count(DISTINCT fold) FROM records WHERE dataset_id = 'acdc' AND NOT excluded")
    assert len(folds) == n_folds and folds["value"].between(0, 1).all()
    summary = rows[rows["fold"] == -1].iloc[0]
    assert summary["value"] == pytest.approx(folds["value"].mean())
    assert json.loads(summary["extra"])["features"] == ["height", "weight"]
    se = folds["value"].std(ddof=1) / np.sqrt(len(folds))
    assert summary["ci_high"] - summary["value"] == pytest.approx(se)


def test_ingesting_a_dataset_again_clears_only_its_own_baseline(ws_store, demo_root):
    ws, store = ws_store
    ensure_label_baseline(store, "chapman")
    ensure_label_baseline(store, "acdc")
    ingest_dataset(store, ws, "acdc", demo_root / "acdc", seed=0)
    assert _rows(store, "acdc", "accuracy").empty
    assert len(_rows(store, "chapman_test", "linear_probe_macro_f1")) == 1
