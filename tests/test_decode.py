"""decode + postprocess: box geometry, class-aware batched NMS, caps, letterbox undo."""
from __future__ import annotations

import math

import pytest
import torch

from trainer.model import DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK, decode, postprocess

C = 4


def _logit(p):
    return math.log(p / (1 - p))


def _empty_outputs(batch=1, size=416):
    # Everything very unlikely: objectness ~ 0.
    outs = []
    for s in (size // 32, size // 16):
        o = torch.zeros(batch, 3 * (5 + C), s, s)
        o.view(batch, 3, 5 + C, s, s)[:, :, 4] = -20
        outs.append(o)
    return outs


def _put(outputs, head, b, k, gx, gy, obj, cls, cls_p=0.9, txy=(0.0, 0.0), twh=(0.0, 0.0)):
    v = outputs[head].view(outputs[head].shape[0], 3, 5 + C, *outputs[head].shape[2:])
    v[b, k, 0, gy, gx], v[b, k, 1, gy, gx] = txy
    v[b, k, 2, gy, gx], v[b, k, 3, gy, gx] = twh
    v[b, k, 4, gy, gx] = _logit(obj)
    v[b, k, 5:, gy, gx] = -20
    v[b, k, 5 + cls, gy, gx] = _logit(cls_p)


def test_decode_geometry_and_layout():
    outs = _empty_outputs(batch=2)
    _put(outs, 0, 1, 1, gx=4, gy=7, obj=0.8, cls=2)
    dec = decode(outs, DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK, 416)
    assert dec.shape == (2, 3 * 13 * 13 + 3 * 26 * 26, 5 + C)
    idx = (1 * 13 + 7) * 13 + 4          # anchor slot 1 of head 0, row 7, column 4
    row = dec[1, idx]
    torch.testing.assert_close(row[:4], torch.tensor([4.5 * 32, 7.5 * 32, 135.0, 169.0]))
    assert row[4].item() == pytest.approx(0.8)
    assert row[5 + 2].item() == pytest.approx(0.9)
    # The size defaults to what the maps imply.
    torch.testing.assert_close(decode(outs, DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK), dec)


def test_nms_is_per_class_and_per_image_with_scores_and_cap():
    outs = _empty_outputs(batch=2)
    _put(outs, 1, 0, 0, gx=10, gy=10, obj=0.9, cls=1)             # kept
    _put(outs, 1, 0, 0, gx=11, gy=10, obj=0.7, cls=1)             # overlaps, same class: gone
    _put(outs, 1, 0, 1, gx=11, gy=10, obj=0.6, cls=3)             # overlaps, other class: kept
    _put(outs, 1, 1, 0, gx=10, gy=10, obj=0.5, cls=1)             # other image: kept
    _put(outs, 0, 1, 0, gx=0, gy=0, obj=0.2, cls=0)               # below threshold
    dec = decode(outs, DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK, 416)
    # Anchor 1 is 23x27; neighbouring cells 16 px apart overlap with IoU 189/1053 = 0.18.
    dets = postprocess(dec, conf_thres=0.3, nms_thres=0.1)
    assert [d.shape[0] for d in dets] == [2, 1]
    torch.testing.assert_close(dets[0][:, 4], torch.tensor([0.9 * 0.9, 0.6 * 0.9]))
    assert dets[0][:, 5].tolist() == [1.0, 3.0]
    torch.testing.assert_close(dets[0][0, :4], torch.tensor([168 - 11.5, 168 - 13.5, 168 + 11.5, 168 + 13.5]))
    assert dets[1][0, 5].item() == 1.0
    capped = postprocess(dec, conf_thres=0.3, nms_thres=0.1, max_det=1)
    assert [d.shape[0] for d in capped] == [1, 1]
    assert capped[0][0, 4].item() == pytest.approx(0.81)


def test_no_detections_gives_empty_tensors_of_the_right_width():
    dets = postprocess(decode(_empty_outputs(batch=3), DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK), 0.5, 0.3)
    assert len(dets) == 3 and all(d.shape == (0, 6) for d in dets)


def test_letterbox_is_undone_to_original_pixels():
    outs = _empty_outputs()
    _put(outs, 1, 0, 0, gx=13, gy=13, obj=0.9, cls=0)   # centre (216, 216), anchor 1 (23x27)
    dec = decode(outs, DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK, 416)
    # 832x416 image (w=832, h=416): scale 0.5, pad_x 0, pad_y 104.
    (d,) = postprocess(dec, 0.3, 0.3, image_sizes=[(416, 832)], input_size=416)
    cx, cy = 216.0, 216.0
    expected = torch.tensor([(cx - 11.5) * 2, (cy - 13.5 - 104) * 2, (cx + 11.5) * 2, (cy + 13.5 - 104) * 2])
    torch.testing.assert_close(d[0, :4], expected)
    (same,) = postprocess(dec, 0.3, 0.3, transforms=[(0.5, 0.0, 104.0)], image_sizes=[(416, 832)])
    torch.testing.assert_close(same, d)
    (plain,) = postprocess(dec, 0.3, 0.3, image_sizes=[(416, 832)], input_size=416, letterbox=False)
    torch.testing.assert_close(plain[0, :4], torch.tensor([(cx - 11.5) * 2, cy - 13.5, (cx + 11.5) * 2, cy + 13.5]))


def test_boxes_are_clipped_to_the_image():
    outs = _empty_outputs()
    _put(outs, 0, 0, 2, gx=0, gy=0, obj=0.9, cls=0)   # 344x319 anchor at (16, 16)
    dec = decode(outs, DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK, 416)
    (d,) = postprocess(dec, 0.3, 0.3, image_sizes=[(416, 416)], input_size=416)
    assert d[0, :4].tolist() == [0.0, 0.0, 16 + 172.0, 16 + 159.5]


def test_image_sizes_without_input_size_is_an_error():
    dec = decode(_empty_outputs(), DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK)
    with pytest.raises(ValueError, match="input_size"):
        postprocess(dec, 0.5, 0.3, image_sizes=[(10, 10)])


def test_default_letterbox_undo_agrees_with_the_data_letterbox():
    augment = pytest.importorskip("trainer.data.augment")
    outs = _empty_outputs()
    _put(outs, 1, 0, 0, gx=13, gy=13, obj=0.9, cls=0)
    dec = decode(outs, DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK, 416)
    for h, w in [(375, 500), (333, 501), (640, 427)]:
        _, scale, (px, py) = augment.letterbox(__import__("numpy").zeros((h, w, 3), "uint8"), 416)
        (a,) = postprocess(dec, 0.3, 0.3, image_sizes=[(h, w)], input_size=416)
        (b,) = postprocess(dec, 0.3, 0.3, image_sizes=[(h, w)], transforms=[(scale, px, py)])
        torch.testing.assert_close(a, b)
