"""Encoders (ECG ViT, CMR ResNet-50), the model registry and weight loading."""
from .cmr_resnet import CmrResNet50
from .ecg_vit import EcgViT
from .registry import create_model, list_models, modality_of
from .weights import (LoadReport, WeightsError, build_model_from_checkpoint, inspect_checkpoint, load_weights,
                      read_checkpoint, save_checkpoint)

__all__ = ["EcgViT", "CmrResNet50", "create_model", "list_models", "modality_of", "LoadReport", "WeightsError",
           "load_weights", "save_checkpoint", "read_checkpoint", "inspect_checkpoint", "build_model_from_checkpoint"]
