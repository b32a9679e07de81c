"""mAP: a hand-computed case, a naive re-computation and pycocotools as the reference.

Why a tolerance against pycocotools: its AP samples the precision envelope at 101 recall
points while VOC integrates it over all recall points. For a non-increasing envelope p on
[0, 1] the two differ by at most 0.01 per class (the 101-point sum brackets the integral
between its left and right Riemann sums), so their means differ by at most 0.01. The two also
match boxes differently when one detection overlaps several ground truths (VOC: the most
overlapping box, even if taken; COCO: the best free one), so the random cases keep ground
truth boxes apart; on those our all-point AP must equal a naive re-computation exactly.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainer.metrics import average_precision, box_iou, coco_map, voc_map


def _hand_case():
    gt = {
        "a": (np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], float),
              np.array([0, 0, 0]), np.array([False, False, True])),
        "b": (np.array([[0, 0, 10, 10], [60, 60, 80, 80]], float), np.array([0, 2]), np.array([False, False])),
    }
    dets = {
        "a": np.array([
            [0, 0, 10, 10, 0.9, 0],      # TP (a, box 0)
            [1, 0, 10, 10, 0.8, 0],      # duplicate of box 0: FP
            [40, 40, 50, 50, 0.6, 0],    # on the difficult box: ignored
            [20, 20, 30, 31, 0.5, 0],    # TP (a, box 1)
            [100, 100, 110, 110, 0.4, 0],  # nothing there: FP
            [0, 0, 10, 10, 0.95, 1],     # class 1 has no ground truth at all
        ]),
        "b": np.array([[0, 0, 5, 10, 0.7, 0]]),  # IoU 0.5 exactly with (b, box 0): TP at threshold 0.5
        "c": np.array([[0, 0, 10, 10, 0.3, 0]]),  # an image without objects: FP
    }
    return dets, gt


def test_hand_computed_case():
    dets, gt = _hand_case()
    # Class 0, by score: TP .9, FP .8, TP .7, (ignored .6), TP .5, FP .4, FP .3; 3 positives.
    # recall 1/3 1/3 2/3 1 1 1, precision 1 1/2 2/3 3/4 3/5 1/2; envelope 1 (to 1/3), 3/4 (to 1).
    expected0 = 1 / 3 * 1 + 2 / 3 * 3 / 4
    m, ap = voc_map(dets, gt, num_classes=3)
    assert ap[0] == pytest.approx(expected0, abs=1e-12)
    assert math.isnan(ap[1])  # no ground truth: out of the mean
    assert ap[2] == 0.0  # objects but no detections
    assert m == pytest.approx((expected0 + 0.0) / 2, abs=1e-12)
    # A stricter threshold turns the half-overlap into a false positive.
    _, strict = voc_map(dets, gt, num_classes=3, iou_thresh=0.6)
    assert strict[0] < ap[0]
    # Torch tensors are accepted as well.
    m_t, _ = voc_map({k: torch.as_tensor(v) for k, v in dets.items()}, gt, 3)
    assert m_t == m


def test_perfect_and_empty():
    gt = {0: (np.array([[0, 0, 4, 4]]), np.array([1]), np.array([False]))}
    m, ap = voc_map({0: np.array([[0, 0, 4, 4, 0.5, 1]])}, gt, 2)
    assert m == 1.0 and ap[1] == 1.0 and math.isnan(ap[0])
    assert voc_map({}, gt, 2)[0] == 0.0
    assert voc_map({}, {}, 2)[0] == 0.0
    assert coco_map({}, gt, 2) == {"map50_95": 0.0, "map50": 0.0, "map75": 0.0}
    assert coco_map({0: np.array([[0, 0, 4, 4, 0.5, 1]])}, gt, 2)["map50_95"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"expected \[n, 6\]"):
        voc_map({0: np.zeros((2, 5))}, gt, 2)


def test_box_iou_and_average_precision():
    iou = box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3], [5, 5, 6, 6], [0, 0, 2, 2]]))
    np.testing.assert_allclose(iou, [[1 / 7, 0, 1]])
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 0.5])) == pytest.approx(0.75)


def _naive_voc_ap(dets, gt, cls, thr):
    """Straightforward per-class VOC AP with Python loops (the reference re-computation)."""
    records = []
    for k, d in dets.items():
        for row in d:
            if int(row[5]) == cls:
                records.append((float(row[4]), k, row[:4]))
    records.sort(key=lambda r: -r[0])
    used = {k: [False] * len(v[0]) for k, v in gt.items()}
    n_pos = sum(int(((v[1] == cls) & ~v[2]).sum()) for v in gt.values())
    if n_pos == 0:
        return float("nan")
    tps, fps = [], []
    for _, k, box in records:
        best, best_j = -1.0, -1
        boxes, labels, difficult = gt.get(k, (np.zeros((0, 4)), np.zeros(0), np.zeros(0, bool)))
        for j in range(len(boxes)):
            if labels[j] != cls:
                continue
            ix = max(0.0, min(box[2], boxes[j][2]) - max(box[0], boxes[j][0]))
            iy = max(0.0, min(box[3], boxes[j][3]) - max(box[1], boxes[j][1]))
            inter = ix * iy
            union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[j][2] - boxes[j][0]) * (boxes[j][3] - boxes[j][1]) - inter
            if inter / union > best:
                best, best_j = inter / union, j
        if best >= thr and difficult[best_j]:
            continue
        if best >= thr and not used[k][best_j]:
            used[k][best_j] = True
            tps.append(1), fps.append(0)
        else:
            tps.append(0), fps.append(1)
    ap, tp, fp, points = 0.0, 0, 0, []
    for t, f in zip(tps, fps):
        tp += t
        fp += f
        points.append((tp / n_pos, tp / (tp + fp)))
    # Area under the envelope: for each distinct recall level, the best precision at or beyond it.
    previous = 0.0
    for i, (r, _) in enumerate(points):
        if r > previous:
            ap += (r - previous) * max(p for rr, p in points[i:])
            previous = r
    return ap


def _random_case(seed, num_classes=4, images=12):
    rng = np.random.default_rng(seed)
    gt, dets = {}, {}
    for k in range(images):
        cells = rng.choice(16, size=rng.integers(0, 7), replace=False)
        boxes = []
        for cell in cells:  # one box per 100 px cell, at most 80 px: ground truths never touch
            x0, y0 = (cell % 4) * 100, (cell // 4) * 100
            w, h = rng.uniform(20, 80, 2)
            x1, y1 = x0 + rng.uniform(0, 80 - w), y0 + rng.uniform(0, 80 - h)
            boxes.append([x1, y1, x1 + w, y1 + h])
        boxes = np.array(boxes, float).reshape(-1, 4)
        labels = rng.integers(0, num_classes, len(boxes))
        gt[k] = (boxes, labels, np.zeros(len(boxes), bool))
        rows = []
        for box, label in zip(boxes, labels):
            for _ in range(rng.integers(0, 3)):  # misses, hits and duplicates
                wiggle = rng.normal(0, 0.12, 4) * (box[2] - box[0])
                b = np.clip(box + wiggle, [box[0] - 9, box[1] - 9, box[0] + 1, box[1] + 1], [box[2] - 1, box[3] - 1, box[2] + 9, box[3] + 9])
                cls = label if rng.random() < 0.85 else rng.integers(0, num_classes)
                rows.append([*b, rng.random(), cls])
        for _ in range(rng.integers(0, 4)):  # background false positives inside the gaps
            x0, y0 = rng.integers(0, 4, 2) * 100 + 82
            rows.append([x0, y0, x0 + 15, y0 + 15, rng.random(), rng.integers(0, num_classes)])
        if rows:
            dets[k] = np.array(rows, float)
    return dets, gt


@pytest.mark.parametrize("seed", range(8))
def test_random_detections_match_naive_and_pycocotools(seed):
    dets, gt = _random_case(seed)
    m, ap = voc_map(dets, gt, 4)
    naive = np.array([_naive_voc_ap(dets, gt, c, 0.5) for c in range(4)])
    np.testing.assert_allclose(ap, naive, atol=1e-12, equal_nan=True)
    coco = coco_map(dets, gt, 4)
    assert abs(coco["map50"] - m) <= 0.01 + 1e-9, (coco, m)
    m75, _ = voc_map(dets, gt, 4, iou_thresh=0.75)
    assert abs(coco["map75"] - m75) <= 0.01 + 1e-9
    assert 0.0 <= coco["map50_95"] <= coco["map50"]


def test_difficult_objects_are_ignored_by_both():
    gt = {0: (np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float), np.array([0, 0]), np.array([False, True]))}
    only_easy = {0: np.array([[0, 0, 10, 10, 0.9, 0]])}
    with_hard = {0: np.array([[0, 0, 10, 10, 0.9, 0], [50, 50, 60, 60, 0.95, 0]])}
    assert voc_map(only_easy, gt, 1)[0] == 1.0
    assert voc_map(with_hard, gt, 1)[0] == 1.0
    assert coco_map(with_hard, gt, 1)["map50"] == pytest.approx(1.0)
