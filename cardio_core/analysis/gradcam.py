"""Where the CMR model looks: Grad-CAM (Selvaraju et al., 2017) of a CNN classifier for one class.

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


def upsample_map(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (h, w) map bilinearly upsampled to `size` (height, width), corners aligned with the image's pixel
    centres as torch's align_corners=False does; scaled to [0, 1] by its maximum (an all-zero map stays 0)."""
    import torch
    import torch.nn.functional as F

    grid = np.asarray(grid, dtype=np.float32)
    if grid.ndim != 2:
        raise ValueError(f"expected a (h, w) map, got shape {grid.shape}")
    up = F.interpolate(torch.from_numpy(grid)[None, None], size=tuple(int(s) for s in size), mode="bilinear",
                       align_corners=False)[0, 0].numpy()
    top = float(up.max())
    return (up / top if top > 0 else up).astype(np.float32)


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
    if maps.empty:
        return
    keys = maps[["weights_id", "dataset_id", "record_id", "kind"]].drop_duplicates()
    cols = ", ".join(f'"{c}"' for c in CMR_MAP_COLUMNS)
    select = cols.replace('"values"', '"values"::FLOAT[]').replace('"fold"', '"fold"::INTEGER')
    with store.write() as con:
        con.register("_keys", keys)
        con.execute("DELETE FROM cmr_maps m USING _keys k WHERE m.weights_id = k.weights_id AND m.dataset_id = "
                    "k.dataset_id AND m.record_id = k.record_id AND m.kind = k.kind")
        con.unregister("_keys")
        con.register("_maps", maps[CMR_MAP_COLUMNS])
        con.execute(f"INSERT INTO cmr_maps ({cols}) SELECT {select} FROM _maps")
        con.unregister("_maps")
