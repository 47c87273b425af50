"""Projection heads of MMCL pre-training: shape, unit norm, the published layer layout, the projector file."""
import pytest
import torch

from cardio_core.models.projector import ProjectionHead, load_projectors, save_projectors


def test_output_shape_and_unit_norm():
    torch.manual_seed(0)
    head = ProjectionHead(384)
    z = head(torch.randn(7, 384) * 5)
    assert z.shape == (7, 128)
    assert torch.allclose(z.norm(dim=1), torch.ones(7), atol=1e-6)
    assert ProjectionHead(2048, 512, 64)(torch.randn(3, 2048)).shape == (3, 64)
    # leading dims are kept (per-location projection of a feature map)
    assert head(torch.randn(2, 5, 5, 384)).shape == (2, 5, 5, 128)
    raw = ProjectionHead(384, normalize=False)(torch.randn(4, 384) * 5)
    assert not torch.allclose(raw.norm(dim=1), torch.ones(4))


def test_layout_is_linear_relu_linear_without_batchnorm():
    # lightly 1.2.22's SimCLRProjectionHead, which the published MMCL code uses: layers.0 / layers.2 with biases
    head = ProjectionHead(384, 512, 128)
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == {
        "layers.0.weight": (512, 384), "layers.0.bias": (512,), "layers.2.weight": (128, 512), "layers.2.bias": (128,)}
    assert isinstance(head.layers[1], torch.nn.ReLU)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in head.modules())


def test_bad_dims_and_inputs():
    with pytest.raises(ValueError, match="in_dim"):
        ProjectionHead(0)
    with pytest.raises(ValueError, match="hidden_dim"):
        ProjectionHead(8, hidden_dim=2.5)
    with pytest.raises(ValueError, match=r"\(\.\.\., 384\)"):
        ProjectionHead(384)(torch.randn(2, 383))


def test_projector_file_round_trip(tmp_path):
    torch.manual_seed(0)
    ecg, cmr = ProjectionHead(384), ProjectionHead(2048)
    path = save_projectors(tmp_path / "proj.pth", ecg, cmr, meta={"temperature": 0.1, "lambda": 0.75})
    raw = torch.load(path, weights_only=True)           # plain tensors and JSON-like values only
    assert raw["ecg"]["dims"] == {"in_dim": 384, "hidden_dim": 512, "out_dim": 128}
    e2, c2, meta = load_projectors(path)
    assert meta == {"temperature": 0.1, "lambda": 0.75}
    assert not e2.training and not c2.training
    x, y = torch.randn(3, 384), torch.randn(3, 2048)
    assert torch.equal(e2(x), ecg(x)) and torch.equal(c2(y), cmr(y))


def test_projector_file_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_projectors(tmp_path / "missing.pth")
    torch.save({"model": {}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a CardioScope MMCL projector file"):
        load_projectors(tmp_path / "other.pth")
    path = save_projectors(tmp_path / "p.pth", ProjectionHead(8, 4, 2), ProjectionHead(6, 4, 2), meta={})
    obj = torch.load(path, weights_only=True)
    obj["cmr"]["dims"]["in_dim"] = 7
    torch.save(obj, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="cmr projector does not match its dims"):
        load_projectors(tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="JSON"):
        save_projectors(tmp_path / "x.pth", ProjectionHead(8), ProjectionHead(8), meta={"t": torch.ones(1)})
