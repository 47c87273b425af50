"""Partly analysed weights are not complete (issue 11, point 8): the mark is written last and read by every check."""
import duckdb
import pytest

from cardio_core.analysis import analyse
from cardio_core.catalog import register_weights
from cardio_core.store import Store
from cardio_core.store.schema import MIGRATIONS


@pytest.fixture
def fake_steps(monkeypatch):
    """The analysis steps replaced by ones that only write a projections row, in order; `fail_at` kills one."""
    calls = []
    state = {"fail_at": None}

    def step(name):
        calls.append(name)
        if state["fail_at"] == name:
            raise KeyboardInterrupt(f"killed in {name}")  # as a SIGTERM escalation would interrupt a UMAP fit

    def project(store, wid, view, **kw):
        step(f"project:{view}")
        with store.write() as con:  # replaces, as project_weights does
            con.execute("DELETE FROM projections WHERE projection_id = ?", [f"{wid}:{view}"])
            con.execute("INSERT INTO projections (projection_id, weights_id, view, method) VALUES (?, ?, ?, 'umap')",
                        [f"{wid}:{view}", wid, view])
        return f"{wid}:{view}"
    monkeypatch.setattr(analyse, "embed_weights", lambda *a, **k: step("embed"))
    monkeypatch.setattr(analyse, "evaluate_ecg", lambda *a, **k: step("metrics"))
    monkeypatch.setattr(analyse, "project_weights", project)
    monkeypatch.setattr(analyse, "_is_ingested", lambda store, dataset_id: True)
    monkeypatch.setattr(analyse, "ensure_label_baseline", lambda *a, **k: None)
    return calls, state


def test_a_baseline_cancelled_inside_its_cross_domain_view_is_analysed_again(tmp_path, fake_steps):
    calls, state = fake_steps
    store = Store(tmp_path / "s.duckdb")
    register_weights(store, weights_id="base", modality="ecg", name="b", kind="pretrained")
    state["fail_at"] = "project:cross_domain"
    with pytest.raises(KeyboardInterrupt):
        analyse.ensure_analysed(store, "base")
    assert store.scalar("SELECT count(*) FROM projections WHERE weights_id = 'base'") == 1  # chapman_test only
    assert not analyse.is_analysed(store, "base")  # the old check ("any projection") said done
    state["fail_at"] = None
    calls.clear()
    assert analyse.ensure_analysed(store, "base") is True
    assert calls == ["embed", "metrics", "project:chapman_test", "project:cross_domain", "project:chapman_test_lda"]
    assert analyse.is_analysed(store, "base") and analyse.ensure_analysed(store, "base") is False


def test_a_new_pass_clears_the_mark_first(tmp_path, fake_steps):
    calls, state = fake_steps
    store = Store(tmp_path / "s.duckdb")
    register_weights(store, weights_id="w", modality="ecg", name="w", kind="pretrained")
    analyse.analyse_weights(store, "w")
    assert analyse.is_analysed(store, "w")
    state["fail_at"] = "metrics"
    with pytest.raises(KeyboardInterrupt):
        analyse.analyse_weights(store, "w")  # a re-analysis that dies leaves the weights incomplete
    assert not analyse.is_analysed(store, "w")


def test_migration_marks_only_fully_projected_old_weights(tmp_path):
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT, "
                "applied_at TIMESTAMP DEFAULT current_timestamp)")
    for version, description, sql in MIGRATIONS[:3]:
        con.execute(sql)
        con.execute("INSERT INTO schema_version (version, description) VALUES (?, ?)", [version, description])
    for wid, modality in (("full", "ecg"), ("partial", "ecg"), ("cmr", "cmr")):
        con.execute("INSERT INTO weights (weights_id, modality, name, kind) VALUES (?, ?, ?, 'pretrained')",
                    [wid, modality, wid])
    for wid, view in (("full", "chapman_test"), ("full", "cross_domain"), ("partial", "chapman_test"),
                      ("cmr", "acdc")):
        con.execute("INSERT INTO projections (projection_id, weights_id, view, method) VALUES (?, ?, ?, 'umap')",
                    [f"{wid}:{view}", wid, view])
    con.close()
    store = Store(db)
    assert {r[0] for r in store.query("SELECT weights_id FROM analysis_complete")} == {"full", "cmr"}
