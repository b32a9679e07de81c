"""Image augmentations for detection; every function transforms the boxes with the pixels.

Conventions: images are RGB ``uint8`` arrays ``[H, W, 3]``; boxes are float arrays ``[n, 4+]``
whose first four columns are ``x1, y1, x2, y2`` in *continuous* pixel coordinates (the left
edge of pixel column ``i`` is ``x = i``, its right edge ``x = i + 1``); any further columns
(the class) ride along untouched. Randomness always comes from an explicit
``numpy.random.Generator`` so that a sample is a pure function of its seed.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import cv2
import numpy as np

GREY = 128  # the padding value the port (and Darknet's letterbox) uses

__all__ = [
    "GREY",
    "letterbox",
    "letterbox_params",
    "letterbox_boxes",
    "unletterbox_boxes",
    "flip_horizontal",
    "clip_boxes",
    "filter_boxes",
    "place",
    "random_scale_jitter",
    "random_flip",
    "hsv_gains",
    "hsv_lut",
    "hsv_jitter",
    "mosaic",
    "mixup",
]


# --------------------------------------------------------------------------- letterbox

def letterbox_params(orig_hw: tuple[int, int], size: int) -> tuple[float, tuple[int, int], tuple[int, int]]:
    """Return ``(scale, (new_w, new_h), (pad_x, pad_y))`` for fitting ``orig_hw`` into ``size``."""
    h, w = int(orig_hw[0]), int(orig_hw[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"letterbox: image size must be positive, got {w}x{h}")
    scale = min(size / w, size / h)
    new_w = min(size, max(1, int(round(w * scale))))
    new_h = min(size, max(1, int(round(h * scale))))
    return scale, (new_w, new_h), ((size - new_w) // 2, (size - new_h) // 2)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize keeping the aspect ratio and pad to ``size x size`` with grey 128.

    Returns ``(padded uint8 [size, size, 3], scale, (pad_x, pad_y))``; a point ``(x, y)`` of the
    original maps to ``(x * scale + pad_x, y * scale + pad_y)``.
    """
    h, w = image.shape[:2]
    scale, (new_w, new_h), (pad_x, pad_y) = letterbox_params((h, w), size)
    if (new_w, new_h) != (w, h):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, (new_w, new_h), interpolation=interp)
    out = np.full((size, size, 3), GREY, dtype=np.uint8)
    out[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = image
    return out, scale, (pad_x, pad_y)


def letterbox_boxes(boxes: np.ndarray, scale: float, pad: tuple[int, int]) -> np.ndarray:
    """Map boxes of the original image into the letterboxed image (a copy)."""
    out = np.array(boxes, dtype=np.float32, copy=True)
    out[:, [0, 2]] = out[:, [0, 2]] * scale + pad[0]
    out[:, [1, 3]] = out[:, [1, 3]] * scale + pad[1]
    return out


def unletterbox_boxes(boxes: np.ndarray, size: int, orig_hw: tuple[int, int]) -> np.ndarray:
    """Map boxes from a ``size`` letterboxed input back to original pixels, clipped to the image.

    Works on numpy arrays and torch tensors alike (only the first four columns change); this is
    what turns the network's detections into the original image's pixels.
    """
    scale, _, (pad_x, pad_y) = letterbox_params(orig_hw, size)
    out = boxes.clone() if hasattr(boxes, "clone") else np.array(boxes, dtype=np.float32, copy=True)
    h, w = orig_hw
    out[:, [0, 2]] = ((out[:, [0, 2]] - pad_x) / scale).clip(0, w)
    out[:, [1, 3]] = ((out[:, [1, 3]] - pad_y) / scale).clip(0, h)
    return out


# --------------------------------------------------------------------------- boxes

def flip_horizontal(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right; ``x1' = W - x2`` and ``x2' = W - x1``."""
    w = image.shape[1]
    out = np.array(boxes, dtype=np.float32, copy=True)
    if len(out):
        out[:, [0, 2]] = w - out[:, [2, 0]]
    return cv2.flip(image, 1), out


def clip_boxes(boxes: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Clip boxes to the rectangle ``[x0, x1] x [y0, y1]`` (in place, returned for chaining)."""
    if len(boxes):
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(x0, x1)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(y0, y1)
    return boxes


def filter_boxes(boxes: np.ndarray, min_size: float = 1.0) -> np.ndarray:
    """Drop boxes whose width or height is not above ``min_size`` pixels (the port's rule)."""
    if not len(boxes):
        return boxes
    keep = ((boxes[:, 2] - boxes[:, 0]) > min_size) & ((boxes[:, 3] - boxes[:, 1]) > min_size)
    return boxes[keep]


# --------------------------------------------------------------------------- geometry

#: Pixels: how far a computed image edge may be off by float rounding (see _span).
_EDGE_TOL = 1e-7


class _Span(NamedTuple):
    """One axis of a placement: resize source pixels ``[a, b)`` by the scale; the resized
    pixels ``[k0, k0 + v1 - v0)`` land on window pixels ``[v0, v1)``; ``d`` is the offset realised."""

    a: int
    b: int
    k0: int
    v0: int
    v1: int
    d: float


def _span(n: int, s: float, d: float, m: int) -> _Span:
    """Place ``n`` source pixels, scaled by ``s``, at offset ``d`` of a window of ``m`` pixels.

    ``cv2.resize`` with a scale factor (not a size) samples output pixel ``k`` at source
    coordinate ``(k + 0.5) / s - 0.5``: exactly the continuous mapping ``u -> u * s``. A crop
    starting at source pixel ``a`` and pasted at window pixel ``P`` therefore realises the offset
    ``P - a * s``; ``P`` is rounded, so the realised offset is within half a pixel of ``d``. The
    crop keeps a margin of source pixels on both sides of what the window shows, so every
    visible pixel is interpolated from true neighbours (or the image's replicated edge, where
    the image ends). A crop whose resized length would round to its own length is lengthened:
    ``cv2.resize`` copies those instead of scaling them (``_paste`` makes sure the whole image
    is long enough). Nothing is visible when ``v1 <= v0``.
    """
    first = (max(0, math.ceil(d - 0.5)) + 0.5 - d) / s - 0.5  # source coordinate of the first shown pixel
    a = max(0, math.floor(first - 0.5 / s) - 1)
    while True:
        p = round(d + a * s)
        real = p - a * s
        # A pixel shows when its centre is in [start, end) of the placed image; the tolerance
        # keeps float noise (0.15 * 6 = 0.8999999999999999) from moving an edge by a pixel.
        v0 = max(0, math.ceil(real - 0.5 - _EDGE_TOL))
        v1 = min(m, math.ceil(real + n * s - 0.5 - _EDGE_TOL))
        if v1 <= v0:
            return _Span(a, a, 0, v0, v0, real)
        b = min(n, math.floor((v1 - 0.5 - real) / s - 0.5) + 3)
        k0 = v0 - p
        while b < n and (_resized_len(b - a, s) < k0 + v1 - v0 or _copied(b - a, s)):
            b += 1
        if not _copied(b - a, s) or a == 0:
            return _Span(a, b, k0, v0, v1, real)
        a -= 1


def _copied(n: int, s: float) -> bool:
    """Whether ``cv2.resize`` would copy ``n`` pixels at scale ``s`` instead of scaling them."""
    return s != 1 and _resized_len(n, s) == n


def _resized_len(n: int, s: float) -> int:
    return int(np.rint(n * s))  # what cv2.resize makes of n pixels at scale s (cvRound: half to even)


def _shrink(image: np.ndarray, kx: int, ky: int) -> np.ndarray:
    """Average ``kx x ky`` blocks (OpenCV's fast integer INTER_AREA; ``k`` at most the side); a
    partial last block is dropped."""
    h, w = image.shape[:2]
    return cv2.resize(image[:h // ky * ky, :w // kx * kx], (w // kx, h // ky), interpolation=cv2.INTER_AREA)


def _paste(image: np.ndarray, sx: float, sy: float, dx: float, dy: float, out: np.ndarray,
           flip: bool = False) -> tuple[float, float, float, float]:
    """Draw ``image`` (mirrored first if ``flip``) scaled by ``(sx, sy)`` with its top-left corner
    at ``(dx, dy)`` into ``out``, only where it shows.

    Returns the mapping realised, ``(sx, sy, dx, dy)`` of the image's own coordinates: the
    offsets within half a pixel of those asked for; the scales those asked for, except that
    one within half a pixel of 1 over the whole image is 1, and that averaging blocks drops a
    partial last block (each moves the image's far edge by less than a pixel).
    """
    out_h, out_w = out.shape[:2]
    kx, ky = max(1, min(int(1 / sx), image.shape[1])), max(1, min(int(1 / sy), image.shape[0]))
    # Bilinear interpolation aliases when shrinking by more than 2: average whole blocks first.
    if kx > 1 or ky > 1:
        if flip:  # mirror first: the partial block dropped is then on the far side, as it should be
            image, flip = cv2.flip(image, 1), False
        image = _shrink(image, kx, ky)
    h, w = image.shape[:2]
    rx, ry = sx * kx, sy * ky  # the scale left for the resize
    # A whole side within half a pixel of its size is not scaled at all (see _span).
    rx = 1.0 if _copied(w, rx) else rx
    ry = 1.0 if _copied(h, ry) else ry
    span_x, span_y = _span(w, rx, dx, out_w), _span(h, ry, dy, out_h)
    if span_x.v1 <= span_x.v0 or span_y.v1 <= span_y.v0:
        return rx / kx, ry / ky, span_x.d, span_y.d
    ax, bx = (w - span_x.b, w - span_x.a) if flip else (span_x.a, span_x.b)
    crop = image[span_y.a:span_y.b, ax:bx]
    if flip:
        crop = cv2.flip(crop, 1)
    resized = cv2.resize(crop, (0, 0), fx=rx, fy=ry, interpolation=cv2.INTER_LINEAR)
    out[span_y.v0:span_y.v1, span_x.v0:span_x.v1] = resized[
        span_y.k0:span_y.k0 + span_y.v1 - span_y.v0, span_x.k0:span_x.k0 + span_x.v1 - span_x.v0]
    return rx / kx, ry / ky, span_x.d, span_y.d


def place(
    image: np.ndarray,
    boxes: np.ndarray,
    new_size: tuple[float, float],
    offset: tuple[float, float],
    canvas: tuple[int, int, int, int],
    *,
    flip: bool = False,
    out: Optional[np.ndarray] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``image`` to ``new_size`` (w, h), mirrored first if ``flip``, put its top-left corner
    at ``offset`` of a virtual grey plane, and cut out the window ``canvas = (x0, y0, x1, y1)``.

    One resize of just the part that shows (and a few pixels around it) does the scaling,
    translation and crop, and the mirroring of that part. With ``out`` (the window's pixels, e.g. a view
    of a larger canvas) the image is drawn into it and nothing else there changes; otherwise
    into a new grey window. Boxes are mapped with the offset realised (within half a pixel of
    ``offset``), clipped to the window and shifted into it.
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = canvas
    out_w, out_h = int(x1 - x0), int(y1 - y0)
    if out is None:
        out = np.full((out_h, out_w, 3), GREY, dtype=np.uint8)
    sx, sy, dx, dy = _paste(image, float(new_size[0]) / w, float(new_size[1]) / h, offset[0] - x0, offset[1] - y0,
                            out, flip)
    moved = np.array(boxes, dtype=np.float32, copy=True)
    if len(moved):
        if flip:
            moved[:, [0, 2]] = w - moved[:, [2, 0]]
        moved[:, [0, 2]] = moved[:, [0, 2]] * sx + dx
        moved[:, [1, 3]] = moved[:, [1, 3]] * sy + dy
        clip_boxes(moved, 0, 0, out_w, out_h)
    return out, moved


def _jittered_size(
    w: int, h: int, base_w: float, base_h: float, rng: np.random.Generator,
    jitter: float, scale: tuple[float, float],
) -> tuple[float, float]:
    """A new (w, h): the aspect ratio jittered by ``jitter``, the size a random fraction of base."""
    ratio = (w / h) * rng.uniform(1 - jitter, 1 + jitter) / rng.uniform(1 - jitter, 1 + jitter)
    s = rng.uniform(*scale)
    if ratio < 1:
        new_h = s * base_h
        new_w = new_h * ratio
    else:
        new_w = s * base_w
        new_h = new_w / ratio
    return max(new_w, 1.0), max(new_h, 1.0)


def random_scale_jitter(
    image: np.ndarray,
    boxes: np.ndarray,
    size: int,
    rng: np.random.Generator,
    *,
    jitter: float = 0.3,
    scale: tuple[float, float] = (0.25, 2.0),
    min_box: float = 1.0,
    flip_prob: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Random aspect/scale change and random placement on a grey ``size x size`` canvas, then a
    left-right mirror of the canvas with probability ``flip_prob``.

    The mirror is folded into the placement (the mirrored image at the mirrored offset), so
    the pixels are resized once; the random draws are those of ``random_scale_jitter`` followed
    by ``random_flip``.
    """
    h, w = image.shape[:2]
    new_w, new_h = _jittered_size(w, h, size, size, rng, jitter, scale)
    dx = rng.uniform(min(0.0, size - new_w), max(0.0, size - new_w))
    dy = rng.uniform(min(0.0, size - new_h), max(0.0, size - new_h))
    flip = flip_prob > 0 and rng.random() < flip_prob
    if flip:
        dx = size - dx - new_w
    out, moved = place(image, boxes, (new_w, new_h), (dx, dy), (0, 0, size, size), flip=flip)
    return out, filter_boxes(moved, min_box)


def random_flip(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, p: float = 0.5
                ) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right with probability ``p``."""
    if p > 0 and rng.random() < p:
        return flip_horizontal(image, boxes)
    return image, boxes


def hsv_gains(rng: np.random.Generator, hue: float = 0.1, sat: float = 0.7, val: float = 0.4) -> np.ndarray:
    """The random ``(hue, sat, val)`` gains of one :func:`hsv_jitter` call, each ``1 +- its range``."""
    return rng.uniform(-1, 1, 3) * np.array([hue, sat, val]) + 1


def hsv_lut(gains: np.ndarray) -> np.ndarray:
    """The ``[256, 1, 3]`` uint8 table mapping each H, S, V value under ``gains`` (the port's rule:
    hue times its gain modulo 180, OpenCV's 8-bit hue range; S and V times theirs, clipped; truncated)."""
    x = np.arange(256, dtype=np.float64)  # the port's precision, whatever numpy's promotion rules
    lut = np.empty((256, 1, 3), dtype=np.uint8)
    lut[:, 0, 0] = (x * gains[0]) % 180
    lut[:, 0, 1] = np.clip(x * gains[1], 0, 255)
    lut[:, 0, 2] = np.clip(x * gains[2], 0, 255)
    return lut


def hsv_jitter(
    image: np.ndarray, rng: np.random.Generator, hue: float = 0.1, sat: float = 0.7, val: float = 0.4,
) -> np.ndarray:
    """Random gains on hue, saturation and value through one uint8 lookup table (a new array)."""
    if hue == 0 and sat == 0 and val == 0:
        return image
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    cv2.LUT(hsv, hsv_lut(hsv_gains(rng, hue, sat, val)), dst=hsv)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB, dst=hsv)


def mosaic(
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    size: int,
    rng: np.random.Generator,
    *,
    jitter: float = 0.3,
    scale: tuple[float, float] = (0.4, 1.0),
    flip_prob: float = 0.5,
    cut: tuple[float, float] = (0.3, 0.7),
    min_box: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Four images around a random cut point, each scaled, jittered, maybe flipped.

    The image of each quadrant has its inner corner on the cut point and extends away from it;
    whatever falls outside its quadrant is cut off, and so are its boxes. Each image is
    mirrored, scaled and cut by one resize written straight into its quadrant.
    """
    if len(samples) != 4:
        raise ValueError(f"mosaic needs 4 samples, got {len(samples)}")
    cx = int(size * rng.uniform(*cut))
    cy = int(size * rng.uniform(*cut))
    out = np.full((size, size, 3), GREY, dtype=np.uint8)
    quadrants = ((0, 0, cx, cy), (cx, 0, size, cy), (0, cy, cx, size), (cx, cy, size, size))
    all_boxes = []
    for (image, boxes), (x0, y0, x1, y1) in zip(samples, quadrants):
        flip = flip_prob > 0 and rng.random() < flip_prob
        h, w = image.shape[:2]
        new_w, new_h = _jittered_size(w, h, size, size, rng, jitter, scale)
        ox = cx - new_w if x0 == 0 else cx  # left quadrants end at the cut, right ones start there
        oy = cy - new_h if y0 == 0 else cy
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            continue
        _, moved = place(image, boxes, (new_w, new_h), (ox, oy), (x0, y0, x1, y1), flip=flip,
                         out=out[y0:y1, x0:x1])
        moved = filter_boxes(moved, min_box)
        if len(moved):
            moved[:, [0, 2]] += x0
            moved[:, [1, 3]] += y0
            all_boxes.append(moved)
    width = samples[0][1].shape[1] if np.ndim(samples[0][1]) == 2 else 5
    merged = np.concatenate(all_boxes) if all_boxes else np.zeros((0, width), dtype=np.float32)
    return out, merged


def mixup(
    image_a: np.ndarray, boxes_a: np.ndarray, image_b: np.ndarray, boxes_b: np.ndarray, weight: float = 0.5,
    *, inplace: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Blend two same-size images (``weight`` of the first) and keep the boxes of both.

    With ``inplace`` the blend is written into ``image_a`` (which must be writable).
    """
    if image_a.shape != image_b.shape:
        raise ValueError(f"mixup needs images of one shape, got {image_a.shape} and {image_b.shape}")
    blended = cv2.addWeighted(image_a, weight, image_b, 1.0 - weight, 0.0, dst=image_a if inplace else None)
    return blended, np.concatenate([boxes_a, boxes_b]).astype(np.float32)
