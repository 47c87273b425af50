"""Where the CMR model looks: Grad-CAM (Selvaraju et al., 2017) of a CNN classifier for one class, and MMCL's
patch-similarity heatmap of an encoder pair (patch_similarity).

The standard hook-based method: the target layer's activations A (B, K, h, w) and the gradient of the class
score y_c with respect to them; each channel's weight is the gradient's mean over the grid, the map is
ReLU(sum_k weight_k * A_k). Maps are kept on the layer's own grid (7 x 7 for ResNet-50's layer4 at 210 px)
and upsampled bilinearly to the image only to be drawn (`upsample_map`), so the store holds 49 numbers per
image, not 44,100. For a ResNet-50 the one image carries ED, mid and ES as its channels, so one map covers
the three frames.
"""
from __future__ import annotations

import numpy as np


def grad_cam(model, x, layer, class_index=None) -> tuple[np.ndarray, np.ndarray]:
    """(maps (B, h, w) float32, the classes they explain (B,)) for input x under `model` in eval mode.

    class_index None: each image's predicted class; an int or a sequence of B ints: those classes. A map that is
    zero everywhere (no positive evidence on the layer) stays zero; maps are not normalised here.
    """
    import torch

    store: dict = {}

    def keep(_module, _inputs, output):
        store["activations"] = output
        output.register_hook(lambda grad: store.__setitem__("gradients", grad))

    handle = layer.register_forward_hook(keep)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(False)
            scores = model(x)
            if class_index is None:
                classes = scores.argmax(dim=1)
            else:
                classes = torch.as_tensor(np.broadcast_to(np.asarray(class_index), (len(x),)).copy(),
                                          dtype=torch.long)
            if ((classes < 0) | (classes >= scores.shape[1])).any():
                raise ValueError(f"class_index must be in 0..{scores.shape[1] - 1}, got {classes.tolist()}")
            model.zero_grad(set_to_none=True)
            scores.gather(1, classes[:, None]).sum().backward()
        activations, gradients = store["activations"].detach(), store["gradients"].detach()
        weights = gradients.mean(dim=(2, 3), keepdim=True)
        maps = torch.relu((weights * activations).sum(dim=1))
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return maps.float().cpu().numpy().astype(np.float32), classes.cpu().numpy()


def upsample_map(grid: np.ndarray, size: tuple[int, int], *, scale: str = "max") -> np.ndarray:
    """A (h, w) map bilinearly upsampled to `size` (height, width), corners aligned with the image's pixel
    centres as torch's align_corners=False does, then scaled to [0, 1]: by its maximum (scale 'max', for a
    non-negative map such as Grad-CAM; an all-zero map stays 0) or from its minimum to its maximum ('minmax',
    for a signed map such as a cosine; a constant map becomes 0)."""
    if scale not in ("max", "minmax"):
        raise ValueError(f"scale must be 'max' or 'minmax', got {scale!r}")
    import torch
    import torch.nn.functional as F

    grid = np.asarray(grid, dtype=np.float32)
    if grid.ndim != 2:
        raise ValueError(f"expected a (h, w) map, got shape {grid.shape}")
    up = F.interpolate(torch.from_numpy(grid)[None, None], size=tuple(int(s) for s in size), mode="bilinear",
                       align_corners=False)[0, 0].numpy()
    if scale == "minmax":
        up = up - float(up.min())
    top = float(up.max())
    return (up / top if top > 0 else np.zeros_like(up)).astype(np.float32)


CMR_MAP_COLUMNS = ["weights_id", "dataset_id", "record_id", "kind", "fold", "class", "probability", "layer",
                   "n_rows", "n_cols", "values"]


def compute_gradcam(store, weights_id: str, dataset_id: str, record_ids, arrays, model, *, classes, fold=None,
                    device: str = "cpu", batch_size: int = 8, layer_name: str = "layer4") -> int:
    """Grad-CAM of each image (3, H, W) for the class the model predicts, stored under `weights_id`; returns
    how many were stored. `classes`: the class names in the head's order."""
    import pandas as pd
    import torch

    record_ids = [str(r) for r in record_ids]
    if len(record_ids) != len(arrays):
        raise ValueError(f"{len(record_ids)} record ids but {len(arrays)} images")
    dev = torch.device(device)
    model = model.to(dev)
    layer = getattr(model, layer_name)
    rows = []
    was_training = model.training
    model.eval()   # batch norm from its running statistics, never updating them (a model mid-training included)
    try:
        for start in range(0, len(record_ids), batch_size):
            stop = min(len(record_ids), start + batch_size)
            x = torch.from_numpy(np.stack([np.asarray(arrays[i], dtype=np.float32)
                                           for i in range(start, stop)])).to(dev)
            maps, predicted = grad_cam(model, x, layer)
            with torch.inference_mode():
                probs = torch.softmax(model(x).float(), dim=1).cpu().numpy()
            for j, record_id in enumerate(record_ids[start:stop]):
                c = int(predicted[j])
                rows.append((weights_id, dataset_id, record_id, "gradcam", fold, str(classes[c]),
                             float(probs[j, c]), layer_name, int(maps[j].shape[0]), int(maps[j].shape[1]),
                             maps[j].ravel().tolist()))
    finally:
        model.train(was_training)
    store_cmr_maps(store, pd.DataFrame(rows, columns=CMR_MAP_COLUMNS))
    return len(rows)


def store_cmr_maps(store, maps) -> None:
    """Replace the stored maps of these (weights, dataset, record, kind) keys by `maps` (CMR_MAP_COLUMNS)."""
    missing = [c for c in CMR_MAP_COLUMNS if c not in maps.columns]
    if missing:
        raise ValueError(f"CMR maps lack the columns {missing}")
    store.replace_rows("cmr_maps", maps[CMR_MAP_COLUMNS], ["weights_id", "dataset_id", "record_id", "kind"],
                       casts={"values": "FLOAT[]", "fold": "INTEGER"})


def patch_similarity(cmr_model, cmr_head, x, z_ecg) -> np.ndarray:
    """MMCL's CMR heatmap (method.md §8): each location of layer4's grid through the image projector, then its
    cosine with the subject's ECG projection. x (B, 3, H, W), z_ecg (B, d) -> (B, h, w) in [-1, 1]."""
    import torch

    was = cmr_model.training, cmr_head.training
    cmr_model.eval()
    cmr_head.eval()
    try:
        with torch.inference_mode():
            grid = cmr_model.forward_feature_map(x)                       # (B, 2048, h, w)
            per_location = cmr_head(grid.permute(0, 2, 3, 1))             # (B, h, w, d); the head works on (..., in)
            per_location = torch.nn.functional.normalize(per_location.float(), dim=-1)
            ecg = torch.nn.functional.normalize(torch.as_tensor(z_ecg, dtype=torch.float32,
                                                                device=per_location.device), dim=-1)
            cosine = (per_location * ecg[:, None, None, :]).sum(-1)
    finally:
        cmr_model.train(was[0])
        cmr_head.train(was[1])
    return cosine.cpu().numpy().astype(np.float32)


def compute_patch_similarity(store, pair_id: str, record_ids, arrays, cmr_model, cmr_head, z_ecg, *,
                             dataset_id: str = "paired_cmr", device: str = "cpu", batch_size: int = 16) -> int:
    """patch_similarity of each subject's CMR with its own ECG projection, stored under the pair id."""
    import pandas as pd
    import torch

    record_ids = [str(r) for r in record_ids]
    if not len(record_ids) == len(arrays) == len(z_ecg):
        raise ValueError(f"{len(record_ids)} subjects, {len(arrays)} images and {len(z_ecg)} ECG projections")
    dev = torch.device(device)
    cmr_model, cmr_head = cmr_model.to(dev), cmr_head.to(dev)
    rows = []
    for start in range(0, len(record_ids), batch_size):
        stop = min(len(record_ids), start + batch_size)
        x = torch.from_numpy(np.stack([np.asarray(arrays[i], dtype=np.float32) for i in range(start, stop)])).to(dev)
        maps = patch_similarity(cmr_model, cmr_head, x, np.asarray(z_ecg[start:stop], dtype=np.float32))
        for j, record_id in enumerate(record_ids[start:stop]):
            rows.append((pair_id, dataset_id, record_id, "patch_similarity", None, None, None, "layer4",
                         int(maps[j].shape[0]), int(maps[j].shape[1]), maps[j].ravel().tolist()))
    store_cmr_maps(store, pd.DataFrame(rows, columns=CMR_MAP_COLUMNS))
    return len(rows)
