"""The thesis's main effect on the demo data: fine-tuning raises the rhythm silhouettes.

Runs the real chain in-process on a small Chapman-format demo set: ingest -> MDM
pre-trained baseline -> ECG fine-tune with checkpoints -> embeddings, metrics, projections.
"""
import pytest

from cardio_core.config import Workspace
from cardio_core.store import Store

pytestmark = pytest.mark.slow


def _ctx(ws, store, spec, run_id):
    from jobs.worker import JobContext
    job_dir = ws.runs_dir / run_id
    job_dir.mkdir(parents=True, exist_ok=True)
    ctx = JobContext(workspace=ws, store=store, job_id=run_id, spec=spec, job_dir=job_dir, resume_from=None)
    ctx.run_id = run_id
    return ctx


def test_finetuning_raises_rhythm_silhouettes(tmp_path):
    from jobs.spec import JobSpec
    from cardio_core.demo.generate import generate_demo_datasets
    from cardio_core.data.ingest import ingest_dataset
    from cardio_core.pipeline import workflows

    ws = Workspace(tmp_path / "ws").ensure()
    store = Store(ws.db_path)
    generate_demo_datasets(tmp_path / "demo", size={"chapman": 360, "ptbxl": 40, "acdc": 5}, seed=0, workers=1)
    ingest_dataset(store, ws, "chapman", tmp_path / "demo" / "chapman", seed=0, workers=1)
    ingest_dataset(store, ws, "ptbxl", tmp_path / "demo" / "ptbxl", seed=0, workers=1)

    pre = JobSpec(kind="pretrain", modality="ecg", dataset="chapman", epochs=1, device="cpu")
    baseline = workflows.pretrain(_ctx(ws, store, pre, "pre"))["weights_id"]
    ft = JobSpec(kind="finetune", modality="ecg", dataset="chapman", weights=baseline, recipe="demo_ecg",
                 epochs=6, checkpoint_every=6, device="cpu")
    run = workflows.finetune(_ctx(ws, store, ft, "ft"))

    sil = dict(store.query("SELECT weights_id, value FROM metrics WHERE scope = 'chapman_test' "
                           "AND name = 'silhouette' AND label = ''"))
    final = store.scalar("SELECT weights_id FROM checkpoints WHERE run_id = ? ORDER BY epoch DESC LIMIT 1",
                         [run["run_id"]])
    assert final is not None and baseline in sil and final in sil
    print(f"rhythm silhouette: baseline {sil[baseline]:.3f} -> fine-tuned {sil[final]:.3f}")
    assert sil[final] > sil[baseline] + 0.02
    # lineage: checkpoint -> parent weights, projections aligned within the run, metrics with intervals
    assert store.scalar("SELECT parent_weights_id FROM weights WHERE weights_id = ?", [final]) == baseline
    assert store.scalar("SELECT count(*) FROM projections WHERE weights_id = ? AND aligned_to IS NOT NULL "
                        "AND view LIKE '%_aligned'", [final]) == 2
    assert store.scalar("SELECT count(*) FROM projections WHERE weights_id = ? AND aligned_to IS NULL "
                        "AND method = 'umap'", [final]) == 2   # the default layouts: independent fits
    assert store.scalar("SELECT count(*) FROM projections WHERE weights_id = ? AND view = 'chapman_test_lda' "
                        "AND method = 'lda'", [final]) == 1  # the supervised view, fitted on train
    assert store.scalar("SELECT count(*) FROM metrics WHERE weights_id = ? AND name = 'silhouette' "
                        "AND ci_low IS NOT NULL", [final]) >= 1
    # the head's per-class scores (embedding step) survive the embedding metrics (evaluate step)
    assert store.scalar("SELECT count(*) FROM metrics WHERE weights_id = ? AND scope = 'chapman_test' "
                        "AND name = 'f1'", [final]) == 21
