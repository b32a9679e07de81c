"""The training loader as it was in 0.1.0, frozen: the same-run baseline of bench/data_pipeline.py.

Everything below the dataset class is ``trainer/data/augment.py`` of 0.1.0, verbatim (minus
the letterbox helpers the training path did not use). ``BaselineDataset`` is 0.1.0's
``YoloDataset`` sampling on top of today's class: full-size ``cv2.imread`` for every image a
sample needs, one warp per tile with a replicated border, HSV through split/merge, the
plane-by-plane float conversion, float32 batches. Keep it as it is: it is what speed-ups are measured against.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import cv2
import numpy as np
import torch

from trainer.data.dataset import YoloDataset, _boxes_to_targets
from trainer.errors import DataError

GREY = 128


def read_image(path: str) -> np.ndarray:
    data = cv2.imread(path, cv2.IMREAD_COLOR)
    if data is None:
        raise DataError(f"cannot read image {path}: the file is missing or not an image")
    return cv2.cvtColor(data, cv2.COLOR_BGR2RGB)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    out = np.empty((3, *image.shape[:2]), dtype=np.float32)
    for i, plane in enumerate(cv2.split(image)):
        np.multiply(plane, np.float32(1 / 255), out=out[i])
    return torch.from_numpy(out)


def yolo_collate(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """0.1.0's collate: float32 images stacked in private memory (copied to shared memory when
    a worker sends them)."""
    images = torch.stack([item[0] for item in batch])
    targets = []
    for i, (_, boxes) in enumerate(batch):
        if len(boxes):
            targets.append(torch.cat([torch.full((len(boxes), 1), float(i)), boxes], dim=1))
    return images, (torch.cat(targets) if targets else torch.zeros((0, 6), dtype=torch.float32))


class BaselineDataset(YoloDataset):
    """0.1.0's training samples (same seeds, same parameters as ``YoloDataset``), one
    ``__getitem__`` at a time and 0.1.0's collate, as its DataLoader ran them."""

    __getitems__ = None  # the DataLoader then fetches item by item, as it did for 0.1.0
    collate = staticmethod(yolo_collate)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return read_image(self.paths[index]), self.boxes[index].copy()

    def _single(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        image, boxes = self.load(index)
        image, boxes = random_scale_jitter(
            image, boxes, self.input_size, rng, jitter=self.jitter, scale=self.scale, min_box=self.min_box
        )
        return random_flip(image, boxes, rng, self.flip_prob)

    def sample(self, index: int, epoch: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        size = self.input_size
        rng = self.rng_for(index, epoch)
        n = len(self)
        if self.mosaic and self.special_aug_active(epoch) and rng.random() < self.mosaic_prob:
            others = rng.integers(0, n, 3)
            order = [index, *others.tolist()]
            rng.shuffle(order)
            samples = [self.load(i) for i in order]
            image, boxes = mosaic(samples, size, rng, jitter=self.jitter, flip_prob=self.flip_prob,
                                  min_box=self.min_box)
            if self.mixup and rng.random() < self.mixup_prob:
                other, other_boxes = self._single(int(rng.integers(0, n)), rng)
                image, boxes = mixup(image, boxes, other, other_boxes)
        else:
            image, boxes = self._single(index, rng)
        image = hsv_jitter(image, rng, *self.hsv)
        return image, boxes

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, boxes = self.sample(index)
        return _to_tensor(image), _boxes_to_targets(boxes, self.input_size)


# --------------------------------------------------------------------------- 0.1.0's augment.py

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

def place(
    image: np.ndarray,
    boxes: np.ndarray,
    new_size: tuple[float, float],
    offset: tuple[float, float],
    canvas: tuple[int, int, int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``image`` to ``new_size`` (w, h), put its top-left corner at ``offset`` of a virtual
    grey plane, and cut out the window ``canvas = (x0, y0, x1, y1)`` of that plane.

    One affine warp does the scaling, the translation and the crop, so nothing larger than the
    output is ever allocated. Boxes are mapped, clipped to the window and shifted into it.
    """
    h, w = image.shape[:2]
    new_w, new_h = float(new_size[0]), float(new_size[1])
    x0, y0, x1, y1 = canvas
    out_w, out_h = int(x1 - x0), int(y1 - y0)
    sx, sy = new_w / w, new_h / h
    # Strong shrinking with a bilinear warp aliases; pre-shrink with area averaging first.
    if min(sx, sy) < 0.5:
        pre_w, pre_h = max(1, int(round(new_w))), max(1, int(round(new_h)))
        src = cv2.resize(image, (pre_w, pre_h), interpolation=cv2.INTER_AREA)
        wsx, wsy = new_w / pre_w, new_h / pre_h
    else:
        src, wsx, wsy = image, sx, sy
    # Continuous coordinate u maps to u * s + d; with pixel centres at i + 0.5 that is
    # i' = s * i + (d + 0.5 * s - 0.5) in OpenCV's integer-centre convention.
    dx, dy = offset[0] - x0, offset[1] - y0
    matrix = np.array([[wsx, 0.0, dx + 0.5 * wsx - 0.5], [0.0, wsy, dy + 0.5 * wsy - 0.5]], dtype=np.float64)
    # Replicate the edge while interpolating, then paint grey wherever a pixel centre falls
    # outside the placed image: a constant border would bleed grey into the image's edge (and
    # the image into the grey) by half a source pixel, a visible halo when upscaling.
    out = cv2.warpAffine(src, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    left, top = int(math.ceil(dx - 0.5)), int(math.ceil(dy - 0.5))
    right, bottom = int(math.ceil(dx + new_w - 0.5)), int(math.ceil(dy + new_h - 0.5))
    if left > 0:
        out[:, :min(left, out_w)] = GREY
    if right < out_w:
        out[:, max(right, 0):] = GREY
    if top > 0:
        out[:min(top, out_h)] = GREY
    if bottom < out_h:
        out[max(bottom, 0):] = GREY
    moved = np.array(boxes, dtype=np.float32, copy=True)
    if len(moved):
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
) -> tuple[np.ndarray, np.ndarray]:
    """Random aspect/scale change and random placement on a grey ``size x size`` canvas."""
    h, w = image.shape[:2]
    new_w, new_h = _jittered_size(w, h, size, size, rng, jitter, scale)
    dx = rng.uniform(min(0.0, size - new_w), max(0.0, size - new_w))
    dy = rng.uniform(min(0.0, size - new_h), max(0.0, size - new_h))
    out, moved = place(image, boxes, (new_w, new_h), (dx, dy), (0, 0, size, size))
    return out, filter_boxes(moved, min_box)


def random_flip(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, p: float = 0.5
                ) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right with probability ``p``."""
    if p > 0 and rng.random() < p:
        return flip_horizontal(image, boxes)
    return image, boxes


def hsv_jitter(
    image: np.ndarray, rng: np.random.Generator, hue: float = 0.1, sat: float = 0.7, val: float = 0.4,
) -> np.ndarray:
    """Random gains on hue, saturation and value through lookup tables (a new array)."""
    if hue == 0 and sat == 0 and val == 0:
        return image
    gains = rng.uniform(-1, 1, 3) * np.array([hue, sat, val]) + 1
    h, s, v = cv2.split(cv2.cvtColor(image, cv2.COLOR_RGB2HSV))
    x = np.arange(256, dtype=np.float32)
    lut_h = ((x * gains[0]) % 180).astype(np.uint8)  # OpenCV's 8-bit hue runs 0..179
    lut_s = np.clip(x * gains[1], 0, 255).astype(np.uint8)
    lut_v = np.clip(x * gains[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(h, lut_h), cv2.LUT(s, lut_s), cv2.LUT(v, lut_v)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


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
    whatever falls outside its quadrant is cut off, and so are its boxes.
    """
    if len(samples) != 4:
        raise ValueError(f"mosaic needs 4 samples, got {len(samples)}")
    cx = int(size * rng.uniform(*cut))
    cy = int(size * rng.uniform(*cut))
    out = np.empty((size, size, 3), dtype=np.uint8)
    quadrants = ((0, 0, cx, cy), (cx, 0, size, cy), (0, cy, cx, size), (cx, cy, size, size))
    all_boxes = []
    for (image, boxes), (x0, y0, x1, y1) in zip(samples, quadrants):
        image, boxes = random_flip(image, boxes, rng, flip_prob)
        h, w = image.shape[:2]
        new_w, new_h = _jittered_size(w, h, size, size, rng, jitter, scale)
        ox = cx - new_w if x0 == 0 else cx  # left quadrants end at the cut, right ones start there
        oy = cy - new_h if y0 == 0 else cy
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            continue
        tile, moved = place(image, boxes, (new_w, new_h), (ox, oy), (x0, y0, x1, y1))
        out[y0:y1, x0:x1] = tile
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
) -> tuple[np.ndarray, np.ndarray]:
    """Blend two same-size images (``weight`` of the first) and keep the boxes of both."""
    if image_a.shape != image_b.shape:
        raise ValueError(f"mixup needs images of one shape, got {image_a.shape} and {image_b.shape}")
    blended = cv2.addWeighted(image_a, weight, image_b, 1.0 - weight, 0.0)
    return blended, np.concatenate([boxes_a, boxes_b]).astype(np.float32)
