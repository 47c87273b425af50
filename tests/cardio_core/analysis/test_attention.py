"""Where the ECG model looks: the token layout, the attention probabilities against timm's own unfused path,
the pool's weights against torch's, and the cached maps in the store."""
import shutil

import numpy as np
import pytest
import torch

from cardio_core.analysis.attention import attention_maps, compute_attention, lead_time_grid
from cardio_core.models.ecg_vit import EcgViT
from cardio_core.models.weights import LoadedEncoder


def _model(pool="attention", length=500):
    torch.manual_seed(0)
    return EcgViT(num_classes=3, signal_length=length, global_pool=pool, embed_dim=48, num_heads=6).eval()


def test_tokens_reshape_to_leads_by_time_patches_as_the_patch_embedding_orders_them():
    # hand-built layout: token i carries lead * 100 + time patch
    values = np.array([lead * 100 + t for lead in range(12) for t in range(25)], dtype=float)
    grid = lead_time_grid(values, 12, 25)
    assert grid.shape == (12, 25) and grid[0, 0] == 0 and grid[3, 7] == 307 and grid[11, 24] == 1124
    # and it is the patch embedding's own order: one lead's 100 samples end up in that lead's token
    model = _model(length=2500)
    x = torch.zeros(1, 1, 12, 2500)
    x[0, 0, 4, 1300:1400] = 1.0                    # lead 4 (aVR), time patch 13
    with torch.no_grad():
        tokens = model.patch_embed(x)[0]
        base = model.patch_embed(torch.zeros_like(x))[0]
    changed = (tokens - base).abs().sum(-1).numpy() > 1e-6
    assert np.argwhere(lead_time_grid(changed, 12, 25)).tolist() == [[4, 13]]
    with pytest.raises(ValueError, match="patch tokens"):
        lead_time_grid(np.zeros(299), 12, 25)


def _unfused_probabilities(model, x):
    """Each block's attention probabilities from timm's own unfused path (captured after its softmax)."""
    got = {}
    for i, block in enumerate(model.blocks):
        block.attn.fused_attn = False
        block.attn.attn_drop.register_forward_hook(lambda _m, _a, out, i=i: got.__setitem__(i, out.detach()))
    with torch.no_grad():
        model(x)
    return got


def test_block_maps_are_the_attention_received_without_cls_averaged_over_queries():
    model = _model()
    x = torch.randn(2, 1, 12, 500)
    maps = attention_maps(model, x)
    assert sorted(maps) == ["block1", "block2", "block3", "pool"]
    reference = _unfused_probabilities(_model(), x)
    for i in range(3):
        expected = reference[i][:, :, 1:, 1:].mean(dim=2).numpy().reshape(2, 6, 12, 5)
        np.testing.assert_allclose(maps[f"block{i + 1}"], expected, rtol=1e-4, atol=1e-6)
    assert maps["block1"].shape == (2, 6, 12, 5) and maps["block1"].dtype == np.float32


def test_pool_weights_match_torch_and_sum_to_one_per_head():
    model = _model()
    x = torch.randn(3, 1, 12, 500)
    maps = attention_maps(model, x)
    with torch.no_grad():
        patches = model.forward_tokens(x)[:, 1:]
        _, mean_w = model.attention_pool(patches.mean(1, keepdim=True), patches, patches, need_weights=True)
    np.testing.assert_allclose(maps["pool"].mean(axis=1).reshape(3, -1), mean_w[:, 0].numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(maps["pool"].sum(axis=(2, 3)), 1.0, rtol=1e-5)
    # a pre-trained encoder read with mean pooling has no pool: only the blocks
    assert "pool" not in attention_maps(_model("mean_norm"), x)


def test_attention_maps_leave_the_model_as_it_was():
    model = _model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    attention_maps(model, torch.randn(1, 1, 12, 500))
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(block.attn._forward_pre_hooks for block in model.blocks)


def test_maps_are_stored_per_record_and_read_back_in_display_order(ingested_ws, tmp_path):
    from cardio_core import queries
    from cardio_core.analysis.attention import cache_attention_sample
    from cardio_core.catalog import register_weights
    from cardio_core.store import Store

    ws, shared_store, _ = ingested_ws
    shutil.copy(ws.db_path, tmp_path / "copy.duckdb")        # the session's workspace is read only
    store = Store(tmp_path / "copy.duckdb")
    register_weights(store, weights_id="w", modality="ecg", name="w", kind="pretrained")
    encoder = LoadedEncoder(_model(length=2500), None, None)
    counts = cache_attention_sample(store, "w", encoder=encoder, per_dataset=3)
    assert counts == {"chapman": 3, "ptbxl": 3}
    first = queries.attention_records(store, "w", "chapman")
    assert len(first) == 3
    maps = queries.record_attention(store, "w", "chapman", first[0])
    assert list(maps) == ["block3", "block2", "block1", "pool"]
    assert maps["block3"].shape == (6, 12, 25)
    # what is stored is what the model gives for the record's preprocessed input, samples 0..2499
    from cardio_core.data.dataset_view import load_view
    view = load_view(store, "chapman", where="r.record_id = ?", params=[first[0]])
    x = torch.from_numpy(np.asarray(view.arrays[0], dtype=np.float32)[None, None, :, :2500])
    direct = attention_maps(encoder.model, x)
    np.testing.assert_allclose(maps["pool"], direct["pool"][0], rtol=1e-5, atol=1e-7)
    # computing again replaces, never duplicates
    compute_attention(store, "w", "chapman", first[:1], encoder=encoder)
    assert store.scalar("SELECT count(*) FROM attention_maps WHERE weights_id = 'w' AND dataset_id = 'chapman'") == 12
    with pytest.raises(KeyError, match="no usable record"):
        compute_attention(store, "w", "chapman", ["nope"], encoder=encoder)
    assert queries.record_attention(store, "w", "chapman", "nope") == {}
    # mean over heads, or one head
    np.testing.assert_allclose(queries.heads_view(maps["block3"]), maps["block3"].mean(0))
    np.testing.assert_array_equal(queries.heads_view(maps["block3"], 2), maps["block3"][2])
    with pytest.raises(ValueError, match="head must be"):
        queries.heads_view(maps["block3"], 6)
