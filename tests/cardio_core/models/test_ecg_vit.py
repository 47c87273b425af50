import pytest
import torch
from timm.layers import DropPath
from torch import nn

from cardio_core.models import EcgViT, create_model, list_models

TINY = dict(signal_length=500, embed_dim=48, depth=2, num_heads=4)


def test_parameter_names_and_shapes_match_the_released_layout():
    sd = EcgViT().state_dict()
    assert sd["patch_embed.proj.weight"].shape == (384, 1, 1, 100)
    assert sd["pos_embed"].shape == (1, 301, 384)
    assert sd["cls_token"].shape == (1, 1, 384)
    for i in range(3):
        for part in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
            assert f"blocks.{i}.{part}.weight" in sd and f"blocks.{i}.{part}.bias" in sd
    assert sd["blocks.0.attn.qkv.bias"].shape == (3 * 384,)   # qkv bias on
    assert "norm.weight" in sd
    fresh = {k for k in sd if k.startswith(("attention_pool.", "fc_norm.", "head."))}
    assert len(sd) - len(fresh) == 42
    assert sd["head.weight"].shape == (20, 384)


def test_forward_shapes():
    model = EcgViT(**TINY, num_classes=7).eval()
    x = torch.randn(3, 1, 12, 500)
    assert model.forward_features(x).shape == (3, 48)
    assert model(x).shape == (3, 7)
    assert torch.allclose(model(x[:, 0]), model(x))       # (B, 12, T) accepted too
    with pytest.raises(ValueError, match="expects input"):
        model(torch.randn(3, 1, 12, 400))


def test_layernorm_eps_is_1e_6():
    model = EcgViT(**TINY)
    assert model.blocks[0].norm1.eps == 1e-6 and model.norm.eps == 1e-6 and model.fc_norm.eps == 1e-6


def test_token_index_is_lead_times_25_plus_time_patch():
    model = EcgViT()
    x = torch.zeros(1, 1, 12, 2500)
    base = model.patch_embed(x)
    x[0, 0, 3, 700:800] = 1.0                       # lead 3, time patch 7
    changed = (model.patch_embed(x) - base).abs().sum(-1)[0]
    assert changed.nonzero().flatten().tolist() == [3 * 25 + 7]


def test_attention_pool_queries_with_mean_patch_token_and_ignores_cls():
    torch.manual_seed(0)
    model = EcgViT(**TINY).eval()
    tokens = torch.randn(2, 1 + 12 * 5, 48)
    pooled = model.pool(tokens)
    other_cls = tokens.clone()
    other_cls[:, 0] = 100.0
    assert torch.allclose(model.pool(other_cls), pooled)
    patches = tokens[:, 1:]
    expected, _ = model.attention_pool(patches.mean(1, keepdim=True), patches, patches)
    assert torch.allclose(pooled, model.fc_norm(expected[:, 0]), atol=1e-6)
    assert model.attention_pool.num_heads == 4


def test_drop_path_is_stochastic_depth_not_dropout():
    model = EcgViT(drop_path_rate=0.1)
    # rates rise linearly over the blocks: 0 (identity), 0.05, 0.1
    rates = [getattr(blk.drop_path1, "drop_prob", 0.0) for blk in model.blocks]
    assert rates == pytest.approx([0.0, 0.05, 0.1])
    assert all(isinstance(blk.drop_path1, DropPath) and isinstance(blk.drop_path2, DropPath)
               for blk in model.blocks[1:])
    # no plain dropout with p > 0 anywhere (method.md §7.3)
    assert not [m for m in model.modules() if isinstance(m, nn.Dropout) and m.p > 0]
    assert model.attention_pool.dropout == 0.0


def test_drop_path_acts_per_sample_in_training_only():
    torch.manual_seed(0)
    model = EcgViT(**TINY, drop_path_rate=0.9)
    x = torch.randn(64, 1, 12, 500)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    # with drop path, the same input gives different outputs across training passes
    assert not torch.allclose(model(x), model(x))


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="signal_length"):
        EcgViT(signal_length=2550)
    with pytest.raises(ValueError, match="global_pool"):
        EcgViT(global_pool="max")
    with pytest.raises(ValueError, match="drop_path_rate"):
        EcgViT(drop_path_rate=1.5)


def test_registry():
    assert list_models() == ["cmr_resnet50", "ecg_vit_small"]
    model = create_model("ecg_vit_small", **TINY)
    assert isinstance(model, EcgViT) and model.model_kwargs["signal_length"] == 500
    with pytest.raises(ValueError, match="unknown model"):
        create_model("vit_huge")
