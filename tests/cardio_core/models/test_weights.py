import json

import pytest
import torch

from cardio_core.errors import CardioError
from cardio_core.models import (CmrResNet50, EcgViT, WeightsError, build_model_from_checkpoint, inspect_checkpoint,
                                load_weights, save_checkpoint)

FRESH_ECG = sorted(["attention_pool.in_proj_weight", "attention_pool.in_proj_bias", "attention_pool.out_proj.weight",
                    "attention_pool.out_proj.bias", "fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"])


def released_ecg_state_dict(seed=0, n_time_patches=25):
    """The 42 tensors of the released MMCL ECG files, written out from method.md §3 (not from our model)."""
    g = torch.Generator().manual_seed(seed)
    d, h = 384, 4 * 384
    shapes = {"cls_token": (1, 1, d), "pos_embed": (1, 1 + 12 * n_time_patches, d),
              "patch_embed.proj.weight": (d, 1, 1, 100), "patch_embed.proj.bias": (d,)}
    for i in range(3):
        shapes.update({f"blocks.{i}.norm1.weight": (d,), f"blocks.{i}.norm1.bias": (d,),
                       f"blocks.{i}.attn.qkv.weight": (3 * d, d), f"blocks.{i}.attn.qkv.bias": (3 * d,),
                       f"blocks.{i}.attn.proj.weight": (d, d), f"blocks.{i}.attn.proj.bias": (d,),
                       f"blocks.{i}.norm2.weight": (d,), f"blocks.{i}.norm2.bias": (d,),
                       f"blocks.{i}.mlp.fc1.weight": (h, d), f"blocks.{i}.mlp.fc1.bias": (h,),
                       f"blocks.{i}.mlp.fc2.weight": (d, h), f"blocks.{i}.mlp.fc2.bias": (d,)})
    shapes.update({"norm.weight": (d,), "norm.bias": (d,)})
    assert len(shapes) == 42
    return {k: torch.randn(s, generator=g) for k, s in shapes.items()}


@pytest.fixture(scope="module")
def released_ecg(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "signal_encoder_mmcl.pth"
    sd = released_ecg_state_dict()
    torch.save({"model": sd}, path)
    return path, sd


@pytest.fixture(scope="module")
def released_cmr(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "image_encoder_mmcl.pth"
    torch.manual_seed(1)
    trunk = {k: v for k, v in CmrResNet50().state_dict().items() if not k.startswith("head.")}
    trunk = {k: (torch.randn_like(v) if v.is_floating_point() else v) for k, v in trunk.items()}
    sd = {"encoder_imaging." + k: v for k, v in trunk.items()}
    sd["projection_head.layer1.weight"] = torch.randn(128, 2048)   # other sub-models of the Lightning module
    torch.save({"state_dict": sd}, path)
    return path, trunk


def test_released_ecg_loads_with_only_fresh_modules_missing(released_ecg):
    path, sd = released_ecg
    model = EcgViT()
    report = load_weights(model, path, modality="ecg")
    assert report.source_layout == "released_ecg"
    assert report.missing_keys == FRESH_ECG          # 8 of 50 keys = 16% missing, and that is fine (§7.7)
    assert report.unexpected_keys == []
    assert report.loaded_keys == 42
    loaded = model.state_dict()
    for k, v in sd.items():
        assert torch.equal(loaded[k], v), k
    json.dumps(report.to_dict())


def test_missing_body_key_is_refused_even_if_few_keys_are_missing(tmp_path, released_ecg):
    _, sd = released_ecg
    sd = dict(sd)
    del sd["blocks.1.mlp.fc2.bias"]                   # 1 key of 50: a percentage rule would accept it
    path = tmp_path / "bad.pth"
    torch.save({"model": sd}, path)
    with pytest.raises(WeightsError, match=r"bad\.pth.*missing 1 encoder weight.*blocks\.1\.mlp\.fc2\.bias"):
        load_weights(EcgViT(), path, modality="ecg")


def test_shape_mismatch_is_refused(tmp_path, released_ecg):
    _, sd = released_ecg
    sd = dict(sd, **{"patch_embed.proj.weight": torch.zeros(384, 1, 1, 50)})
    path = tmp_path / "mismatch.pth"
    torch.save({"model": sd}, path)
    with pytest.raises(WeightsError, match=r"mismatch\.pth: shape mismatch.*patch_embed\.proj\.weight"):
        load_weights(EcgViT(), path, modality="ecg")


def test_deeper_file_into_shallower_model_is_refused(released_ecg):
    path, _ = released_ecg
    with pytest.raises(WeightsError, match="blocks.2"):
        load_weights(EcgViT(depth=2), path, modality="ecg")


def test_pos_embed_interpolated_along_time_for_another_signal_length(tmp_path):
    sd = released_ecg_state_dict()
    pe = torch.zeros(1, 301, 384)
    pe[0, 0] = 7.0                                               # CLS position
    pe[0, 1:] = torch.arange(12).repeat_interleave(25)[:, None].float()   # value = lead index
    sd["pos_embed"] = pe
    path = tmp_path / "w.pth"
    torch.save({"model": sd}, path)
    model = EcgViT(signal_length=5000)
    report = load_weights(model, path, modality="ecg")
    assert model.pos_embed.shape == (1, 601, 384)
    assert "pos_embed" in report.resized_keys[0]
    assert torch.allclose(model.pos_embed[0, 0], torch.full((384,), 7.0))
    per_lead = model.pos_embed[0, 1:].reshape(12, 50, 384)
    # interpolation happened along time only: each lead keeps its own value
    assert torch.allclose(per_lead, torch.arange(12.).view(12, 1, 1).expand(12, 50, 384), atol=1e-4)
    # same length: no resizing, exact values
    same = EcgViT()
    assert load_weights(same, path, modality="ecg").resized_keys == []
    assert torch.equal(same.pos_embed, pe)


def test_released_cmr_strips_prefix(released_cmr):
    path, trunk = released_cmr
    model = CmrResNet50()
    report = load_weights(model, path, modality="cmr")
    assert report.source_layout == "released_cmr"
    assert report.missing_keys == ["head.bias", "head.weight"]
    assert report.skipped_keys == ["projection_head.layer1.weight"]
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in trunk.items())


def test_wrong_modality_is_refused(released_ecg, released_cmr):
    with pytest.raises(WeightsError, match=r"signal_encoder_mmcl\.pth.*ECG.*CMR model"):
        load_weights(CmrResNet50(), released_ecg[0], modality="cmr")
    with pytest.raises(WeightsError, match=r"image_encoder_mmcl\.pth.*CMR.*ECG model"):
        load_weights(EcgViT(), released_cmr[0], modality="ecg")
    with pytest.raises(ValueError, match="CMR encoder"):
        load_weights(CmrResNet50(), released_ecg[0], modality="ecg")


class Evil:
    pass


@pytest.mark.parametrize("kind", ["text", "truncated", "tensor", "pickle", "bare_state_dict", "missing"])
def test_bad_files_raise_weights_error_naming_the_file(tmp_path, released_ecg, kind):
    path = tmp_path / f"{kind}.pth"
    if kind == "text":
        path.write_text("hello, not weights\n")
    elif kind == "truncated":
        data = released_ecg[0].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "tensor":
        torch.save(torch.zeros(3), path)
    elif kind == "pickle":
        torch.save({"model": Evil()}, path)
    elif kind == "bare_state_dict":
        torch.save(released_ecg[1], path)
    with pytest.raises(WeightsError) as info:
        load_weights(EcgViT(), path, modality="ecg")
    assert isinstance(info.value, CardioError)
    assert str(path) in str(info.value)


def test_save_checkpoint_roundtrip_and_rebuild(tmp_path):
    torch.manual_seed(0)
    model = EcgViT(signal_length=500, embed_dim=48, depth=2, num_heads=4, num_classes=3)
    path = save_checkpoint(tmp_path / "ckpt" / "epoch10.pth", model, meta={"epoch": 10, "val/macro_f1": 0.5})
    assert [p.name for p in path.parent.iterdir()] == ["epoch10.pth"]   # no temporary file left
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "cardioscope" and raw["modality"] == "ecg" and raw["model_name"] == "ecg_vit_small"
    assert raw["meta"] == {"epoch": 10, "val/macro_f1": 0.5}
    rebuilt, report = build_model_from_checkpoint(path)
    assert report.source_layout == "cardioscope" and report.missing_keys == [] and report.unexpected_keys == []
    assert rebuilt.model_kwargs == model.model_kwargs
    x = torch.randn(2, 1, 12, 500)
    assert torch.allclose(rebuilt.eval()(x), model.eval()(x))
    # a new task: different head size, head left out on purpose
    other, report = build_model_from_checkpoint(path, num_classes=5, load_head=False)
    assert report.skipped_keys == ["head.weight", "head.bias"] and report.missing_keys == ["head.bias", "head.weight"]
    with pytest.raises(WeightsError, match="shape mismatch.*head.weight"):
        build_model_from_checkpoint(path, num_classes=5)
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path / "x.pth", model, meta={"bad": object()})


def test_inspect_checkpoint(released_ecg, released_cmr):
    info = inspect_checkpoint(released_ecg[0])
    assert info["layout"] == "released_ecg" and info["modality"] == "ecg" and info["n_tensors"] == 42
    assert info["missing_keys"] == FRESH_ECG
    json.dumps(info)
    info = inspect_checkpoint(released_cmr[0])
    assert info["layout"] == "released_cmr" and info["modality"] == "cmr"
