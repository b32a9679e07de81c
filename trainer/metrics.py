"""Detection metrics: VOC mAP@0.5 (all-point interpolation) and COCO mAP via pycocotools.

Inputs, for both functions:

* ``detections``: ``{image_id: array [n, 6] (x1, y1, x2, y2, score, cls)}`` (numpy or torch);
* ``ground_truth``: ``{image_id: (boxes [m, 4], labels [m], difficult [m] bool)}``.

Boxes are in pixels, continuous coordinates (area ``(x2 - x1) * (y2 - y1)``, no VOC ``+1``),
the same convention pycocotools uses, so the two functions agree on IoU. Images that appear
only in ``detections`` have no objects (their detections are false positives).

VOC matching (the devkit's rule): per class, detections in decreasing score; each takes the
ground truth box it overlaps most; IoU >= threshold on an unmatched box is a true positive, on
an already matched one a false positive (a duplicate), on a difficult one neither. AP is the
area under the precision envelope over all recall points (VOC2010+). Classes without any
non-difficult ground truth get AP ``nan`` and stay out of the mean.

COCO differs on purpose (that is what the reference is for): a detection takes the best
*unmatched* box, AP samples the envelope at 101 recall points, at most ``max_dets`` detections
per image count, and difficult objects become ``iscrowd`` regions (ignored when matched).
"""
from __future__ import annotations

import contextlib
import io
import logging
from typing import Any, Hashable, Mapping

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["box_iou", "average_precision", "voc_map", "coco_map"]


def _np(a: Any, dtype=np.float64) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=dtype)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``[len(a), len(b)]`` of ``x1, y1, x2, y2`` boxes."""
    a = _np(a).reshape(-1, 4)
    b = _np(b).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP: the area under the monotone precision envelope."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]  # envelope: best precision at any higher recall
    steps = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def _check_detections(image_id: Hashable, dets: np.ndarray) -> np.ndarray:
    dets = _np(dets)
    if dets.size == 0:
        return np.zeros((0, 6))
    if dets.ndim != 2 or dets.shape[1] != 6:
        raise ValueError(f"detections of image {image_id!r}: expected [n, 6] (x1, y1, x2, y2, score, cls), "
                         f"got shape {list(dets.shape)}")
    return dets


def _check_truth(image_id: Hashable, truth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        boxes, labels, difficult = truth
    except (TypeError, ValueError):
        raise ValueError(f"ground truth of image {image_id!r}: expected (boxes, labels, difficult)") from None
    boxes = _np(boxes).reshape(-1, 4)
    labels = _np(labels, np.int64).reshape(-1)
    difficult = _np(difficult, bool).reshape(-1)
    if not len(boxes) == len(labels) == len(difficult):
        raise ValueError(f"ground truth of image {image_id!r}: {len(boxes)} boxes, {len(labels)} labels, "
                         f"{len(difficult)} difficult flags")
    return boxes, labels, difficult


def voc_map(
    detections: Mapping[Hashable, Any],
    ground_truth: Mapping[Hashable, Any],
    num_classes: int,
    iou_thresh: float = 0.5,
) -> tuple[float, np.ndarray]:
    """VOC mAP at ``iou_thresh``: ``(mean over classes with objects, AP per class [C], nan if none)``."""
    truth = {k: _check_truth(k, v) for k, v in ground_truth.items()}
    dets = {k: _check_detections(k, v) for k, v in detections.items()}
    ap = np.full(num_classes, np.nan)
    for c in range(num_classes):
        gt_c = {}
        n_pos = 0
        for k, (boxes, labels, difficult) in truth.items():
            sel = labels == c
            if sel.any():
                gt_c[k] = (boxes[sel], difficult[sel], np.zeros(int(sel.sum()), dtype=bool))
                n_pos += int((~difficult[sel]).sum())
        rows = [(k, d[d[:, 5] == c]) for k, d in dets.items()]
        rows = [(k, d) for k, d in rows if len(d)]
        if n_pos == 0:
            continue
        if not rows:
            ap[c] = 0.0
            continue
        image_of = np.concatenate([np.full(len(d), i) for i, (_, d) in enumerate(rows)])
        all_d = np.concatenate([d for _, d in rows])
        order = np.argsort(-all_d[:, 4], kind="stable")
        # IoU of every detection with the boxes of its own image, computed once per image.
        best_iou = np.zeros(len(all_d))
        best_gt = np.full(len(all_d), -1)
        for i, (k, d) in enumerate(rows):
            if k not in gt_c:
                continue
            iou = box_iou(d[:, :4], gt_c[k][0])
            idx = np.nonzero(image_of == i)[0]
            best_gt[idx] = iou.argmax(1)
            best_iou[idx] = iou.max(1)
        tp = np.zeros(len(all_d))
        fp = np.zeros(len(all_d))
        for rank, j in enumerate(order):
            k = rows[image_of[j]][0]
            if best_gt[j] < 0 or best_iou[j] < iou_thresh:
                fp[rank] = 1
                continue
            _, difficult, used = gt_c[k]
            g = best_gt[j]
            if difficult[g]:
                continue  # neither true nor false positive
            if used[g]:
                fp[rank] = 1
            else:
                used[g] = True
                tp[rank] = 1
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        recall = tp / n_pos
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        ap[c] = average_precision(recall, precision)
    valid = ~np.isnan(ap)
    mean = float(ap[valid].mean()) if valid.any() else 0.0
    return mean, ap


def coco_map(
    detections: Mapping[Hashable, Any],
    ground_truth: Mapping[Hashable, Any],
    num_classes: int,
    max_dets: int = 100,
) -> dict[str, float]:
    """COCO-style ``{"map50_95", "map50", "map75"}`` computed by pycocotools (the reference)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    keys = list(dict.fromkeys([*ground_truth.keys(), *detections.keys()]))
    ids = {k: i + 1 for i, k in enumerate(keys)}
    images, annotations, results = [], [], []
    for k in keys:
        images.append({"id": ids[k]})
        if k in ground_truth:
            boxes, labels, difficult = _check_truth(k, ground_truth[k])
            for box, label, hard in zip(boxes, labels, difficult):
                w, h = float(box[2] - box[0]), float(box[3] - box[1])
                annotations.append({
                    "id": len(annotations) + 1, "image_id": ids[k], "category_id": int(label) + 1,
                    "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h, "iscrowd": int(hard),
                })
        if k in detections:
            for x1, y1, x2, y2, score, cls in _check_detections(k, detections[k]):
                results.append({"image_id": ids[k], "category_id": int(cls) + 1,
                                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "score": float(score)})
    zero = {"map50_95": 0.0, "map50": 0.0, "map75": 0.0}
    if not results or not annotations:
        return zero
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations,
                      "categories": [{"id": c + 1, "name": str(c)} for c in range(num_classes)]}
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.maxDets = [1, 10, max_dets]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][:, :, :, 0, -1]  # [iou, recall, class], area "all", max_dets

    def _mean(p: np.ndarray) -> float:
        p = p[p > -1]
        return float(p.mean()) if p.size else 0.0

    thresholds = ev.params.iouThrs
    return {
        "map50_95": _mean(precision),
        "map50": _mean(precision[np.isclose(thresholds, 0.5)]),
        "map75": _mean(precision[np.isclose(thresholds, 0.75)]),
    }
