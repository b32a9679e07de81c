"""YOLOv4-tiny: CSPDarknet53-tiny backbone, a 1x1 neck, two heads (stride 32 and 16).

Attribute names match the port's state dict (``conv_for_P5``, ``yolo_headP5``, ``upsample``,
``yolo_headP4``); see ``../shared/reference/yolov4-tiny-pth-keys.tsv``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from trainer.model.attention import ATTENTION_BLOCKS
from trainer.model.backbone import BasicConv, CSPDarknet53Tiny, scaled, width_fits

#: Anchor (w, h) in input pixels, as in yolov4-tiny.cfg (the port keeps them fixed for any
#: input size).
DEFAULT_ANCHORS: tuple[tuple[float, float], ...] = (
    (10, 14), (23, 27), (37, 58), (81, 82), (135, 169), (344, 319),
)
#: Anchor indices per head: the stride-32 head first, then the stride-16 head.
DEFAULT_ANCHORS_MASK: tuple[tuple[int, ...], ...] = ((3, 4, 5), (1, 2, 3))


class Upsample(nn.Module):
    """1x1 conv then nearest x2; the ``upsample.upsample.0`` key path of the port."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.upsample = nn.Sequential(
            BasicConv(in_channels, out_channels, 1), nn.Upsample(scale_factor=2, mode="nearest")
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(x)


def _head(in_channels: int, mid_channels: int, out_channels: int) -> nn.Sequential:
    # Index 0 = 3x3 BasicConv, index 1 = the linear 1x1 with bias (keys yolo_headP5.0/.1).
    return nn.Sequential(
        BasicConv(in_channels, mid_channels, 3), nn.Conv2d(mid_channels, out_channels, 1)
    )


class YoloV4Tiny(nn.Module):
    """YOLOv4-tiny returning the raw head maps ``(p5, p4)``.

    ``p5`` is ``[B, A5*(5+C), S/32, S/32]`` and ``p4`` ``[B, A4*(5+C), S/16, S/16]``; per
    anchor the channels are ``tx, ty, tw, th, obj, cls...`` (the port's layout).

    Args:
        num_classes: number of object classes C.
        anchors: anchor (w, h) pairs in input pixels.
        anchors_mask: anchor indices used by the stride-32 head, then the stride-16 head.
        input_size: the square training/inference size S (a multiple of 32); kept for
            decoding and the loss, the network itself accepts any multiple of 32.
        phi: 0 plain; 1 SE, 2 CBAM, 3 ECA, 4 coordinate attention after the backbone
            features and the upsample.
        width: every layer's channels times this (1: YOLOv4-tiny, whose pretrained weights
            fit it alone; 0.5, 0.25: a network 4x, 16x smaller, for small data or a CPU).
    """

    def __init__(
        self,
        num_classes: int = 20,
        anchors: Sequence[Sequence[float]] = DEFAULT_ANCHORS,
        anchors_mask: Sequence[Sequence[int]] = DEFAULT_ANCHORS_MASK,
        input_size: int = 416,
        phi: int = 0,
        width: float = 1.0,
    ):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
        if len(anchors_mask) != 2:
            raise ValueError(f"YOLOv4-tiny has 2 heads; anchors_mask needs 2 lists, got {anchors_mask!r}")
        for m in anchors_mask:
            for i in m:
                if not 0 <= i < len(anchors):
                    raise ValueError(f"anchors_mask index {i} out of range for {len(anchors)} anchors")
        if not width_fits(width):
            raise ValueError(f"width must be a multiple of 0.125 from 0.125 to 4, got {width}")
        if phi not in (0, *ATTENTION_BLOCKS):
            raise ValueError(f"phi must be 0..4 (0 none, 1 SE, 2 CBAM, 3 ECA, 4 CA), got {phi}")
        self.num_classes = num_classes
        self.anchors = [tuple(float(v) for v in a) for a in anchors]
        self.anchors_mask = [list(m) for m in anchors_mask]
        self.input_size = input_size
        self.phi = phi
        self.width = width

        c128, c256, c512 = (scaled(n, width) for n in (128, 256, 512))
        self.backbone = CSPDarknet53Tiny(width)
        self.conv_for_P5 = BasicConv(c512, c256, 1)
        self.yolo_headP5 = _head(c256, c512, len(anchors_mask[0]) * (5 + num_classes))
        self.upsample = Upsample(c256, c128)
        self.yolo_headP4 = _head(c128 + c256, c256, len(anchors_mask[1]) * (5 + num_classes))
        if phi:
            block = ATTENTION_BLOCKS[phi]
            self.feat1_att = block(c256)
            self.feat2_att = block(c512)
            self.upsample_att = block(c128)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat1, feat2 = self.backbone(x)
        if self.phi:
            feat1 = self.feat1_att(feat1)
            feat2 = self.feat2_att(feat2)
        p5 = self.conv_for_P5(feat2)
        out0 = self.yolo_headP5(p5)
        up = self.upsample(p5)
        if self.phi:
            up = self.upsample_att(up)
        out1 = self.yolo_headP4(torch.cat([up, feat1], dim=1))
        return out0, out1
