"""Fine-tuning the ECG encoder on a paired cohort's CMR phenotypes: the masked loss, the validation r against
scipy, the target scaling, and the job end to end (trained, each checkpoint scored by its own head, the best
chosen on validation r)."""
import json

import numpy as np
import pytest
import torch
from scipy import stats

from cardio_core.analysis.phenotypes import phenotype_head_of
from cardio_core.errors import CardioError
from cardio_core.metrics.phenotypes import PHENOTYPES
from cardio_core.pipeline.phenotype_finetune import phenotype_head_meta, target_scaling
from cardio_core.training.modules import EcgRegressionModule, masked_mse


def test_masked_mse_leaves_missing_targets_out():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    target = torch.tensor([[0.0, float("nan")], [1.0, 1.0]])
    loss = masked_mse(pred, target)
    assert loss.item() == pytest.approx((1 + 4 + 9) / 3)
    loss.backward()
    assert pred.grad[0, 1].item() == 0.0                    # the missing value trains nothing
    none = masked_mse(pred, torch.full((2, 2), float("nan")))
    assert none.item() == 0.0 and torch.isfinite(none)


def test_validation_r_is_pearsons_per_phenotype_and_their_mean():
    names = ("A", "B", "C")
    model = torch.nn.Linear(4, 3)
    model.num_classes = 3
    module = EcgRegressionModule(model, names=names)
    rng = np.random.default_rng(0)
    y = rng.normal(size=(40, 3))
    pred = y + rng.normal(scale=[0.5, 2.0, 1.0], size=(40, 3))
    pred[:, 2] = 1.0                                         # a constant prediction: r undefined
    logged = {}
    module.log = lambda name, value, **kw: logged.__setitem__(name, value)
    module._outputs["val"] = [(torch.tensor(pred[:20], dtype=torch.float32), torch.tensor(y[:20])),
                              (torch.tensor(pred[20:], dtype=torch.float32), torch.tensor(y[20:]))]
    module.on_validation_epoch_end()
    r = [stats.pearsonr(y[:, j], pred[:, j].astype(np.float32))[0] for j in range(2)]
    assert logged["val/r/A"] == pytest.approx(r[0], abs=1e-6) and logged["val/r/B"] == pytest.approx(r[1], abs=1e-6)
    assert "val/r/C" not in logged                           # undefined: not logged as a number
    assert logged["val/mean_r"] == pytest.approx((r[0] + r[1] + 0.0) / 3, abs=1e-6)   # counted as 0 in the monitor


def test_target_scaling_and_the_head_metadata_round_trip():
    Y = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, np.nan], [np.nan, 5.0, np.nan]])
    mean, sd = target_scaling(Y)
    assert mean.tolist() == [2.0, 5.0, 0.0] and sd.tolist() == [1.0, 1.0, 1.0]   # constant and empty: SD 1
    meta = phenotype_head_meta(PHENOTYPES, np.arange(10.0), np.ones(10))
    head = phenotype_head_of(json.loads(json.dumps(meta)))
    assert head["targets"] == list(PHENOTYPES) and head["target_mean"] == list(range(10))
    assert phenotype_head_of({"head_trained": True}) is None  # a classifier's checkpoint
    with pytest.raises(CardioError, match="expected one of each"):
        phenotype_head_of({**meta, "targets": ["LVEDV"]})


@pytest.mark.slow
def test_phenotype_finetune_job_trains_scores_each_checkpoint_by_its_head_and_picks_the_best(tmp_path, monkeypatch):
    from cardio_core.config import Workspace
    from cardio_core.data.ingest_paired import ingest_paired
    from cardio_core.pipeline.runs import run_complete
    from cardio_core.store import Store
    from cardio_core.vocabulary import PHENOTYPE_SCOPE
    from jobs.runner import LocalRunner
    from tests.cardio_core.data.paired_cohort import write_cohort

    ws = Workspace(tmp_path / "ws").ensure()
    monkeypatch.setenv("CARDIO_WORKSPACE", str(ws.root))
    store = Store(ws.db_path)
    write_cohort(tmp_path / "paired", 30)
    assert ingest_paired(store, ws, tmp_path / "paired", is_demo=False, seed=0, workers=1).n_ok == 30
    runner = LocalRunner(ws, store)
    job = runner.submit({"kind": "finetune_phenotypes", "dataset": "paired", "recipe": "demo_ecg", "epochs": 2,
                         "checkpoint_every": 1, "device": "cpu", "overrides": {"batch_size": 8}})
    assert runner.wait(job, timeout=600) == "succeeded", runner.show(job).get("error")

    run = store.query("SELECT dataset_id, config, best_weights_id, best_metric FROM runs WHERE run_id = ?", [job])[0]
    assert run[0] == "paired_ecg" and run[3] == "val/mean_r"
    config = json.loads(run[1])
    assert config["task"] == "phenotypes" and config["targets"] == list(PHENOTYPES)
    ckpts = store.query("SELECT weights_id, val_metrics FROM checkpoints WHERE run_id = ? ORDER BY epoch", [job])
    assert len(ckpts) == 2
    val_r = {w: json.loads(m)["val/mean_r"] for w, m in ckpts}
    assert run[2] == max(val_r, key=lambda w: (val_r[w], -list(val_r).index(w)))   # chosen on validation r
    for wid, _ in ckpts:
        rows = store.query("SELECT name, label, value, extra FROM metrics WHERE weights_id = ? AND scope = ?",
                           [wid, PHENOTYPE_SCOPE])
        per = {label: (value, json.loads(extra)) for name, label, value, extra in rows if name == "phenotype_r"}
        assert set(per) == set(PHENOTYPES)
        assert {e["model"] for _, e in per.values()} == {"finetuned_regression"}   # its own head, not a probe
        # predictions un-standardised: in the cohort's units (mL), not z-scores
        pred = store.query_df("SELECT predicted, observed FROM phenotype_predictions WHERE model_id = ? AND "
                              "name = 'LVEDV'", [wid])
        assert len(pred) > 0 and abs(pred["predicted"].mean() - pred["observed"].mean()) < 3 * pred["observed"].std() + 1
        assert pred["predicted"].mean() > 20
        # its head is not a Chapman classifier: no classification scores
        assert not store.scalar("SELECT count(*) FROM metrics WHERE weights_id = ? AND name = 'f1'", [wid])
    assert run_complete(store, job)
