"""Turn raw head maps into boxes, then batched NMS, on the outputs' device.

``decode`` gives ``[B, N, 5+C]`` = (cx, cy, w, h in input pixels, objectness, class
probabilities) for every anchor of every cell, head 0 (stride 32) first. It uses only
tensor ops, so it is traced into the ONNX export as is. ``postprocess`` thresholds, runs one
``torchvision.ops.batched_nms`` over the whole batch (boxes of different images or classes
never suppress each other) and maps boxes back to the original images.
"""
from __future__ import annotations

from typing import Sequence

import torch

# torchvision (for ``batched_nms``) is imported by ``postprocess`` alone, when it first runs:
# the model, the loss, a training step and an ONNX export need none of it, and importing it
# costs 0.15 s in a trainer process (torch's optimizer imports torch._dynamo anyway) and 1.6 s
# in one that builds no optimizer (it imports torch._dynamo too).

#: At most this many candidates per image go into NMS (the highest scores), so a very low
#: confidence threshold cannot make NMS quadratic over every anchor.
MAX_NMS_CANDIDATES = 30_000


def decode(
    outputs: Sequence[torch.Tensor],
    anchors: Sequence[Sequence[float]],
    anchors_mask: Sequence[Sequence[int]],
    input_size: int | tuple[int, int] | None = None,
) -> torch.Tensor:
    """Decode the model's raw ``(p5, p4)`` into ``[B, N, 5+C]`` (boxes in input pixels).

    ``input_size`` is the network input (S or (H, W)); by default it is read from the first
    map (stride 32). Box: ``cx = (sigmoid(tx) + gx) * stride``, ``w = exp(tw) * anchor_w``.
    """
    if input_size is None:
        in_h, in_w = outputs[0].shape[2] * 32, outputs[0].shape[3] * 32
    elif isinstance(input_size, int):
        in_h = in_w = input_size
    else:
        in_h, in_w = input_size
    results = []
    for out, mask in zip(outputs, anchors_mask):
        b, ch, h, w = out.shape
        n_a = len(mask)
        attrs = ch // n_a
        p = out.float().view(b, n_a, attrs, h, w).permute(0, 1, 3, 4, 2)
        stride = torch.tensor([in_w / w, in_h / h], dtype=p.dtype, device=p.device)
        gy, gx = torch.meshgrid(
            torch.arange(h, device=p.device, dtype=p.dtype),
            torch.arange(w, device=p.device, dtype=p.dtype),
            indexing="ij",
        )
        grid = torch.stack([gx, gy], -1).view(1, 1, h, w, 2)
        anchor_wh = torch.tensor([anchors[i] for i in mask], dtype=p.dtype, device=p.device)
        xy = (torch.sigmoid(p[..., :2]) + grid) * stride
        wh = torch.exp(p[..., 2:4]) * anchor_wh.view(1, n_a, 1, 1, 2)
        rest = torch.sigmoid(p[..., 4:])
        results.append(torch.cat([xy, wh, rest], -1).reshape(b, n_a * h * w, attrs))
    return torch.cat(results, 1)


def postprocess(
    decoded: torch.Tensor,
    conf_thres: float = 0.5,
    nms_thres: float = 0.3,
    max_det: int = 300,
    image_sizes: Sequence[Sequence[int]] | torch.Tensor | None = None,
    input_size: int | None = None,
    letterbox: bool = True,
    transforms: Sequence[tuple[float, float, float]] | None = None,
) -> list[torch.Tensor]:
    """Threshold + class-aware batched NMS; one ``[n, 6]`` tensor per image.

    Rows are ``(x1, y1, x2, y2, score, class)`` with ``score = objectness * class prob``,
    sorted by score, at most ``max_det`` per image. Without ``image_sizes`` the boxes stay
    in network-input pixels. With ``image_sizes`` (``(h, w)`` per image) and ``input_size``
    they are mapped to the original image: undoing the letterbox (``scale = min(S/w, S/h)``,
    ``pad = (S - round(w*scale)) // 2``, as ``trainer.data.augment.letterbox`` pads), or a
    plain resize when ``letterbox=False``, then clipped.
    ``transforms`` gives ``(scale, pad_x, pad_y)`` per image explicitly instead (what a
    letterbox function returned, rounding included).
    """
    if decoded.ndim != 3 or decoded.shape[2] < 6:
        raise ValueError(f"expected decoded predictions [B, N, 5+C], got {tuple(decoded.shape)}")
    batch, n, _ = decoded.shape
    device = decoded.device
    boxes_cxcywh = decoded[..., :4]
    obj = decoded[..., 4]
    cls_conf, cls_pred = decoded[..., 5:].max(-1)
    scores = obj * cls_conf
    if n > MAX_NMS_CANDIDATES:
        top = scores.topk(MAX_NMS_CANDIDATES, dim=1).indices
        scores = scores.gather(1, top)
        cls_pred = cls_pred.gather(1, top)
        boxes_cxcywh = boxes_cxcywh.gather(1, top[..., None].expand(-1, -1, 4))
    img_idx, cand = (scores >= conf_thres).nonzero(as_tuple=True)
    sel_boxes = boxes_cxcywh[img_idx, cand]
    xyxy = torch.cat([sel_boxes[:, :2] - sel_boxes[:, 2:] / 2, sel_boxes[:, :2] + sel_boxes[:, 2:] / 2], 1)
    sel_scores = scores[img_idx, cand]
    sel_cls = cls_pred[img_idx, cand]
    num_classes = decoded.shape[2] - 5
    from torchvision.ops import batched_nms

    keep = batched_nms(xyxy, sel_scores, img_idx * num_classes + sel_cls, nms_thres)
    # keep is sorted by score; a stable sort by image keeps that order inside each image.
    keep = keep[torch.argsort(img_idx[keep], stable=True)]
    img_k = img_idx[keep]
    counts = torch.bincount(img_k, minlength=batch)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(keep.numel(), device=device) - starts[img_k]
    keep = keep[rank < max_det]
    img_k = img_idx[keep]
    dets = torch.cat([xyxy[keep], sel_scores[keep, None], sel_cls[keep, None].to(xyxy.dtype)], 1)

    if transforms is not None or image_sizes is not None:
        dets = _to_original(dets, img_k, batch, image_sizes, input_size, letterbox, transforms)
    counts = torch.bincount(img_k, minlength=batch).tolist()
    return list(torch.split(dets, counts))


def _to_original(dets, img_k, batch, image_sizes, input_size, letterbox, transforms):
    """Map ``dets`` boxes from input pixels to original image pixels, per image."""
    device, dtype = dets.device, dets.dtype
    if transforms is not None:
        t = torch.as_tensor(transforms, dtype=dtype, device=device).view(batch, 3)
        scale_x = scale_y = t[:, 0]
        pad_x, pad_y = t[:, 1], t[:, 2]
    else:
        if input_size is None:
            raise ValueError("postprocess: image_sizes needs input_size (the network input S)")
        sizes = torch.as_tensor(image_sizes, dtype=dtype, device=device).view(batch, 2)
        h, w = sizes[:, 0], sizes[:, 1]
        if letterbox:
            scale_x = scale_y = torch.minimum(input_size / w, input_size / h)
            # Same rounding as trainer.data.augment.letterbox: whole-pixel size and padding.
            new_w = torch.round(w * scale_x).clamp(1, input_size)
            new_h = torch.round(h * scale_y).clamp(1, input_size)
            pad_x = torch.div(input_size - new_w, 2, rounding_mode="floor")
            pad_y = torch.div(input_size - new_h, 2, rounding_mode="floor")
        else:
            scale_x, scale_y = input_size / w, input_size / h
            pad_x = pad_y = torch.zeros_like(w)
    out = dets.clone()
    sx, sy = scale_x[img_k], scale_y[img_k]
    out[:, 0] = (dets[:, 0] - pad_x[img_k]) / sx
    out[:, 2] = (dets[:, 2] - pad_x[img_k]) / sx
    out[:, 1] = (dets[:, 1] - pad_y[img_k]) / sy
    out[:, 3] = (dets[:, 3] - pad_y[img_k]) / sy
    if image_sizes is not None:
        sizes = torch.as_tensor(image_sizes, dtype=dtype, device=device).view(batch, 2)
        max_x, max_y = sizes[img_k, 1], sizes[img_k, 0]
        out[:, 0] = torch.minimum(out[:, 0].clamp(min=0), max_x)
        out[:, 2] = torch.minimum(out[:, 2].clamp(min=0), max_x)
        out[:, 1] = torch.minimum(out[:, 1].clamp(min=0), max_y)
        out[:, 3] = torch.minimum(out[:, 3].clamp(min=0), max_y)
    return out
