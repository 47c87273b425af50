"""Model names -> constructors, so checkpoints can record how to rebuild their model."""
from __future__ import annotations

from torch import nn

from cardio_core.models.cmr_resnet import CmrResNet50
from cardio_core.models.ecg_vit import EcgViT

# The model each modality's released files and baselines are built as.
DEFAULT_MODEL = {"ecg": "ecg_vit_small", "cmr": "cmr_resnet50"}

_MODELS: dict[str, type[nn.Module]] = {
    "ecg_vit_small": EcgViT,
    "cmr_resnet50": CmrResNet50,
}


def list_models() -> list[str]:
    return sorted(_MODELS)


def model_class(name: str) -> type[nn.Module]:
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model with randomly initialised weights (no download ever)."""
    return model_class(name)(**kwargs)


def modality_of(model: nn.Module) -> str:
    modality = getattr(model, "modality", None)
    if modality not in ("ecg", "cmr"):
        raise ValueError(f"{type(model).__name__} is not a CardioScope encoder (no ecg/cmr modality)")
    return modality
