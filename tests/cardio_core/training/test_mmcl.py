"""MMCL contrastive pre-training: the CLIP loss against a hand computation, the module's training, validation
metrics, and its saved encoders read back by the project's own loader."""
import math

import lightning as L
import numpy as np
import pytest
import torch

from cardio_core.models import EcgViT, build_model_from_checkpoint, load_weights, read_checkpoint
from cardio_core.models.cmr_resnet import CmrResNet50
from cardio_core.models.projector import load_projectors
from cardio_core.models.weights import FRESH_PREFIXES
from cardio_core.training.datamodules import PairedDataModule
from cardio_core.training.mmcl import (MMCL_VAL_LOSS, MMCL_VAL_TOP1, MmclPretrainModule, build_mmcl_encoders,
                                       clip_loss, retrieval_top1)

T = 500          # ECG samples per view (5 time patches per lead): small and fast
SIZE = 64        # CMR pixels: ResNet-50 at 64 px is cheap on a CPU
RELEASED_ECG_KEYS = ({"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
                      "norm.weight", "norm.bias"}
                     | {f"blocks.{i}.{m}.{p}" for i in range(3)
                        for m in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
                        for p in ("weight", "bias")})


def _module(seed=0, **kwargs):
    ecg, cmr, _ = build_mmcl_encoders(signal_length=T, seed=seed)
    kwargs.setdefault("max_epochs", 1)
    return MmclPretrainModule(ecg, cmr, seed=seed, **kwargs)


def _pairs(n, seed=0, length=T):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 12, length), dtype=np.float32), rng.random((n, 3, SIZE, SIZE), dtype=np.float32)


# --- the loss -----------------------------------------------------------------------------------------------

def test_clip_loss_matches_a_hand_computation():
    # unit vectors; tau = 0.5, so the logits are 2 * cosine: s = [[2, 1.2], [0, 1.6]]
    z_ecg = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z_cmr = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # ECG as anchor (rows of s): each ECG against both images
    l_ecg = ((-2 + math.log(math.exp(2) + math.exp(1.2))) + (-1.6 + math.log(math.exp(0) + math.exp(1.6)))) / 2
    # CMR as anchor (columns of s): each image against both ECGs
    l_cmr = ((-2 + math.log(math.exp(2) + math.exp(0))) + (-1.6 + math.log(math.exp(1.2) + math.exp(1.6)))) / 2
    loss, parts = clip_loss(z_ecg, z_cmr, temperature=0.5, lambda_=0.75)
    assert float(parts["loss_ecg"]) == pytest.approx(l_ecg, rel=1e-6)
    assert float(parts["loss_cmr"]) == pytest.approx(l_cmr, rel=1e-6)
    assert float(loss) == pytest.approx(0.25 * l_ecg + 0.75 * l_cmr, rel=1e-6)
    assert l_ecg != pytest.approx(l_cmr)   # the example tells the two directions apart
    # lambda weighs the CMR-anchored term: 1 -> only it, 0 -> only the ECG-anchored one
    assert float(clip_loss(z_ecg, z_cmr, 0.5, 1.0)[0]) == pytest.approx(l_cmr, rel=1e-6)
    assert float(clip_loss(z_ecg, z_cmr, 0.5, 0.0)[0]) == pytest.approx(l_ecg, rel=1e-6)
    # inputs are l2-normalised first: scaling a row changes nothing
    assert float(clip_loss(z_ecg * 3, z_cmr * 0.2, 0.5)[0]) == pytest.approx(float(loss), rel=1e-6)


def test_clip_loss_three_pairs_by_hand():
    a = 1 / math.sqrt(2)
    e = [[1.0, 0.0], [0.0, 1.0], [a, a]]
    c = [[0.0, 1.0], [1.0, 0.0], [a, -a]]
    tau = 0.1
    s = [[sum(e[i][k] * c[j][k] for k in range(2)) / tau for j in range(3)] for i in range(3)]
    l_ecg = sum(-s[i][i] + math.log(sum(math.exp(s[i][j]) for j in range(3))) for i in range(3)) / 3
    l_cmr = sum(-s[j][j] + math.log(sum(math.exp(s[i][j]) for i in range(3))) for j in range(3)) / 3
    loss, _ = clip_loss(torch.tensor(e), torch.tensor(c))
    assert float(loss) == pytest.approx(0.25 * l_ecg + 0.75 * l_cmr, rel=1e-5)


def test_clip_loss_properties():
    z = torch.eye(8, 16)                                   # 8 orthonormal pairs, perfectly aligned
    aligned, _ = clip_loss(z, z)
    assert float(aligned) < 1e-3                           # log(1 + 7 e^-10)
    permuted, _ = clip_loss(z, z[torch.roll(torch.arange(8), 1)])
    assert float(permuted) > 9.0                           # every pair's own partner is the worst match
    torch.manual_seed(0)
    random_pairs, _ = clip_loss(torch.randn(64, 128), torch.randn(64, 128))
    assert float(aligned) < float(random_pairs) < float(permuted)
    with pytest.raises(ValueError, match="temperature"):
        clip_loss(z, z, temperature=0)
    with pytest.raises(ValueError, match="lambda_"):
        clip_loss(z, z, lambda_=1.5)
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        clip_loss(z, z[:4])


def test_retrieval_top1():
    z = torch.eye(4)
    assert retrieval_top1(z, z) == 1.0
    assert retrieval_top1(z, z[[1, 0, 2, 3]]) == 0.5
    assert retrieval_top1(z, z[[1, 2, 3, 0]]) == 0.0


# --- the module ---------------------------------------------------------------------------------------------

def test_module_forward_uses_the_pretraining_pooling_and_unit_projections():
    module = _module().eval()
    ecg, cmr = _pairs(3)
    x, y = torch.from_numpy(ecg[:, None]), torch.from_numpy(cmr)
    with torch.no_grad():
        z_ecg, z_cmr = module(x, y)
        tokens = module.ecg_encoder.forward_tokens(x)
        pooled = module.ecg_encoder.norm(tokens[:, 1:].mean(1))    # mean over patch tokens, then the final norm
        assert torch.allclose(module.embed_ecg(x), pooled, atol=1e-6)
        assert module.embed_cmr(y).shape == (3, 2048)
    assert z_ecg.shape == z_cmr.shape == (3, 128)
    assert torch.allclose(z_ecg.norm(dim=1), torch.ones(3), atol=1e-5)
    assert module.ecg_projector.dims == {"in_dim": 384, "hidden_dim": 512, "out_dim": 128}
    assert module.cmr_projector.dims == {"in_dim": 2048, "hidden_dim": 512, "out_dim": 128}


def test_module_refuses_an_attention_pooled_ecg_encoder():
    with pytest.raises(ValueError, match="mean_norm"):
        MmclPretrainModule(EcgViT(signal_length=T), CmrResNet50(num_classes=0))
    ecg, _, _ = build_mmcl_encoders(signal_length=T)
    with pytest.raises(ValueError, match="CmrResNet50"):
        MmclPretrainModule(ecg, EcgViT(signal_length=T, global_pool="mean_norm"))


def test_optimiser_trains_everything_with_a_per_step_warmup_cosine():
    module = _module(lr=1e-3, max_epochs=10, steps_per_epoch=5)
    opt_conf = module.configure_optimizers()
    optimizer, scheduler = opt_conf["optimizer"], opt_conf["lr_scheduler"]["scheduler"]
    assert opt_conf["lr_scheduler"]["interval"] == "step"
    assert (scheduler.warmup_steps, scheduler.total_steps) == (5, 50)          # 10 % warm-up by default
    in_groups = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert in_groups == {id(p) for p in module.parameters()}                   # both encoders, both projectors
    decay = {n for g in optimizer.param_groups if g["weight_decay"] > 0 for n in g["param_names"]}
    assert "ecg_encoder.pos_embed" not in decay and "cmr_projector.layers.0.weight" in decay
    assert all(g["weight_decay"] in (0.0, 1e-4) for g in optimizer.param_groups)
    lrs = []
    for _ in range(50):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(1e-3) and lrs[-1] < 1e-5
    assert max(lrs) == pytest.approx(1e-3) and lrs.index(max(lrs)) == 5


def test_a_few_steps_overfit_eight_pairs():
    torch.manual_seed(0)
    module = _module(lr=1e-4, max_epochs=12, steps_per_epoch=1, warmup_epochs=0).train()
    optimizer = module.configure_optimizers()["optimizer"]
    ecg, cmr = _pairs(8)
    x, y = torch.from_numpy(ecg[:, None]), torch.from_numpy(cmr)
    losses = []
    for _ in range(12):
        loss, _ = module.loss(*module(x, y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses
    with torch.no_grad():   # train mode: the ResNet's BatchNorm on batch statistics, as in the steps above
        assert retrieval_top1(*module(x, y)) >= 0.75


def test_validation_metrics_use_the_whole_set_and_batch_sized_chunks():
    module = _module(val_batch_size=4)
    torch.manual_seed(1)
    z_e = torch.nn.functional.normalize(torch.randn(10, 128), dim=1)
    z_c = torch.nn.functional.normalize(z_e + 0.5 * torch.randn(10, 128), dim=1)
    m = module.validation_metrics(z_e, z_c)
    chunks = [(0, 4), (4, 8), (8, 10)]
    expected = sum(float(clip_loss(z_e[a:b], z_c[a:b])[0]) * (b - a) for a, b in chunks) / 10
    assert m["loss"] == pytest.approx(expected, rel=1e-6)
    assert m["top1"] == retrieval_top1(z_e, z_c) and m["top1_cmr"] == retrieval_top1(z_c, z_e)


def _fit(seed, tmp_path=None, epochs=1):
    torch.manual_seed(seed)
    ecg, cmr = _pairs(20, seed=3, length=2 * T)
    dm = PairedDataModule(ecg, cmr, train_index=np.arange(16), val_index=np.arange(16, 20), batch_size=8,
                          crop_length=T, cmr_size=48, seed=seed)
    module = _module(seed=seed, lr=1e-4, max_epochs=epochs)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        precision="32-true")
    trainer.fit(module, datamodule=dm)
    return module, trainer


def test_lightning_fit_logs_the_metrics_and_is_deterministic_for_a_seed():
    module, trainer = _fit(seed=0)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    for name in ("train/loss", "train/loss_ecg", "train/loss_cmr", MMCL_VAL_LOSS, MMCL_VAL_TOP1, "val/top1_cmr"):
        assert name in metrics and math.isfinite(metrics[name]), name
    assert 0.0 <= metrics[MMCL_VAL_TOP1] <= 1.0
    assert trainer.global_step == 2                         # 16 training pairs, batch 8, full batches only
    again, trainer2 = _fit(seed=0)
    assert {k: float(v) for k, v in trainer2.callback_metrics.items()} == metrics
    for (name, a), (_, b) in zip(module.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    other, _ = _fit(seed=1)
    assert not torch.equal(other.ecg_projector.layers[0].weight, module.ecg_projector.layers[0].weight)


def test_save_encoders_reads_back_through_the_project_loader(tmp_path):
    torch.manual_seed(0)
    module = _module()
    # one training step so that nothing equals its initialisation (BatchNorm statistics included)
    module.train()
    ecg, cmr = _pairs(4)
    x, y = torch.from_numpy(ecg[:, None]), torch.from_numpy(cmr)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    module.loss(*module(x, y))[0].backward()
    optimizer.step()
    module.eval()
    paths = module.save_encoders(tmp_path / "signal_encoder_mmcl.pth", tmp_path / "image_encoder_mmcl.pth",
                                 tmp_path / "projectors_mmcl.pth", meta={"run_id": "r1", "epochs": 1})

    ecg_file = read_checkpoint(paths["ecg"])
    assert (ecg_file.layout, ecg_file.modality, ecg_file.embedding_pool) == ("cardioscope", "ecg", "mean_norm")
    assert set(ecg_file.state_dict) == RELEASED_ECG_KEYS                 # the released signal_encoder's 42 keys
    assert ecg_file.meta["pretraining"] == "mmcl" and ecg_file.meta["run_id"] == "r1"
    assert not ecg_file.head_trained
    ecg_model, report = build_model_from_checkpoint(paths["ecg"], modality="ecg")
    assert report.missing_keys == [] and report.unexpected_keys == []
    cmr_model, cmr_report = build_model_from_checkpoint(paths["cmr"], modality="cmr")
    assert read_checkpoint(paths["cmr"]).layout == "cardioscope"
    assert cmr_report.missing_keys == [] and cmr_report.unexpected_keys == []
    with torch.no_grad():
        assert torch.equal(ecg_model.eval().forward_features(x), module.embed_ecg(x))
        assert torch.equal(cmr_model.eval().forward_features(y), module.embed_cmr(y))

    # fine-tuning models take them too: only the modules that always start fresh are missing
    finetune_ecg = EcgViT(num_classes=20, signal_length=T)
    missing = load_weights(finetune_ecg, paths["ecg"], modality="ecg").missing_keys
    assert missing and all(k.startswith(FRESH_PREFIXES["ecg"]) for k in missing)
    finetune_cmr = CmrResNet50(num_classes=5)
    assert load_weights(finetune_cmr, paths["cmr"], modality="cmr").missing_keys == ["head.bias", "head.weight"]

    raw = torch.load(paths["projectors"], weights_only=True)
    assert set(raw) == {"format", "ecg", "cmr", "meta"}
    ecg_head, cmr_head, meta = load_projectors(paths["projectors"])
    assert meta["temperature"] == 0.1 and meta["lambda"] == 0.75 and meta["run_id"] == "r1"
    assert meta["ecg_dims"] == {"in_dim": 384, "hidden_dim": 512, "out_dim": 128}
    with torch.no_grad():
        z_ecg, z_cmr = module(x, y)
        assert torch.equal(ecg_head(ecg_model.forward_features(x)), z_ecg)
        assert torch.equal(cmr_head(cmr_model.forward_features(y)), z_cmr)


def test_build_mmcl_encoders_loads_pretrained_files(tmp_path):
    module = _module(seed=5)
    paths = module.save_encoders(tmp_path / "e.pth", tmp_path / "c.pth", tmp_path / "p.pth")
    ecg, cmr, reports = build_mmcl_encoders(paths["ecg"], paths["cmr"], signal_length=T, seed=9)
    assert reports["ecg"].missing_keys == [] and reports["cmr"].missing_keys == []
    assert torch.equal(ecg.pos_embed, module.ecg_encoder.pos_embed)
    assert torch.equal(cmr.layer4[0].conv1.weight, module.cmr_encoder.layer4[0].conv1.weight)
    # the released layout of an image encoder loads as well
    torch.save({"state_dict": {f"encoder_imaging.{k}": v for k, v in module.cmr_encoder.state_dict().items()}},
               tmp_path / "image_encoder_simclr.pth")
    _, cmr2, rep = build_mmcl_encoders(cmr_weights=tmp_path / "image_encoder_simclr.pth", signal_length=T)
    assert rep["cmr"].source_layout == "released_cmr" and rep["ecg"] is None
    assert torch.equal(cmr2.conv1.weight, module.cmr_encoder.conv1.weight)
