"""Projection heads of multimodal contrastive pre-training (MMCL, method.md §8) and their file.

A projector maps an encoder's pooled embedding (ECG 384-d, CMR 2048-d) into the shared 128-d space where the
CLIP loss compares the two modalities. The published MMCL code uses lightly's `SimCLRProjectionHead` at the
version it pins (lightly 1.2.22): Linear(in, hidden) -> ReLU -> Linear(hidden, out), both with bias and
*no* BatchNorm (BatchNorm arrived in later lightly versions). The same layer names are kept here
(`layers.0`, `layers.2`), so a projector state dict of that code would load as it is.

The output is l2-normalised (the published loss normalises before the dot product; doing it in the head
makes a projection a unit vector wherever it is used: retrieval, heatmaps).

Projectors are not encoders: they are not in the encoder registry and have no modality. Both heads of one
pre-training run are stored together in one file (`save_projectors`), read back with `load_projectors`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

PROJECTORS_FORMAT = "cardioscope_mmcl_projectors"


class ProjectionHead(nn.Module):
    """2-layer MLP `in_dim -> hidden_dim -> out_dim` with a ReLU between, output l2-normalised per row."""

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128, *, normalize: bool = True):
        super().__init__()
        for name, value in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim
        self.normalize = normalize
        self.layers = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim))

    @property
    def dims(self) -> dict:
        return {"in_dim": self.in_dim, "hidden_dim": self.hidden_dim, "out_dim": self.out_dim}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in_dim) -> (..., out_dim); unit l2 norm along the last axis when `normalize`."""
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"ProjectionHead expects (..., {self.in_dim}) features, got {tuple(x.shape)}")
        z = self.layers(x)
        return nn.functional.normalize(z, dim=-1) if self.normalize else z


def save_projectors(path: str | Path, ecg_head: ProjectionHead, cmr_head: ProjectionHead, *, meta: dict) -> Path:
    """Write both heads to one file, atomically; loadable with torch.load(weights_only=True).

    Layout: {"format": "cardioscope_mmcl_projectors", "ecg": {"dims", "state_dict"}, "cmr": {...}, "meta"}.
    `meta` must be JSON-like (temperature, lambda, the run, ...).
    """
    path = Path(path)
    try:
        meta = json.loads(json.dumps(meta, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"meta must be JSON-serialisable: {exc}") from None
    payload = {"format": PROJECTORS_FORMAT, "meta": meta}
    for name, head in (("ecg", ecg_head), ("cmr", cmr_head)):
        if not isinstance(head, ProjectionHead):
            raise ValueError(f"{name}_head must be a ProjectionHead, got {type(head).__name__}")
        payload[name] = {"dims": head.dims, "normalize": head.normalize,
                         "state_dict": {k: v.detach().cpu().clone() for k, v in head.state_dict().items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_projectors(path: str | Path) -> tuple[ProjectionHead, ProjectionHead, dict]:
    """(ecg_head, cmr_head, meta) from a file written by save_projectors; both heads in eval mode.

    Read with weights_only=True (an untrusted file); a wrong layout or a tensor of the wrong shape raises
    a ValueError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:   # unpickling refused, corrupt archive, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a readable projector file ({first})") from None
    if not isinstance(obj, dict) or obj.get("format") != PROJECTORS_FORMAT:
        raise ValueError(f"{path}: not a CardioScope MMCL projector file (format {PROJECTORS_FORMAT!r} expected)")
    heads = []
    for name in ("ecg", "cmr"):
        entry = obj.get(name)
        if not isinstance(entry, dict) or "dims" not in entry or "state_dict" not in entry:
            raise ValueError(f"{path}: the {name} projector is missing")
        head = ProjectionHead(**entry["dims"], normalize=bool(entry.get("normalize", True)))
        try:
            head.load_state_dict(entry["state_dict"], strict=True)
        except RuntimeError as exc:
            raise ValueError(f"{path}: the {name} projector does not match its dims: "
                             f"{str(exc).splitlines()[0]}") from None
        heads.append(head.eval())
    return heads[0], heads[1], dict(obj.get("meta") or {})
