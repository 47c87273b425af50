"""cardio_core.vocabulary: the shared names are defined once and every place that decides by them agrees."""
import pandas as pd
import pytest

from app.services import demo_needed
from cardio_core.queries.workspace import demo_job_active
from cardio_core.store import Store
from cardio_core.training.recipes import PRESETS
from cardio_core.vocabulary import (ACTIVE_STATUSES, FINAL_STATUSES, JOB_STATUSES, MODALITY_RECIPES, RECIPES,
                                    RUNNING_STATUSES)
from jobs import runner


def test_statuses_partition():
    assert set(ACTIVE_STATUSES) | set(FINAL_STATUSES) == set(JOB_STATUSES)
    assert not set(ACTIVE_STATUSES) & set(FINAL_STATUSES)
    assert set(RUNNING_STATUSES) < set(ACTIVE_STATUSES)
    assert runner.STATUSES == JOB_STATUSES and runner.FINAL == FINAL_STATUSES


@pytest.mark.parametrize("status", JOB_STATUSES)
def test_active_means_one_thing_on_the_overview_and_in_the_first_start_check(status, tmp_path):
    store = Store(tmp_path / "s.duckdb")
    with store.write() as con:
        con.execute("INSERT INTO jobs (job_id, kind, spec, status) VALUES ('d', 'demo', '{}', ?)", [status])
    summary = {"jobs": pd.DataFrame({"status": [status], "n": [1], "has_demo": [True]})}
    active = status in ACTIVE_STATUSES
    assert demo_job_active(summary) is active
    assert demo_needed(store) is (not active)   # a queued, starting or running demo is not queued again


def test_recipe_names_are_the_presets():
    assert tuple(PRESETS) == RECIPES
    assert all(PRESETS[r].modality == m for m, names in MODALITY_RECIPES.items() for r in names)
