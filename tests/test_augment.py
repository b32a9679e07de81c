"""Augmentations move the pixels and the boxes together: checked on drawn rectangles."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from trainer.data import augment

# Pure colours on a black background; none of them passes for the grey padding (128).
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
TOL = 1.5  # pixels: an edge interpolated between two pixels is found to within one of them


def _canvas(w, h, box, colour=(255, 0, 0)):
    """A black image with one filled rectangle; box in continuous coordinates (int edges)."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    x1, y1, x2, y2 = (int(v) for v in box)
    img[y1:y2, x1:x2] = colour
    return img


def _mask_box(img, colour):
    """Tight box (continuous coordinates) of the pixels at least half ``colour``.

    Thresholds halfway between 0 and 255 find an interpolated edge where it really is, at any
    scale; grey (128 everywhere) fails the "< 128" test of the colour's zero channels.
    """
    on = np.ones(img.shape[:2], dtype=bool)
    for c in range(3):
        on &= img[..., c] >= 128 if colour[c] == 255 else img[..., c] < 128
    ys, xs = np.nonzero(on)
    if not len(xs):
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


def _assert_same_place(seen, box):
    """The drawn pixels sit where the box says.

    Under 3 px on a side the blur of one edge reaches the other: the pixels may vanish or
    shrink, so only check that whatever is left lies inside the box.
    """
    w, h = box[2] - box[0], box[3] - box[1]
    if min(w, h) < 3:
        if seen is not None:
            assert (seen[:2] >= box[:2] - TOL).all() and (seen[2:] <= box[2:4] + TOL).all(), (seen, box)
        return
    assert seen is not None, f"box {box} has no pixels"
    np.testing.assert_allclose(seen, box[:4], atol=TOL)


@st.composite
def image_and_box(draw, min_side=24, max_side=300):
    w = draw(st.integers(min_side, max_side))
    h = draw(st.integers(min_side, max_side))
    x1 = draw(st.integers(0, w - 8))
    y1 = draw(st.integers(0, h - 8))
    x2 = draw(st.integers(x1 + 6, w))
    y2 = draw(st.integers(y1 + 6, h))
    return w, h, np.array([[x1, y1, x2, y2, 3]], dtype=np.float32)


def test_letterbox_known_case():
    img = np.full((100, 200, 3), 7, dtype=np.uint8)
    out, scale, pad = augment.letterbox(img, 416)
    assert out.shape == (416, 416, 3) and out.dtype == np.uint8
    assert scale == pytest.approx(2.08)
    assert pad == (0, 104)
    assert (out[:104] == 128).all() and (out[104 + 208:] == 128).all()
    assert (out[104:104 + 208] == 7).all()
    boxes = augment.letterbox_boxes(np.array([[10, 20, 110, 70, 1]], dtype=np.float32), scale, pad)
    np.testing.assert_allclose(boxes, [[20.8, 145.6, 228.8, 249.6, 1]], rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(image_and_box(), st.sampled_from([96, 160, 416]))
def test_letterbox_keeps_boxes_on_their_pixels(sample, size):
    w, h, boxes = sample
    img = _canvas(w, h, boxes[0, :4])
    out, scale, pad = augment.letterbox(img, size)
    moved = augment.letterbox_boxes(boxes, scale, pad)
    _assert_same_place(_mask_box(out, COLOURS[0]), moved[0])
    assert moved[0, 4] == 3
    back = augment.unletterbox_boxes(moved, size, (h, w))
    np.testing.assert_allclose(back[:, :4], boxes[:, :4], atol=1e-3)


@settings(max_examples=30, deadline=None)
@given(image_and_box())
def test_flip_is_exact(sample):
    w, h, boxes = sample
    img = _canvas(w, h, boxes[0, :4])
    out, moved = augment.flip_horizontal(img, boxes)
    np.testing.assert_array_equal(_mask_box(out, COLOURS[0]), moved[0, :4])
    again, back = augment.flip_horizontal(out, moved)
    np.testing.assert_array_equal(again, img)
    np.testing.assert_array_equal(back, boxes)


@settings(max_examples=40, deadline=None)
@given(image_and_box(), st.integers(0, 2**31 - 1))
def test_scale_jitter_keeps_boxes_on_their_pixels(sample, seed):
    w, h, boxes = sample
    img = _canvas(w, h, boxes[0, :4])
    out, moved = augment.random_scale_jitter(img, boxes, 160, np.random.default_rng(seed))
    assert out.shape == (160, 160, 3)
    seen = _mask_box(out, COLOURS[0])
    if len(moved) == 0:
        assert seen is None or min(seen[2] - seen[0], seen[3] - seen[1]) <= 3
        return
    assert (moved[:, :4] >= 0).all() and (moved[:, :4] <= 160).all()
    _assert_same_place(seen, moved[0])


@settings(max_examples=40, deadline=None)
@given(st.lists(image_and_box(min_side=32, max_side=200), min_size=4, max_size=4), st.integers(0, 2**31 - 1))
def test_mosaic_keeps_every_box_on_its_pixels(samples, seed):
    size = 160
    inputs = []
    for k, (w, h, boxes) in enumerate(samples):
        b = boxes.copy()
        b[0, 4] = k  # the class says which colour (which source image) the box is
        inputs.append((_canvas(w, h, b[0, :4], COLOURS[k]), b))
    out, merged = augment.mosaic(inputs, size, np.random.default_rng(seed))
    assert out.shape == (size, size, 3) and merged.dtype == np.float32 and merged.shape[1] == 5
    assert (merged[:, :4] >= 0).all() and (merged[:, :4] <= size).all()
    for k, colour in enumerate(COLOURS):
        mine = merged[merged[:, 4] == k]
        seen = _mask_box(out, colour)
        if len(mine) == 0:
            assert seen is None or min(seen[2] - seen[0], seen[3] - seen[1]) <= 3
            continue
        assert len(mine) == 1
        _assert_same_place(seen, mine[0])


def test_mosaic_without_boxes_and_mixup():
    rng = np.random.default_rng(0)
    empty = np.zeros((0, 5), dtype=np.float32)
    samples = [(np.zeros((50, 60, 3), np.uint8), empty) for _ in range(4)]
    out, boxes = augment.mosaic(samples, 96, rng)
    assert out.shape == (96, 96, 3) and boxes.shape == (0, 5)
    a = np.full((8, 8, 3), 200, np.uint8)
    b = np.full((8, 8, 3), 100, np.uint8)
    mixed, both = augment.mixup(a, np.ones((1, 5), np.float32), b, np.zeros((2, 5), np.float32))
    assert (mixed == 150).all() and both.shape == (3, 5)
    with pytest.raises(ValueError, match="mosaic needs 4 samples"):
        augment.mosaic(samples[:3], 96, rng)


def test_hsv_is_deterministic_and_keeps_grey():
    img = np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    a = augment.hsv_jitter(img, np.random.default_rng(5))
    b = augment.hsv_jitter(img, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert a.shape == img.shape and a.dtype == np.uint8
    grey = np.full((4, 4, 3), 128, np.uint8)  # no saturation: only the value gain applies
    out = augment.hsv_jitter(grey, np.random.default_rng(2))
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def _warp_reference(image, sx, sy, dx, dy, out_w, out_h, flip):
    """What ``place`` draws, the slow way: mirror, shrink whole blocks as ``place`` does when the
    scale is under 1/2, one affine warp with a replicated edge, grey outside the image."""
    import math

    import cv2

    if flip:
        image = cv2.flip(image, 1)
    h, w = image.shape[:2]
    kx, ky = max(1, min(int(1 / sx), w)), max(1, min(int(1 / sy), h))
    if kx > 1 or ky > 1:
        image = cv2.resize(image[:h // ky * ky, :w // kx * kx], (w // kx, h // ky), interpolation=cv2.INTER_AREA)
        sx, sy = sx * kx, sy * ky
    h, w = image.shape[:2]
    matrix = np.array([[sx, 0, dx + 0.5 * sx - 0.5], [0, sy, dy + 0.5 * sy - 0.5]])
    out = cv2.warpAffine(image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = np.zeros((out_h, out_w), dtype=bool)
    tol = augment._EDGE_TOL  # a centre on an edge: shown at the start, not at the end
    top, bottom = max(0, math.ceil(dy - 0.5 - tol)), max(0, math.ceil(dy + h * sy - 0.5 - tol))
    left, right = max(0, math.ceil(dx - 0.5 - tol)), max(0, math.ceil(dx + w * sx - 0.5 - tol))
    inside[top:bottom, left:right] = True
    out[~inside] = augment.GREY
    return out


@settings(max_examples=150, deadline=None)
# 0.15 * 6 is 0.8999999999999999: the window's last row sat on the image's edge by float noise.
@example(4, 120, 1.0, 0.15, 0.0, -0.875, 1, 3, False, 0)
@given(st.integers(4, 200), st.integers(4, 200), st.floats(0.15, 2.5), st.floats(0.15, 2.5),
       st.floats(-1.0, 1.0), st.floats(-1.0, 1.0), st.integers(1, 160), st.integers(1, 160), st.booleans(),
       st.integers(0, 2**31 - 1))
def test_one_resize_draws_what_an_affine_warp_draws(w, h, sx, sy, fx, fy, out_w, out_h, flip, seed):
    """``place`` resizes only the part of the image that shows, straight into the window; the
    pixels are those of an affine warp of the whole image with the mapping it reports."""
    import cv2

    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 1.5)
    want_dx, want_dy = fx * w * sx, fy * h * sy  # from fully off the left/top to well inside
    out = np.full((out_h, out_w, 3), augment.GREY, dtype=np.uint8)
    got_sx, got_sy, dx, dy = augment._paste(image, sx, sy, want_dx, want_dy, out, flip)
    assert abs(dx - want_dx) <= 0.5 + 1e-9 and abs(dy - want_dy) <= 0.5 + 1e-9
    # A scale is only ever moved by less than a pixel over the whole image (block averaging
    # drops a partial block; a scale within half a pixel of 1 is 1).
    assert abs(got_sx - sx) * w < 1 + 1e-9 and abs(got_sy - sy) * h < 1 + 1e-9
    reference = _warp_reference(image, got_sx, got_sy, dx, dy, out_w, out_h, flip)
    assert np.abs(out.astype(int) - reference).max(initial=0) <= 1  # fixed-point rounding only


@settings(max_examples=40, deadline=None)
@given(image_and_box(), st.integers(0, 2**31 - 1))
# A flip rounds the window's offset to the other side of a pixel: exactly one pixel apart,
# plus float32's error (found by hypothesis: 1.0000038).
@example((161, 214, np.array([[0., 0., 8., 6., 3.]], dtype=np.float32)), 1071444)
def test_scale_jitter_with_its_flip_keeps_boxes_on_their_pixels(sample, seed):
    w, h, boxes = sample
    img = _canvas(w, h, boxes[0, :4])
    out, moved = augment.random_scale_jitter(img, boxes, 160, np.random.default_rng(seed), flip_prob=1.0)
    seen = _mask_box(out, COLOURS[0])
    if len(moved) == 0:
        assert seen is None or min(seen[2] - seen[0], seen[3] - seen[1]) <= 3
        return
    _assert_same_place(seen, moved[0])
    # The flip is the mirror of the canvas the same draws give without it.
    rng = np.random.default_rng(seed)
    plain, plain_boxes = augment.random_scale_jitter(img, boxes, 160, rng, flip_prob=0.0)
    if len(plain_boxes):
        np.testing.assert_allclose(moved[0, [0, 2]], 160 - plain_boxes[0, [2, 0]],
                                   atol=1.0 + 1e-4)
        np.testing.assert_allclose(moved[0, [1, 3]], plain_boxes[0, [1, 3]], atol=1e-5)


def _hsv_reference(image, gains):
    """The port's HSV jitter computed directly in float on the HSV planes, no lookup table."""
    import cv2

    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float64)
    hsv[..., 0] = (hsv[..., 0] * gains[0]) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * gains[1], 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * gains[2], 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0, 0.5), st.floats(0, 1), st.floats(0, 1))
def test_hsv_lookup_table_equals_the_direct_computation(seed, hue, sat, val):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    out = augment.hsv_jitter(image, np.random.default_rng(seed), hue, sat, val)
    if hue == sat == val == 0:  # no jitter: not even the lossy round trip through HSV
        assert out is image
        return
    gains = augment.hsv_gains(np.random.default_rng(seed), hue, sat, val)
    reference = _hsv_reference(image, gains)
    assert np.abs(out.astype(int) - reference).max() <= 1  # within rounding
    assert (augment.hsv_jitter(image, np.random.default_rng(seed), hue, sat, val) == out).all()
