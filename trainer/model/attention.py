"""Channel/spatial attention blocks the port offers as variants (phi=1..4).

Each block maps ``[B, C, H, W]`` to the same shape. They are inserted after the two backbone
features and after the upsample, as the port does; none of them exists in Darknet weights.
Submodule names follow the port's state-dict keys (``channelattention.fc1``, ``conv_1x1``,
``F_h``, ...) so that attention weights trained with the port load by name.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class SEBlock(nn.Module):
    """Squeeze-and-excitation: global average pool -> bottleneck MLP -> sigmoid gate."""

    def __init__(self, channels: int, ratio: int = 16):
        super().__init__()
        hidden = max(channels // ratio, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        return x * self.fc(self.pool(x).view(b, c)).view(b, c, 1, 1)


class _ChannelGate(nn.Module):
    def __init__(self, channels: int, ratio: int):
        super().__init__()
        hidden = max(channels // ratio, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self._mlp(torch.mean(x, dim=(2, 3), keepdim=True))
        mx = self._mlp(torch.amax(x, dim=(2, 3), keepdim=True))
        return torch.sigmoid(avg + mx)


class _SpatialGate(nn.Module):
    def __init__(self, kernel_size: int):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv1(pooled))


class CBAMBlock(nn.Module):
    """CBAM: a channel gate (avg- and max-pooled MLP) followed by a spatial gate."""

    def __init__(self, channels: int, ratio: int = 8, kernel_size: int = 7):
        super().__init__()
        self.channelattention = _ChannelGate(channels, ratio)
        self.spatialattention = _SpatialGate(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.channelattention(x)
        return x * self.spatialattention(x)


class ECABlock(nn.Module):
    """ECA: a 1-D convolution across pooled channels; kernel size adapts to the channel count."""

    def __init__(self, channels: int, b: int = 1, gamma: int = 2):
        super().__init__()
        k = int(abs((math.log(channels, 2) + b) / gamma))
        k = k if k % 2 else k + 1
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        y = self.conv(self.pool(x).view(b, 1, c))
        return x * torch.sigmoid(y).view(b, c, 1, 1)


class CABlock(nn.Module):
    """Coordinate attention: pools along H and W separately, so the gate keeps position."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.conv_1x1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.bn = nn.BatchNorm2d(hidden)
        self.act = nn.ReLU(inplace=True)
        self.F_h = nn.Conv2d(hidden, channels, 1, bias=False)
        self.F_w = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        along_h = x.mean(dim=3, keepdim=True)                     # [B, C, H, 1]
        along_w = x.mean(dim=2, keepdim=True).transpose(2, 3)     # [B, C, W, 1]
        y = self.act(self.bn(self.conv_1x1(torch.cat([along_h, along_w], dim=2))))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        return x * torch.sigmoid(self.F_h(y_h)) * torch.sigmoid(self.F_w(y_w.transpose(2, 3)))


#: phi -> block class; phi=0 means no attention (plain YOLOv4-tiny).
ATTENTION_BLOCKS = {1: SEBlock, 2: CBAMBlock, 3: ECABlock, 4: CABlock}
