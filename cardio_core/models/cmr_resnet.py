"""ResNet-50 for cine-MRI input (3 x 210 x 210: ED, mid, ES frames as channels)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet


class CmrResNet50(ResNet):
    """torchvision ResNet-50 trunk (never downloaded), GAP -> 2048-d embedding, head Linear(2048, num_classes).

    The trunk's parameter names are torchvision's (conv1, bn1, layer1..4), so the released
    `encoder_imaging.`-prefixed weights load after stripping the prefix. torchvision's `fc`
    is replaced by Identity and the classifier lives in `head`.
    """

    modality = "cmr"
    model_name = "cmr_resnet50"

    def __init__(self, num_classes: int = 5, input_size: int = 210):
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        if not 32 <= int(input_size) <= 1024:
            raise ValueError(f"input_size must be in 32..1024 pixels, got {input_size}")
        super().__init__(Bottleneck, [3, 4, 6, 3])
        # The side the encoder was trained at. Inputs arrive preprocessed at 210 px (method.md §2); an encoder
        # trained smaller (a CPU demo) resizes them here, so every caller (embedding, fine-tuning, contrastive
        # training, a later load of its checkpoint) sees the images at the size it was trained with.
        self.input_size = int(input_size)
        self.model_kwargs = dict(num_classes=num_classes, input_size=self.input_size)
        self.num_classes = num_classes
        self.num_features = 2048
        self.fc = nn.Identity()
        self.head = nn.Linear(2048, num_classes) if num_classes > 0 else nn.Identity()

    def forward_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """layer4's output before pooling: (B, 2048, h, w), e.g. 7 x 7 at 210 px."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"CmrResNet50 expects input (B, 3, H, W), got {tuple(x.shape)}")
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True)
        return self.layer4(self.layer3(self.layer2(self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x))))))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding: (B, 2048) global-average-pooled trunk output."""
        return torch.flatten(self.avgpool(self.forward_feature_map(x)), 1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
