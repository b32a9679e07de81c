"""CSPDarknet53-tiny, the YOLOv4-tiny backbone.

Module and attribute names follow the PyTorch port the Colab recipe uses, so that its
``.pth`` state dicts load with ``load_state_dict`` unchanged (``backbone.conv1.conv.weight``,
``backbone.resblock_body1.conv4.bn.running_var``, ...).
"""
from __future__ import annotations

import torch
from torch import nn


class BasicConv(nn.Module):
    """Darknet's convolutional unit: Conv2d (no bias) -> BatchNorm2d -> LeakyReLU(0.1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.activation = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.bn(self.conv(x)))


class ResblockBody(nn.Module):
    """One CSP block of the tiny backbone.

    3x3 conv -> keep the second half of the channels -> 3x3 -> 3x3 -> concat [last, previous]
    -> 1x1 (this is ``feat``) -> concat [block's first conv, feat] -> maxpool 2.
    The concat orders are Darknet's ``route -1,-2`` and ``route -6,-1``, which matters when
    loading ``.weights`` files.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.out_channels = out_channels
        half = out_channels // 2
        self.conv1 = BasicConv(in_channels, out_channels, 3)
        self.conv2 = BasicConv(half, half, 3)
        self.conv3 = BasicConv(half, half, 3)
        self.conv4 = BasicConv(out_channels, out_channels, 1)
        self.maxpool = nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        route = self.conv1(x)
        half = self.out_channels // 2
        x = self.conv2(route[:, half:])
        route1 = x
        x = self.conv3(x)
        feat = self.conv4(torch.cat([x, route1], dim=1))
        return self.maxpool(torch.cat([route, feat], dim=1)), feat


#: ``model.width`` moves in eighths: then each CSP block's channels are a multiple of 8 and
#: twice the block's before (a block's output, concatenated halves, is the next one's input),
#: as at width 1. (0.3 made blocks of 16 and 40 channels: a traceback at the first step.)
WIDTH_STEP = 0.125


def width_fits(width: float) -> bool:
    """Whether ``width`` builds a network: a multiple of :data:`WIDTH_STEP` from it to 4."""
    return 0 < width <= 4 and float(width / WIDTH_STEP).is_integer()


def scaled(channels: int, width: float) -> int:
    """``channels`` of the full network times ``width`` (``model.width``), a multiple of 8
    (at least 8): the CSP blocks split their channels in halves."""
    return max(8, int(round(channels * width / 8)) * 8)


class CSPDarknet53Tiny(nn.Module):
    """Returns ``(feat1, feat2)``: the 256-channel stride-16 CSP3 feature and the 512-channel
    stride-32 output of the last 3x3 conv (each times ``width``: :func:`scaled`)."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        c = [scaled(n, width) for n in (32, 64, 128, 256, 512)]
        self.conv1 = BasicConv(3, c[0], 3, stride=2)
        self.conv2 = BasicConv(c[0], c[1], 3, stride=2)
        self.resblock_body1 = ResblockBody(c[1], c[1])
        self.resblock_body2 = ResblockBody(c[2], c[2])
        self.resblock_body3 = ResblockBody(c[3], c[3])
        self.conv3 = BasicConv(c[4], c[4], 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv2(self.conv1(x))
        x, _ = self.resblock_body1(x)
        x, _ = self.resblock_body2(x)
        x, feat1 = self.resblock_body3(x)
        feat2 = self.conv3(x)
        return feat1, feat2
