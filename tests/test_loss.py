"""YoloLoss: assignment, empty images, gradients, smoothing, focal, and a loop reference."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from trainer.loss import YoloLoss, bbox_ciou
from trainer.model import DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK, YoloV4Tiny


def _outputs(batch=2, size=416, classes=20, seed=0, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    c = 3 * (5 + classes)
    return (
        (torch.randn(batch, c, size // 32, size // 32, generator=g) * scale).requires_grad_(),
        (torch.randn(batch, c, size // 16, size // 16, generator=g) * scale).requires_grad_(),
    )


def test_image_without_boxes_gives_finite_loss_and_zero_box_loss():
    loss_fn = YoloLoss(num_classes=20)
    outputs = _outputs()
    total, parts = loss_fn(outputs, torch.zeros(0, 6))
    assert torch.isfinite(total)
    assert parts["box"].item() == 0.0 and parts["cls"].item() == 0.0
    assert parts["obj"].item() > 0
    total.backward()
    assert all(torch.isfinite(o.grad).all() for o in outputs)


def test_gradients_flow_through_the_model_on_a_tiny_input():
    torch.manual_seed(0)
    # The width of the suite's runs (tiny_config), not 1.0: the loss and the decode are what is
    # checked, not the model's capacity; a quarter of the channels overfits as well (seeds 0-4:
    # IoU 0.81-0.94, loss to 9-13 %; width 1.0 missed IoU 0.5 with two of them) in a sixth of
    # the CPU time (0.8 s, not 4.5 s).
    model = YoloV4Tiny(num_classes=2, input_size=64, width=0.25)
    loss_fn = YoloLoss(num_classes=2, input_size=64)
    targets = torch.tensor([[0, 1, 0.5, 0.5, 0.4, 0.5], [1, 0, 0.2, 0.3, 0.1, 0.1]])
    total, parts = loss_fn(model(torch.rand(2, 3, 64, 64)), targets)
    total.backward()
    assert parts["box"] > 0 and parts["cls"] > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.backbone.conv1.conv.weight.grad.abs().sum() > 0


def test_known_box_gets_expected_cell_and_anchor():
    loss_fn = YoloLoss(num_classes=20)
    # 81x82 px at 416 is exactly anchor 3, which both heads list (P5 slot 0, P4 slot 2).
    t = torch.tensor([[1, 7, 200.0 / 416, 100.0 / 416, 81 / 416, 82 / 416]])
    best = loss_fn.match_anchors(t, (416, 416))
    assert best.tolist() == [3]
    idx, k, gi, gj = loss_fn.assign(t, best, 0, 2, (13, 13))
    assert (idx.tolist(), k.tolist(), gi.tolist(), gj.tolist()) == ([0], [0], [6], [3])
    idx, k, gi, gj = loss_fn.assign(t, best, 1, 2, (26, 26))
    assert (idx.tolist(), k.tolist(), gi.tolist(), gj.tolist()) == ([0], [2], [12], [6])
    # A large box goes to anchor 5 (P5 slot 2) and nowhere on P4.
    big = torch.tensor([[0, 0, 0.5, 0.5, 340 / 416, 320 / 416]])
    best = loss_fn.match_anchors(big, (416, 416))
    assert best.tolist() == [5]
    assert loss_fn.assign(big, best, 0, 1, (13, 13))[1].tolist() == [2]
    assert loss_fn.assign(big, best, 1, 1, (26, 26))[0].numel() == 0


def test_box_best_matched_by_unused_anchor_falls_back_to_next_best():
    loss_fn = YoloLoss(num_classes=20)
    tiny = torch.tensor([[0, 0, 0.5, 0.5, 10 / 416, 14 / 416]])   # anchor 0 is in no mask
    best = loss_fn.match_anchors(tiny, (416, 416))
    assert best.tolist() == [1]
    idx, k, gi, gj = loss_fn.assign(tiny, best, 1, 1, (26, 26))
    assert (k.tolist(), gi.tolist(), gj.tolist()) == ([0], [13], [13])


def test_two_boxes_on_one_cell_and_anchor_keep_the_later_one():
    loss_fn = YoloLoss(num_classes=20)
    t = torch.tensor([[0, 1, 0.50, 0.50, 0.2, 0.2], [0, 2, 0.51, 0.51, 0.2, 0.2],
                      [1, 3, 0.50, 0.50, 0.2, 0.2]])
    best = loss_fn.match_anchors(t, (416, 416))
    idx, *_ = loss_fn.assign(t, best, 0, 2, (13, 13))
    assert sorted(idx.tolist()) == [1, 2]


def test_label_smoothing_really_changes_the_class_loss():
    t = torch.tensor([[0, 3, 0.5, 0.5, 0.2, 0.3]])
    outputs = _outputs(classes=5)
    plain = YoloLoss(num_classes=5)(outputs, t)[1]["cls"]
    smooth = YoloLoss(num_classes=5, label_smoothing=0.1)(outputs, t)[1]["cls"]
    assert not torch.isclose(plain, smooth)
    # With logits equal to the smoothed targets' logits, the class BCE is at its minimum.
    eps = 0.1
    pos, neg = 1 - eps + eps / 5, eps / 5
    logits = torch.full((5,), math.log(neg / (1 - neg)))
    logits[3] = math.log(pos / (1 - pos))
    target = torch.full((5,), neg)
    target[3] = pos
    best = F.binary_cross_entropy_with_logits(logits, target)
    assert best < F.binary_cross_entropy_with_logits(logits + 0.3, target)


def test_focal_loss_option_changes_objectness_only():
    t = torch.tensor([[0, 1, 0.5, 0.5, 0.2, 0.3]])
    outputs = _outputs(classes=5)
    a = YoloLoss(num_classes=5)(outputs, t)[1]
    b = YoloLoss(num_classes=5, focal_loss=True)(outputs, t)[1]
    assert torch.equal(a["box"], b["box"]) and torch.equal(a["cls"], b["cls"])
    assert not torch.isclose(a["obj"], b["obj"])


def test_parts_sum_to_total_and_batch_size_does_not_scale_it():
    loss_fn = YoloLoss(num_classes=20)
    t = torch.tensor([[0, 1, 0.3, 0.4, 0.2, 0.3]])
    o1 = tuple(o[:1].detach() for o in _outputs(batch=1))
    total1, parts = loss_fn(o1, t)
    assert torch.isclose(total1, sum(parts.values()))
    o2 = tuple(torch.cat([o, o]) for o in o1)
    t2 = torch.cat([t, t.clone().index_fill_(1, torch.tensor([0]), 1)])
    total2, _ = loss_fn(o2, t2)
    assert torch.isclose(total1, total2, rtol=1e-5)


def test_ignore_threshold_removes_overlapping_predictions_from_no_object_loss():
    t = torch.tensor([[0, 0, 0.5, 0.5, 0.3, 0.3]])
    outputs = tuple(o.detach() for o in _outputs(batch=1, seed=5))
    strict = YoloLoss(num_classes=20, ignore_thresh=1.01)(outputs, t)[1]["obj"]
    loose = YoloLoss(num_classes=20, ignore_thresh=0.01)(outputs, t)[1]["obj"]
    assert not torch.isclose(strict, loose)


def _ciou_loop_reference(outputs, targets, loss_fn):
    """The port's algorithm written with plain loops (the slow way), for comparison."""
    total = 0.0
    anchors = torch.tensor(DEFAULT_ANCHORS, dtype=torch.float32)
    for l, out in enumerate(outputs):
        bsz, _, h, w = out.shape
        stride = 416 / h
        mask = DEFAULT_ANCHORS_MASK[l]
        p = out.view(bsz, 3, 25, h, w).permute(0, 1, 3, 4, 2)
        obj_t = torch.zeros(bsz, 3, h, w)
        noobj = torch.ones(bsz, 3, h, w)
        y = torch.zeros(bsz, 3, h, w, 4)
        ycls = torch.zeros(bsz, 3, h, w, 20)
        for row in targets:
            b, c, cx, cy, bw, bh = row.tolist()
            ious = []
            for a in anchors:
                inter = min(bw * 416, a[0]) * min(bh * 416, a[1])
                ious.append(inter / (bw * bh * 416 * 416 + a[0] * a[1] - inter))
            order = sorted(range(6), key=lambda i: -ious[i])
            n = next(i for i in order if any(i in m for m in DEFAULT_ANCHORS_MASK))
            if n not in mask:
                continue
            k = mask.index(n)
            i, j = int(cx * w), int(cy * h)
            obj_t[int(b), k, j, i] = 1
            noobj[int(b), k, j, i] = 0
            y[int(b), k, j, i] = torch.tensor([cx * w, cy * h, bw * w, bh * h])
            ycls[int(b), k, j, i] = 0
            ycls[int(b), k, j, i, int(c)] = 1
        gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        aw = (anchors[mask, 0] / stride).view(1, 3, 1, 1)
        ah = (anchors[mask, 1] / stride).view(1, 3, 1, 1)
        pb = torch.stack([torch.sigmoid(p[..., 0]) + gx, torch.sigmoid(p[..., 1]) + gy,
                          torch.exp(p[..., 2]) * aw, torch.exp(p[..., 3]) * ah], -1)
        for b in range(bsz):
            gts = targets[targets[:, 0] == b][:, 2:6] * torch.tensor([w, h, w, h])
            for g in gts:
                iou = _iou_one(pb[b], g)
                noobj[b][iou > 0.5] = 0
        pos = obj_t.bool()
        if pos.any():
            ciou = bbox_ciou(pb[pos], y[pos])
            total += (1 - ciou).mean() * 0.05
            total += F.binary_cross_entropy_with_logits(p[..., 5:][pos], ycls[pos]) * (20 / 80)
        sel = pos | noobj.bool()
        total += F.binary_cross_entropy_with_logits(p[..., 4][sel], obj_t[sel]) * (0.4, 1.0)[l] * 5
    return total


def _iou_one(boxes, g):
    b1, b2 = boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2
    g1, g2 = g[:2] - g[2:] / 2, g[:2] + g[2:] / 2
    wh = (torch.min(b2, g2) - torch.max(b1, g1)).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (boxes[..., 2] * boxes[..., 3] + g[2] * g[3] - inter)


def test_vectorised_loss_equals_a_loop_implementation():
    g = torch.Generator().manual_seed(3)
    n = 12
    targets = torch.cat([
        torch.randint(0, 3, (n, 1), generator=g).float(),
        torch.randint(0, 20, (n, 1), generator=g).float(),
        torch.rand(n, 2, generator=g) * 0.8 + 0.1,
        torch.rand(n, 2, generator=g) * 0.6 + 0.02,
    ], 1)
    outputs = tuple(o.detach() for o in _outputs(batch=3, seed=4))
    ours, _ = YoloLoss(num_classes=20)(outputs, targets)
    ref = _ciou_loop_reference(outputs, targets, None)
    assert torch.isclose(ours, ref, rtol=1e-4), (ours, ref)


def test_bad_target_shape_is_refused():
    with pytest.raises(ValueError, match=r"\[N, 6\]"):
        YoloLoss(num_classes=20)(_outputs(), torch.zeros(3, 5))


def test_bf16_outputs_give_a_finite_fp32_loss():
    t = torch.tensor([[0, 1, 0.5, 0.5, 0.2, 0.3]])
    outputs = tuple(o.detach().bfloat16().requires_grad_() for o in _outputs())
    total, _ = YoloLoss(num_classes=20)(outputs, t)
    assert total.dtype == torch.float32 and torch.isfinite(total)
    total.backward()
    assert outputs[0].grad.dtype == torch.bfloat16


@pytest.mark.slow
def test_overfitting_one_image_finds_its_box_through_decode():
    from torchvision.ops import box_iou

    from trainer.model import decode, postprocess

    torch.manual_seed(0)
    # The width of the suite's runs (tiny_config), not 1.0: the loss and the decode are what is
    # checked, not the model's capacity; a quarter of the channels overfits as well (seeds 0-4:
    # IoU 0.81-0.94, loss to 9-13 %; width 1.0 missed IoU 0.5 with two of them) in a sixth of
    # the CPU time (0.8 s, not 4.5 s).
    model = YoloV4Tiny(num_classes=2, input_size=64, width=0.25)
    loss_fn = YoloLoss(num_classes=2, input_size=64)
    x = torch.rand(2, 3, 64, 64) * 0.2
    x[0, :, 16:48, 8:40] = 1.0          # a bright 32x32 square
    x[1, :, 24:56, 24:56] = 1.0
    targets = torch.tensor([[0, 1, 24 / 64, 32 / 64, 0.5, 0.5], [1, 1, 40 / 64, 40 / 64, 0.5, 0.5]])
    # 50 steps at 2e-3 (IoU 0.86 / 0.87, loss to 6 %) as 100 at 1e-3 did (0.78 / 0.79, 5 %),
    # in half the time.
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = None
    for _ in range(50):
        total, _ = loss_fn(model(x), targets)
        opt.zero_grad()
        total.backward()
        opt.step()
        first = first if first is not None else total.item()
    assert total.item() < first * 0.3
    model.eval()
    with torch.no_grad():
        dets = postprocess(decode(model(x), model.anchors, model.anchors_mask, 64), 0.3, 0.45)
    for d, box in zip(dets, ([8, 16, 40, 48], [24, 24, 56, 56])):
        assert d.shape[0] >= 1 and d[0, 5].item() == 1.0
        assert box_iou(d[:1, :4], torch.tensor([box], dtype=torch.float32)).item() > 0.5


@pytest.mark.parametrize("row", [[0, 20, 0.5, 0.5, 0.1, 0.1], [2, 0, 0.5, 0.5, 0.1, 0.1]])
def test_class_or_image_index_out_of_range_is_named(row):
    with pytest.raises(ValueError, match=r"outside this batch: needs image index < 2 and class < 20"):
        YoloLoss(num_classes=20)(_outputs(), torch.tensor([row]))
