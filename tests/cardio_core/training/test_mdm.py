import lightning as L
import numpy as np
import pytest
import torch

from cardio_core.models import EcgViT, load_weights
from cardio_core.training.datamodules import ChapmanDataModule
from cardio_core.training.mdm import MDM_VAL_LOSS, MdmPretrainModule

TINY = dict(signal_length=500, embed_dim=32, depth=2, num_heads=4, num_classes=20)
FRESH = sorted(["attention_pool.in_proj_weight", "attention_pool.in_proj_bias", "attention_pool.out_proj.weight",
                "attention_pool.out_proj.bias", "fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"])


def test_masking_and_shapes():
    torch.manual_seed(0)
    module = MdmPretrainModule(EcgViT(**TINY), decoder_embed_dim=16, decoder_depth=1)
    x = torch.randn(3, 1, 12, 500)
    loss, pred, mask = module(x)
    assert pred.shape == (3, 60, 100) and mask.shape == (3, 60)
    assert mask.sum(1).tolist() == [48.0, 48.0, 48.0]          # 80% of 60 patches hidden
    assert not torch.equal(mask[0], mask[1])                   # drawn per sample
    assert loss.ndim == 0 and torch.isfinite(loss)
    # patch order matches the encoder's tokens: patch k = lead k // 5, time patch k % 5
    patches = module.patchify(x)
    assert torch.equal(patches[0, 2 * 5 + 3], x[0, 0, 2, 300:400])


def test_loss_counts_only_hidden_patches():
    torch.manual_seed(0)
    module = MdmPretrainModule(EcgViT(**TINY), decoder_embed_dim=16, decoder_depth=1, norm_target=False).eval()
    x = torch.randn(2, 1, 12, 500)
    with torch.no_grad():
        torch.manual_seed(1)
        loss, pred, mask = module(x)
        per_patch = ((pred - module.patchify(x)) ** 2).mean(-1)
    assert float(loss) == pytest.approx(float((per_patch * mask).sum() / mask.sum()), rel=1e-5)
    assert float(loss) != pytest.approx(float(per_patch.mean()), rel=1e-4)   # visible patches excluded


def test_a_few_steps_reduce_the_loss_and_encoder_loads_into_ecg_vit(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    t = np.linspace(0, 20 * np.pi, 1000, dtype=np.float32)
    x = np.stack([np.sin(t * (1 + 0.1 * i) + rng.uniform(0, 6)) for i in range(48 * 12)]).reshape(48, 12, 1000)
    x = x.astype(np.float32)
    dm = ChapmanDataModule((x, np.zeros((48, 0))), (x[:16], np.zeros((16, 0))), batch_size=16, crop_length=500,
                           augment=False)
    module = MdmPretrainModule(EcgViT(**TINY), decoder_embed_dim=32, decoder_depth=1, lr=3e-3,
                               warmup_epochs=0, max_epochs=4)
    val_x = torch.from_numpy(x[:16, None, :, :500])
    torch.manual_seed(5)
    with torch.no_grad():
        before = float(module(val_x)[0])
    trainer = L.Trainer(max_epochs=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=dm)
    torch.manual_seed(5)
    with torch.no_grad():
        after = float(module(val_x)[0])
    assert after < before
    assert MDM_VAL_LOSS in trainer.callback_metrics

    path = module.save_encoder(tmp_path / "mdm.pth", meta={"epochs": 4})
    target = EcgViT(**TINY)
    report = load_weights(target, path, modality="ecg")
    assert report.missing_keys == FRESH and report.unexpected_keys == []
    trained = module.encoder.state_dict()
    assert torch.equal(target.state_dict()["blocks.1.mlp.fc2.weight"], trained["blocks.1.mlp.fc2.weight"])
    # the released layout works too
    torch.save({"model": module.encoder_state_dict()}, tmp_path / "released_style.pth")
    assert load_weights(EcgViT(**TINY), tmp_path / "released_style.pth", modality="ecg").missing_keys == FRESH
