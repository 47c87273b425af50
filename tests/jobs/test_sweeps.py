"""Sweeps: a fine-tune spec over seeds x training fractions as one group of jobs; cancel and resume the group; a
2 seeds x 2 fractions sweep on the tiny demo set end to end, through `cardio jobs sweep --wait`."""
import json

import numpy as np
import pytest

from cardio_cli.main import main
from cardio_core.config import Workspace
from cardio_core.data.ingest import ingest_dataset
from cardio_core.queries.sweeps import list_sweeps, sweep_curve, sweep_members, sweep_results
from cardio_core.store import Store
from jobs.runner import JobError, LocalRunner
from jobs.spec import SpecError
from jobs.sweeps import cancel_sweep, plan_sweep, resume_sweep, submit_sweep

BASE = {"kind": "finetune", "modality": "ecg", "dataset": "chapman", "recipe": "demo_ecg", "epochs": 1,
        "checkpoint_every": 1, "device": "cpu"}


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws").ensure()


def test_plan_makes_one_validated_member_per_seed_and_fraction():
    plan = plan_sweep(BASE, [3, 1], [0.1, 1.0], subset_seed=5, name="lab eff")
    members = plan.members()
    assert [(m.seed, m.params["train_fraction"]) for m in members] == [(3, 1.0), (3, 0.1), (1, 1.0), (1, 0.1)]
    assert {m.params["subset_seed"] for m in members} == {5}     # the subsets: once for the whole seed set
    assert all(m.kind == "finetune" and m.epochs == 1 for m in members)
    assert members[1].name == "lab eff · seed 3 · 10%"


@pytest.mark.parametrize("kwargs, field", [
    ({"seeds": []}, "seeds"), ({"seeds": [1, 1]}, "seeds"), ({"seeds": [-1]}, "seeds"), ({"seeds": "01"}, "seeds"),
    ({"fractions": [0]}, "fractions"), ({"fractions": [1.5]}, "fractions"), ({"fractions": [0.1, 0.1]}, "fractions"),
    ({"fractions": []}, "fractions"), ({"seeds": list(range(20)), "fractions": [1, .5, .2, .1, .05, .01]}, "seeds"),
    ({"subset_seed": -3}, "subset_seed"),
])
def test_plan_rejects_bad_seeds_fractions_and_subset_seed(kwargs, field):
    args = {"seeds": [0, 1], "fractions": [1.0, 0.1], **kwargs}
    with pytest.raises(SpecError) as err:
        plan_sweep(BASE, args.pop("seeds"), args.pop("fractions"), **args)
    assert err.value.field == field


def test_plan_rejects_specs_that_are_not_a_fine_tune():
    with pytest.raises(SpecError, match="fine-tune"):
        plan_sweep({"kind": "sleep"}, [0], [1.0])
    with pytest.raises(SpecError, match="per member"):
        plan_sweep({**BASE, "params": {"train_fraction": 0.5}}, [0], [1.0])
    with pytest.raises(SpecError, match="epochs"):
        plan_sweep({**BASE, "epochs": 0}, [0], [1.0])
    # and a member spec with a bad fraction is refused by the spec itself, for any job
    with pytest.raises(SpecError, match="train_fraction"):
        from jobs.spec import JobSpec
        JobSpec.from_dict({**BASE, "params": {"train_fraction": 2}})


def test_cancel_and_resume_act_on_the_whole_group(ws):
    runner = LocalRunner(ws)
    group = submit_sweep(runner, plan_sweep(BASE, [0, 1], [1.0, 0.1]), start=False)
    first = sweep_members(runner.store, group)
    assert len(first) == 4 and set(first["status"]) == {"queued"} and set(first["attempts"]) == {1}
    assert list(zip(first["seed"], first["fraction"])) == [(0, 1.0), (0, 0.1), (1, 1.0), (1, 0.1)]

    assert set(cancel_sweep(runner, group).values()) == {"cancelled"}
    assert set(sweep_members(runner.store, group)["status"]) == {"cancelled"}
    listed = list_sweeps(runner.store)
    assert listed.loc[0, "group_id"] == group and listed.loc[0, "n_cancelled"] == 4

    resumed = resume_sweep(runner, group, start=False)
    assert set(resumed) == set(first["job_id"])
    after = sweep_members(runner.store, group)
    assert set(after["job_id"]) == set(resumed.values()) and set(after["attempts"]) == {2}
    assert set(after["status"]) == {"queued"}
    # the resumed members keep their seed and fraction, and belong to the same group
    specs = [json.loads(s) for (s,) in runner.store.query("SELECT spec FROM jobs WHERE list_contains(?, job_id)",
                                                         [list(resumed.values())])]
    assert sorted((s["seed"], s["params"]["train_fraction"]) for s in specs) == [(0, 0.1), (0, 1.0), (1, 0.1),
                                                                                (1, 1.0)]
    assert resume_sweep(runner, group, start=False) == {}       # nothing failed or cancelled now
    with pytest.raises(JobError, match="no sweep"):
        cancel_sweep(runner, "sweep-nope")


@pytest.mark.slow
def test_sweep_of_two_seeds_by_two_fractions_end_to_end(demo_root, ws, capsys):
    store = Store(ws.db_path)
    ingest_dataset(store, ws, "chapman", demo_root / "chapman", workers=1)
    spec = ws.root / "base.json"
    spec.write_text(json.dumps(BASE))
    code = main(["--workspace", str(ws.root), "jobs", "sweep", str(spec), "--seeds", "0,1", "--fractions", "1,0.25",
                 "--max-concurrent", "1", "--wait"])
    out = capsys.readouterr().out
    group = out.split()[0]
    assert code == 0, out

    results = sweep_results(store, group)
    assert len(results) == 4 and set(results["status"]) == {"succeeded"}
    assert results["value"].notna().all() and results["value"].between(0, 1).all()
    # each member trained on its nested share: 25 % of the train split is fewer records, the same for both seeds
    n = {(r.seed, r.fraction): r.n_train for r in results.itertuples()}
    n_all = store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'chapman' AND split = 'train' "
                         "AND NOT excluded")
    assert n[(0, 1.0)] == n[(1, 1.0)] == n_all and n[(0, 0.25)] == n[(1, 0.25)] < n_all
    # the score is the member's best checkpoint's stored test macro F1
    for r in results.itertuples():
        stored = store.scalar("SELECT value FROM metrics WHERE weights_id = ? AND scope = 'chapman_test' "
                              "AND name = 'f1' AND label = '' AND fold = -1", [r.weights_id])
        assert stored == pytest.approx(r.value)
    curve = sweep_curve(store, group)
    assert curve["fraction"].tolist() == [0.25, 1.0] and curve["n"].tolist() == [2, 2]
    for row in curve.itertuples():
        vals = results.loc[results["fraction"] == row.fraction, "value"].to_numpy()
        assert row.mean == pytest.approx(vals.mean())
        assert np.isnan(row.ci_low) or row.ci_low <= row.mean <= row.ci_high
    assert "label-efficiency curve" in out
    # the same group listed by `cardio jobs sweeps`
    assert main(["--workspace", str(ws.root), "jobs", "sweeps"]) == 0
    assert group in capsys.readouterr().out


def test_a_phenotype_fine_tune_sweeps_too_and_is_scored_by_its_lv_r(ws):
    from cardio_core.queries.sweeps import SWEEP_METRIC
    runner = LocalRunner(ws)
    base = {"kind": "finetune_phenotypes", "dataset": "paired", "recipe": "demo_ecg", "epochs": 1, "device": "cpu"}
    plan = plan_sweep(base, [0, 1], [1.0, 0.5])
    assert plan.name.startswith("phenotype sweep") and {m.kind for m in plan.members()} == {"finetune_phenotypes"}
    group = submit_sweep(runner, plan, start=False)
    listed = list_sweeps(runner.store)
    assert listed.loc[0, "task"] == "phenotypes" and listed.loc[0, "metric"] == "phenotype_group_r"
    assert SWEEP_METRIC["phenotypes"]["label"] == "LV"
    # a finished member's score is its best checkpoint's stored LV r
    member = sweep_members(runner.store, group).iloc[0]
    with runner.store.write() as con:
        con.execute("UPDATE jobs SET status = 'succeeded' WHERE job_id = ?", [member.job_id])
        con.execute("INSERT INTO runs (run_id, job_id, modality, dataset_id, best_weights_id) VALUES "
                    "(?, ?, 'ecg', 'paired_ecg', 'w1')", [member.job_id, member.job_id])
        con.execute("INSERT INTO metrics (weights_id, scope, name, label, fold, value) VALUES "
                    "('w1', 'paired_phenotypes', 'phenotype_group_r', 'LV', -1, 0.42), "
                    "('w1', 'paired_phenotypes', 'phenotype_group_r', 'RV', -1, 0.11)")
    results = sweep_results(runner.store, group)
    assert results.loc[0, "value"] == pytest.approx(0.42) and results["value"].iloc[1:].isna().all()
