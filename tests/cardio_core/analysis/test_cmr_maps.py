"""Grad-CAM against a toy network whose answer is known by hand: for conv -> global average pool -> linear,
Grad-CAM of class c is ReLU(sum_k w_ck A_k) / (h w) (the class activation map), computed here in numpy."""
import numpy as np
import pytest
import torch
from torch import nn

from cardio_core.analysis.cmr_maps import grad_cam, upsample_map


class _Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(1, 2, kernel_size=1, bias=False)
        with torch.no_grad():
            self.features.weight[:] = torch.tensor([1.0, -1.0]).view(2, 1, 1, 1)   # A_0 = x, A_1 = -x
        self.head = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.head.weight[:] = torch.tensor([[2.0, 0.5], [-1.0, 1.0]])

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def test_grad_cam_is_the_class_activation_map_on_a_gap_network():
    x = torch.zeros(2, 1, 6, 6)
    x[0, 0, :2, :2] = 3.0            # a bright square top left
    x[1, 0, 4:, 3:] = 1.0            # one bottom right
    x[1, 0, 0, 0] = -2.0             # and a dark pixel
    model = _Toy()
    maps, classes = grad_cam(model, x, model.features, class_index=0)
    A = np.stack([x.numpy()[:, 0], -x.numpy()[:, 0]], axis=1)                # (B, 2, 6, 6)
    w = model.head.weight.detach().numpy()
    expected = np.maximum((w[0][None, :, None, None] * A).sum(1), 0) / 36.0
    np.testing.assert_allclose(maps, expected, rtol=1e-6, atol=1e-7)
    assert classes.tolist() == [0, 0]
    assert np.unravel_index(maps[0].argmax(), maps[0].shape)[0] < 2           # it looks at the square
    # class 1 weighs -x: the dark pixel, not the bright square
    maps1, _ = grad_cam(model, x, model.features, class_index=1)
    expected1 = np.maximum((w[1][None, :, None, None] * A).sum(1), 0) / 36.0
    np.testing.assert_allclose(maps1, expected1, rtol=1e-6, atol=1e-7)
    assert maps1[1].argmax() == 0 and maps1[0].max() == 0   # no dark pixel in image 0: no class-1 evidence
    # the predicted class by default; the model is left as it was, with no gradients kept
    pred = model(x).argmax(1).tolist()
    assert grad_cam(model, x, model.features)[1].tolist() == pred
    assert all(p.grad is None for p in model.parameters()) and not model.features._forward_hooks
    with pytest.raises(ValueError, match="class_index"):
        grad_cam(model, x, model.features, class_index=5)


def test_grad_cam_on_the_cmr_resnet_covers_its_layer4_grid():
    from cardio_core.models.cmr_resnet import CmrResNet50
    torch.manual_seed(0)
    model = CmrResNet50(num_classes=5, input_size=64)
    maps, classes = grad_cam(model, torch.rand(2, 3, 64, 64), model.layer4)
    assert maps.shape == (2, 2, 2) and maps.dtype == np.float32 and (maps >= 0).all()
    assert classes.shape == (2,)


def test_upsample_is_bilinear_and_scaled_to_one():
    grid = np.array([[0.0, 2.0], [2.0, 4.0]], dtype=np.float32)
    up = upsample_map(grid, (4, 4))
    assert up.shape == (4, 4) and up.max() == pytest.approx(1.0) and up.min() == pytest.approx(0.0)
    np.testing.assert_allclose(up, up.T, atol=1e-7)                            # symmetric as its grid
    assert (np.diff(up, axis=1) >= -1e-7).all()                                 # monotone along a row
    assert upsample_map(np.zeros((7, 7)), (210, 210)).max() == 0.0
    with pytest.raises(ValueError, match="map"):
        upsample_map(np.zeros(5), (4, 4))


def test_compute_gradcam_stores_each_images_map_for_its_predicted_class_and_replaces(tmp_path):
    from cardio_core.analysis.cmr_maps import compute_gradcam
    from cardio_core.labels import ACDC_GROUPS
    from cardio_core.models.cmr_resnet import CmrResNet50
    from cardio_core.queries import cmr_map
    from cardio_core.store import Store

    store = Store(tmp_path / "s.duckdb")
    torch.manual_seed(0)
    model = CmrResNet50(num_classes=5, input_size=64)
    images = np.random.default_rng(0).random((3, 3, 64, 64)).astype(np.float32)
    assert compute_gradcam(store, "cv-e0001", "acdc", ["p1", "p2", "p3"], images, model, classes=ACDC_GROUPS,
                           fold=3, batch_size=2) == 3
    direct, predicted = grad_cam(model, torch.from_numpy(images), model.layer4)
    got = cmr_map(store, "cv-e0001", "acdc", "p2")
    np.testing.assert_allclose(got["grid"], direct[1], rtol=1e-4, atol=1e-6)
    assert got["class"] == ACDC_GROUPS[predicted[1]] and got["fold"] == 3 and got["layer"] == "layer4"
    assert model.training                                                       # left as it was
    with torch.no_grad():
        p = torch.softmax(model.eval()(torch.from_numpy(images)), 1)[1, predicted[1]].item()
    assert got["probability"] == pytest.approx(p, rel=1e-4)
    compute_gradcam(store, "cv-e0001", "acdc", ["p2"], images[1:2], model, classes=ACDC_GROUPS, fold=3)
    assert store.scalar("SELECT count(*) FROM cmr_maps") == 3                  # replaced, not duplicated
    assert cmr_map(store, "cv-e0001", "acdc", "nobody") is None


def test_patch_similarity_is_the_cosine_of_each_projected_location_with_the_ecg_projection():
    from cardio_core.analysis.cmr_maps import patch_similarity
    from cardio_core.models.cmr_resnet import CmrResNet50
    from cardio_core.models.projector import ProjectionHead
    torch.manual_seed(0)
    model = CmrResNet50(num_classes=0, input_size=96)
    head = ProjectionHead(2048, 64, 16)
    x = torch.rand(2, 3, 96, 96)
    z_ecg = torch.nn.functional.normalize(torch.randn(2, 16), dim=-1).numpy()
    got = patch_similarity(model, head, x, z_ecg)
    assert got.shape == (2, 3, 3)
    # by hand: layer4's grid from the trunk, location by location through the projector, cosine in numpy
    model.eval()
    head.eval()
    with torch.no_grad():
        t = torch.nn.functional.interpolate(x, size=(96, 96))
        t = model.maxpool(model.relu(model.bn1(model.conv1(t))))
        grid = model.layer4(model.layer3(model.layer2(model.layer1(t)))).numpy()
        for b in range(2):
            for i in range(3):
                for j in range(3):
                    v = head(torch.from_numpy(grid[b, :, i, j].copy())[None])[0].numpy()
                    expected = v @ z_ecg[b] / (np.linalg.norm(v) * np.linalg.norm(z_ecg[b]))
                    assert got[b, i, j] == pytest.approx(float(expected), abs=1e-5)
    # the pooled embedding's projection is not what it compares: each location on its own
    assert np.ptp(got[0]) > 0


def test_upsample_minmax_scales_a_signed_map():
    up = upsample_map(np.array([[-0.5, 0.5]], dtype=np.float32), (1, 4), scale="minmax")
    assert up.min() == pytest.approx(0.0) and up.max() == pytest.approx(1.0)
    assert upsample_map(np.full((2, 2), 0.3), (4, 4), scale="minmax").max() == 0.0
    with pytest.raises(ValueError, match="scale"):
        upsample_map(np.ones((2, 2)), (4, 4), scale="log")
