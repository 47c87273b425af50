import pytest
import torch

from cardio_core.models import CmrResNet50, create_model


def test_no_download_and_shapes(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("tried to download weights")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    model = create_model("cmr_resnet50").eval()
    assert isinstance(model, CmrResNet50)
    x = torch.rand(2, 3, 210, 210)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
    assert feats.shape == (2, 2048) and logits.shape == (2, 5)
    assert torch.allclose(model.head(feats), logits, atol=1e-5)
    assert (feats >= 0).all()          # GAP of post-ReLU maps


def test_parameter_names_are_torchvision_resnet_names():
    sd = CmrResNet50(num_classes=5).state_dict()
    assert "conv1.weight" in sd and "layer4.2.bn3.running_var" in sd and "layer1.0.downsample.0.weight" in sd
    assert sd["head.weight"].shape == (5, 2048)
    assert not any(k.startswith("fc.") for k in sd)


def test_wrong_input_shape():
    with pytest.raises(ValueError, match="expects input"):
        CmrResNet50().forward_features(torch.rand(1, 1, 64, 64))


def test_an_encoder_trained_smaller_resizes_its_input_and_keeps_its_size_through_a_checkpoint(tmp_path):
    import torch
    from cardio_core.models import CmrResNet50, save_checkpoint
    from cardio_core.models.weights import WeightsFile
    torch.manual_seed(0)
    model = CmrResNet50(input_size=64).eval()
    x = torch.rand(2, 3, 210, 210)
    small = torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        assert torch.equal(model.forward_features(x), model.forward_features(small))
    path = save_checkpoint(tmp_path / "small.pth", model, meta={"head_trained": False})
    loaded = WeightsFile.read(path).build()
    assert loaded.model.input_size == 64
    with torch.no_grad():
        assert torch.equal(loaded.model.eval().forward_features(x), model.forward_features(x))
