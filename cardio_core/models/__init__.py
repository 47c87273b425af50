"""Encoders (ECG ViT, CMR ResNet-50), the model registry and weight loading."""
from cardio_core.models.cmr_resnet import CmrResNet50
from cardio_core.models.ecg_vit import EcgViT
from cardio_core.models.registry import create_model, list_models, modality_of
from cardio_core.models.weights import (LoadedEncoder, LoadReport, WeightsError, WeightsFile,
                                       build_model_from_checkpoint, inspect_checkpoint, load_weights,
                                       read_checkpoint, save_checkpoint)

__all__ = ["EcgViT", "CmrResNet50", "WeightsFile", "LoadedEncoder", "create_model", "list_models", "modality_of", "LoadReport", "WeightsError",
           "load_weights", "save_checkpoint", "read_checkpoint", "inspect_checkpoint", "build_model_from_checkpoint"]
