"""Which torch device a job or an embedding pass runs on."""
from __future__ import annotations

from cardio_core.errors import CardioError


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when a CUDA GPU is visible, else 'cpu'; 'cuda' without a GPU is an error."""
    import torch
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise CardioError("device 'cuda' requested but no CUDA GPU is available")
    return device
