"""Input length end to end (issue 10 point 2): a recipe with crop_length 5000 or 1000 trains through a real job,
and each checkpoint is embedded at the length it was trained with, its position embedding interpolated from
the released file's 2,500 samples."""
import pytest
import torch

from cardio_core.config import Workspace
from cardio_core.data.ingest import ingest_dataset
from cardio_core.models.ecg_vit import EcgViT
from cardio_core.models.weights import FRESH_PREFIXES, WeightsFile
from cardio_core.store import Store

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("crop_length", [5000, 1000])
def test_finetune_job_at_another_input_length_trains_and_analyses_its_checkpoint(crop_length, demo_root, tmp_path,
                                                                               monkeypatch):
    from jobs.runner import LocalRunner

    ws = Workspace(tmp_path / "ws").ensure()
    monkeypatch.setenv("CARDIO_WORKSPACE", str(ws.root))
    store = Store(ws.db_path)
    ingest_dataset(store, ws, "chapman", demo_root / "chapman", workers=1)
    ws.weights_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    body = {k: v for k, v in EcgViT().state_dict().items() if not k.startswith(FRESH_PREFIXES["ecg"])}
    torch.save({"model": body}, ws.weights_dir / "signal_encoder_mmcl.pth")   # released layout, 2,500 samples
    runner = LocalRunner(ws, store)
    job = runner.submit({"kind": "finetune", "modality": "ecg", "dataset": "chapman", "recipe": "demo_ecg",
                         "weights": "signal_encoder_mmcl.pth", "epochs": 1, "checkpoint_every": 1, "device": "cpu",
                         "overrides": {"crop_length": crop_length}})
    assert runner.wait(job, timeout=600) == "succeeded", runner.show(job).get("error")
    wid, path = store.query("SELECT weights_id, path FROM checkpoints WHERE run_id = ?", [job])[0]
    ckpt = WeightsFile.read(path)
    assert ckpt.model_kwargs["signal_length"] == crop_length
    assert ckpt.state_dict["pos_embed"].shape == (1, 1 + 12 * crop_length // 100, 384)
    config = store.scalar("SELECT config FROM runs WHERE run_id = ?", [job])
    assert "pos_embed: (1, 301, 384)" in config                          # interpolated from the released file
    n_test = store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'chapman' AND split = 'test' "
                          "AND NOT excluded")
    assert store.scalar("SELECT count(*) FROM embeddings WHERE weights_id = ? AND dataset_id = 'chapman' "
                        "AND record_id IN (SELECT record_id FROM records WHERE dataset_id = 'chapman' "
                        "AND split = 'test')", [wid]) == n_test
    assert store.scalar("SELECT DISTINCT pooling FROM embeddings WHERE weights_id = ?", [wid]) == "attention"
    parent = store.scalar("SELECT parent_weights_id FROM runs WHERE run_id = ?", [job])
    assert store.scalar("SELECT DISTINCT pooling FROM embeddings WHERE weights_id = ?", [parent]) == "mean_norm"
