"""YOLOv4-tiny training loss: CIoU box loss, objectness and class BCE, per-head balance.

Target assignment follows the port: each ground-truth box is matched to the anchor whose
shape (w, h, both centred) has the highest IoU with it, among all anchors; a head owns the
box when that anchor is in its mask (an anchor listed in both masks, like anchor 3 of
yolov4-tiny, makes the box positive in both heads). The positive cell is the one containing
the box centre. When the overall best anchor is in no mask (anchor 0 of yolov4-tiny), the
next best anchor that is in a mask takes the box, so no box is silently dropped. When two
boxes land on the same cell and anchor, the later one in ``targets`` wins, as in the port's
loop. Predictions whose decoded box overlaps any ground truth of the image with IoU above
``ignore_thresh`` are left out of the no-object loss.

Everything is vectorised on the outputs' device; there is no Python loop over boxes.

Normalisation (as the port): per head, the box loss is the mean of ``1 - CIoU`` over the
positives, the class loss the mean BCE over positives x classes, and the objectness loss
the mean BCE over positives plus non-ignored cells of the whole batch. The total is
``sum_l box_ratio*box_l + cls_ratio*cls_l + balance_l*obj_ratio*obj_l``, so it does not
grow with the batch size. Defaults follow the port: ``box_ratio=0.05``,
``obj_ratio=5*S^2/416^2``, ``cls_ratio=C/80``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from trainer.model.yolo import DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK

#: Strides of the two heads, in the order the model returns them.
HEAD_STRIDES = (32, 16)


def bbox_ciou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Complete IoU of boxes ``[..., 4]`` given as (cx, cy, w, h); returns ``[...]``."""
    p1, p2 = pred[..., :2] - pred[..., 2:4] / 2, pred[..., :2] + pred[..., 2:4] / 2
    t1, t2 = target[..., :2] - target[..., 2:4] / 2, target[..., :2] + target[..., 2:4] / 2
    wh = (torch.min(p2, t2) - torch.max(p1, t1)).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    pw, ph = pred[..., 2], pred[..., 3]
    tw, th = target[..., 2], target[..., 3]
    union = pw * ph + tw * th - inter + eps
    iou = inter / union
    enclose = torch.max(p2, t2) - torch.min(p1, t1)
    diag2 = (enclose ** 2).sum(-1) + eps
    centre2 = ((pred[..., :2] - target[..., :2]) ** 2).sum(-1)
    v = (4 / math.pi ** 2) * (torch.atan(tw / (th + eps)) - torch.atan(pw / (ph + eps))) ** 2
    with torch.no_grad():
        # alpha is a trade-off weight, not something to optimise (CIoU paper).
        alpha = v / (1 - iou + v + eps)
    return iou - centre2 / diag2 - alpha * v


def _box_iou_cxcywh(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU: ``a [B, P, 4]`` x ``b [B, M, 4]`` -> ``[B, P, M]``."""
    a1, a2 = a[..., :2] - a[..., 2:] / 2, a[..., :2] + a[..., 2:] / 2
    b1, b2 = b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2
    lt = torch.max(a1[:, :, None], b1[:, None])
    rb = torch.min(a2[:, :, None], b2[:, None])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[..., 2] * a[..., 3])[:, :, None]
    area_b = (b[..., 2] * b[..., 3])[:, None]
    return inter / (area_a + area_b - inter + 1e-9)


class YoloLoss(nn.Module):
    """The YOLOv4-tiny loss; ``loss(outputs, targets) -> (total, {"box", "obj", "cls"})``.

    ``outputs`` is the model's ``(p5, p4)``; ``targets`` a float tensor ``[N, 6]`` of
    ``(image_index, class, cx, cy, w, h)`` normalised to ``[0, 1]`` of the network input.
    The input size is read from the output maps (stride 32 and 16), so multi-scale batches
    work. The returned parts are the weighted, detached contributions (they sum to the total).
    """

    def __init__(
        self,
        num_classes: int,
        anchors: Sequence[Sequence[float]] = DEFAULT_ANCHORS,
        anchors_mask: Sequence[Sequence[int]] = DEFAULT_ANCHORS_MASK,
        input_size: int = 416,
        label_smoothing: float = 0.0,
        focal_loss: bool = False,
        ignore_thresh: float = 0.5,
        balance: Sequence[float] = (0.4, 1.0),
        box_ratio: float = 0.05,
        obj_ratio: float | None = None,
        cls_ratio: float | None = None,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        focal_ratio: float = 10.0,
    ):
        super().__init__()
        if len(balance) != len(anchors_mask):
            raise ValueError(f"balance needs one weight per head ({len(anchors_mask)}), got {balance!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.num_classes = num_classes
        self.anchors_mask = [list(m) for m in anchors_mask]
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32), persistent=False)
        # Anchors that no head uses can never own a box: they are excluded from the match.
        used = torch.zeros(len(anchors), dtype=torch.bool)
        used[[i for m in anchors_mask for i in m]] = True
        self.register_buffer("used_anchors", used, persistent=False)
        self.label_smoothing = label_smoothing
        self.focal_loss = focal_loss
        self.ignore_thresh = ignore_thresh
        self.balance = list(balance)
        self.box_ratio = box_ratio
        self.obj_ratio = 5.0 * input_size ** 2 / 416 ** 2 if obj_ratio is None else obj_ratio
        self.cls_ratio = num_classes / 80 if cls_ratio is None else cls_ratio
        self.focal_alpha, self.focal_gamma, self.focal_ratio = focal_alpha, focal_gamma, focal_ratio

    def match_anchors(self, targets: torch.Tensor, input_hw: tuple[int, int]) -> torch.Tensor:
        """Index of the anchor each target box is assigned to (``[N]``, long)."""
        wh = targets[:, 4:6] * targets.new_tensor([input_hw[1], input_hw[0]])
        anchors = self.anchors.to(wh)
        inter = torch.min(wh[:, None], anchors[None]).prod(-1)
        iou = inter / (wh.prod(-1)[:, None] + anchors.prod(-1)[None] - inter + 1e-9)
        iou = iou.masked_fill(~self.used_anchors.to(wh.device)[None], -1.0)
        return iou.argmax(dim=1)

    def assign(
        self, targets: torch.Tensor, best: torch.Tensor, head: int, batch: int, grid_hw: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Positives of one head: ``(target index, anchor slot in the mask, gx, gy)``, one per
        (image, anchor slot, cell), the later target winning a shared cell."""
        h, w = grid_hw
        device = targets.device
        n_a = len(self.anchors_mask[head])
        mask_t = torch.as_tensor(self.anchors_mask[head], device=device)
        t_idx, k = (best[:, None] == mask_t[None]).nonzero(as_tuple=True)
        gi = (targets[t_idx, 2] * w).long().clamp(0, w - 1)
        gj = (targets[t_idx, 3] * h).long().clamp(0, h - 1)
        cell = ((targets[t_idx, 0].long() * n_a + k) * h + gj) * w + gi
        owner = torch.full((batch * n_a * h * w,), -1, dtype=torch.long, device=device)
        owner.scatter_reduce_(0, cell, t_idx, reduce="amax")
        keep = owner[cell] == t_idx
        return t_idx[keep], k[keep], gi[keep], gj[keep]

    def forward(
        self, outputs: Sequence[torch.Tensor], targets: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if targets.ndim != 2 or targets.shape[1] != 6:
            raise ValueError(f"expected targets of shape [N, 6], got {tuple(targets.shape)}")
        device = outputs[0].device
        batch = outputs[0].shape[0]
        input_hw = (outputs[0].shape[2] * HEAD_STRIDES[0], outputs[0].shape[3] * HEAD_STRIDES[0])
        targets = targets.to(device=device, dtype=torch.float32)
        img = targets[:, 0].long()
        cls = targets[:, 1].long()
        if targets.shape[0]:
            bad = (cls < 0) | (cls >= self.num_classes) | (img < 0) | (img >= batch)
            if bool(bad.any()):
                row = targets[bad][0].tolist()
                raise ValueError(
                    f"target {row} is outside this batch: needs image index < {batch} and "
                    f"class < {self.num_classes}; check the classes file against the annotations"
                )
        best = self.match_anchors(targets, input_hw)
        gt_pad, gt_valid = self._pad_per_image(targets, img, batch)

        zero = torch.zeros((), device=device)
        box_total, obj_total, cls_total = zero, zero, zero
        for l, out in enumerate(outputs):
            mask = self.anchors_mask[l]
            n_a = len(mask)
            _, ch, h, w = out.shape
            if ch != n_a * (5 + self.num_classes):
                raise ValueError(
                    f"head {l}: expected {n_a * (5 + self.num_classes)} channels for "
                    f"{self.num_classes} classes, got {ch}"
                )
            # fp32 for the loss even under autocast: BCE and exp overflow in bf16/fp16.
            pred = out.float().view(batch, n_a, 5 + self.num_classes, h, w).permute(0, 1, 3, 4, 2)
            stride_h, stride_w = input_hw[0] / h, input_hw[1] / w
            # .to(): works even when the caller never moved the loss module to the GPU.
            anchors = self.anchors.to(device)[mask] / torch.tensor([stride_w, stride_h], device=device)
            grid_scale = targets.new_tensor([w, h, w, h])

            t_idx, k, gi, gj = self.assign(targets, best, l, batch, (h, w))
            gt = targets[t_idx, 2:6] * grid_scale
            b = img[t_idx]
            cell = ((b * n_a + k) * h + gj) * w + gi
            obj_target = torch.zeros(batch * n_a * h * w, device=device)
            obj_target[cell] = 1.0
            obj_target = obj_target.view(batch, n_a, h, w)

            # --- ignore: predictions already overlapping a ground truth are not "no object"
            with torch.no_grad():
                pboxes = self._decode_grid(pred[..., :4].detach(), anchors)
                if gt_pad.shape[1]:
                    iou = _box_iou_cxcywh(pboxes.view(batch, -1, 4), gt_pad * grid_scale)
                    iou = iou.masked_fill(~gt_valid[:, None], 0.0)
                    ignore = (iou.amax(-1) > self.ignore_thresh).view(batch, n_a, h, w)
                else:
                    ignore = torch.zeros(batch, n_a, h, w, dtype=torch.bool, device=device)
                obj_sel = (obj_target > 0) | ~ignore

            # --- objectness
            logits = pred[..., 4]
            bce = F.binary_cross_entropy_with_logits(logits, obj_target, reduction="none")
            if self.focal_loss:
                p = torch.sigmoid(logits)
                alpha = torch.where(obj_target > 0, self.focal_alpha, 1 - self.focal_alpha)
                bce = bce * alpha * (obj_target - p).abs() ** self.focal_gamma * self.focal_ratio
            obj_l = bce[obj_sel].mean() if bool(obj_sel.any()) else logits.sum() * 0
            obj_total = obj_total + obj_l * self.balance[l] * self.obj_ratio

            if t_idx.numel():
                p_pos = pred[b, k, gj, gi]                       # [n, 5+C]
                xy = torch.sigmoid(p_pos[:, :2]) + torch.stack([gi, gj], 1).to(p_pos)
                wh_ = torch.exp(p_pos[:, 2:4]) * anchors[k]
                ciou = bbox_ciou(torch.cat([xy, wh_], 1), gt)
                box_total = box_total + (1 - ciou).mean() * self.box_ratio
                onehot = F.one_hot(cls[t_idx], self.num_classes).float()
                if self.label_smoothing:
                    onehot = onehot * (1 - self.label_smoothing) + self.label_smoothing / self.num_classes
                cls_l = F.binary_cross_entropy_with_logits(p_pos[:, 5:], onehot)
                cls_total = cls_total + cls_l * self.cls_ratio

        total = box_total + obj_total + cls_total
        return total, {"box": box_total.detach(), "obj": obj_total.detach(), "cls": cls_total.detach()}

    @staticmethod
    def _decode_grid(txywh: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        """``[B, A, H, W, 4]`` raw -> (cx, cy, w, h) in grid units."""
        _, _, h, w, _ = txywh.shape
        gy, gx = torch.meshgrid(
            torch.arange(h, device=txywh.device, dtype=txywh.dtype),
            torch.arange(w, device=txywh.device, dtype=txywh.dtype),
            indexing="ij",
        )
        xy = torch.sigmoid(txywh[..., :2]) + torch.stack([gx, gy], -1)
        wh = torch.exp(txywh[..., 2:4]) * anchors.view(1, -1, 1, 1, 2)
        return torch.cat([xy, wh], -1)

    @staticmethod
    def _pad_per_image(targets: torch.Tensor, img: torch.Tensor, batch: int):
        """Boxes ``[B, M, 4]`` (normalised cx, cy, w, h) padded per image, and a validity mask."""
        n = targets.shape[0]
        if n == 0:
            return targets.new_zeros(batch, 0, 4), torch.zeros(batch, 0, dtype=torch.bool, device=targets.device)
        order = torch.argsort(img, stable=True)
        img_sorted = img[order]
        counts = torch.bincount(img, minlength=batch)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(n, device=targets.device) - starts[img_sorted]
        m = int(counts.max())
        boxes = targets.new_zeros(batch, m, 4)
        valid = torch.zeros(batch, m, dtype=torch.bool, device=targets.device)
        boxes[img_sorted, rank] = targets[order, 2:6]
        valid[img_sorted, rank] = True
        return boxes, valid
