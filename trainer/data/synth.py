"""A synthetic VOC dataset: coloured shapes on textured, low-contrast backgrounds.

Made to be learnable by a tiny model on a CPU in a few epochs (each class is one shape in one
colour, objects cover 10-40 % of the image) while still exercising what real data has: varied
image sizes (so letterboxing matters), overlaps, objects cut by the image border
(``truncated``) and a few faint ones flagged ``difficult``. Deterministic for a seed.
"""
from __future__ import annotations

import logging
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import cv2
import numpy as np

from trainer.data.voc import format_annotation_line
from trainer.errors import DataError

log = logging.getLogger(__name__)

SHAPES = ("circle", "square", "triangle", "cross", "diamond", "ring", "star", "hexagon")
# Saturated colours (RGB) far apart from each other and from the greyish backgrounds.
COLOURS = (
    (220, 40, 40), (40, 160, 60), (40, 80, 220), (235, 200, 30), (200, 40, 200),
    (30, 200, 210), (240, 130, 20), (120, 60, 20), (250, 250, 250), (20, 20, 20),
)
MAX_CLASSES = 40  # shape index k % 8 and colour index k % 10 repeat together every 40 classes

__all__ = ["SynthResult", "synth_class_names", "make_synthetic_voc", "SHAPES", "MAX_CLASSES"]


@dataclass
class SynthResult:
    """Where ``make_synthetic_voc`` wrote things."""

    voc_root: Path  # the VOCdevkit folder
    classes_file: Path
    train_lines_file: Path  # 2007_train.txt (absolute image paths)
    val_lines_file: Path  # 2007_val.txt
    zip_path: Optional[Path]
    class_names: list[str]
    images: int
    objects: int


def synth_class_names(classes: int) -> list[str]:
    """Names of the first ``classes`` synthetic classes (shape, then colour variants)."""
    if not 1 <= classes <= MAX_CLASSES:
        raise DataError(f"synthetic datasets have 1 to {MAX_CLASSES} classes, got {classes}")
    names = []
    for k in range(classes):
        shape = SHAPES[k % len(SHAPES)]
        names.append(shape if k < len(SHAPES) else f"{shape}{k // len(SHAPES) + 1}")
    return names


# --------------------------------------------------------------------------- drawing

def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A smooth, nearly grey, low-contrast field plus fine grain (a cheap 'texture')."""
    base = rng.uniform(90, 170) + rng.uniform(-12, 12, 3)  # grey with a faint tint
    gy, gx = int(rng.integers(3, 7)), int(rng.integers(3, 7))
    coarse = rng.normal(0, 14, (gy, gx, 1)) + rng.normal(0, 4, (gy, gx, 3))
    field = cv2.resize(coarse.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 5, (h // 2 + 1, w // 2 + 1, 1)).astype(np.float32)
    field += cv2.resize(grain, (w, h), interpolation=cv2.INTER_NEAREST)[:, :, None]
    return np.clip(field + base.astype(np.float32), 0, 255).astype(np.uint8)


def _polygon(shape: str, cx: float, cy: float, rx: float, ry: float, angle: float) -> np.ndarray:
    if shape == "square":
        pts = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    elif shape == "triangle":
        pts = [(0, -1), (1, 1), (-1, 1)]
    elif shape == "diamond":
        pts = [(0, -1), (1, 0), (0, 1), (-1, 0)]
    elif shape == "hexagon":
        pts = [(math.cos(a), math.sin(a)) for a in np.linspace(0, 2 * math.pi, 7)[:-1]]
    elif shape == "star":
        pts = []
        for i in range(10):
            a = -math.pi / 2 + i * math.pi / 5
            r = 1.0 if i % 2 == 0 else 0.45
            pts.append((r * math.cos(a), r * math.sin(a)))
    elif shape == "cross":
        t = 0.33
        pts = [(-t, -1), (t, -1), (t, -t), (1, -t), (1, t), (t, t), (t, 1), (-t, 1), (-t, t), (-1, t),
               (-1, -t), (-t, -t)]
    else:
        raise ValueError(shape)
    arr = np.array(pts, dtype=np.float64)
    # A small rotation keeps shapes varied without changing what they are.
    c, s = math.cos(angle), math.sin(angle)
    arr[:, 0] *= rx  # scale first, then rotate: a rotated square stays a square
    arr[:, 1] *= ry
    rot = arr @ np.array([[c, s], [-s, c]])
    rot[:, 0] += cx
    rot[:, 1] += cy
    return rot


def _draw(canvas: np.ndarray, shape: str, colour, cx, cy, rx, ry, angle) -> tuple[float, float, float, float]:
    """Draw one shape; return its tight box (unclipped) in continuous pixel coordinates."""
    colour = tuple(int(c) for c in colour)
    shift = 4  # sub-pixel precision for OpenCV's drawing calls
    k = 1 << shift
    if shape in ("circle", "ring"):
        center = (int(round(cx * k)), int(round(cy * k)))
        axes = (int(round(rx * k)), int(round(ry * k)))
        cv2.ellipse(canvas, center, axes, 0, 0, 360, colour, -1, cv2.LINE_AA, shift)
        if shape == "ring":
            inner = (int(round(rx * 0.55 * k)), int(round(ry * 0.55 * k)))
            # The hole shows a darker shade of the ring's colour: solid, but clearly a ring.
            hole = tuple(int(c * 0.45) for c in colour)
            cv2.ellipse(canvas, center, inner, 0, 0, 360, hole, -1, cv2.LINE_AA, shift)
        return cx - rx, cy - ry, cx + rx, cy + ry
    pts = _polygon(shape, cx, cy, rx, ry, angle)
    cv2.fillPoly(canvas, [np.round(pts * k).astype(np.int32)], colour, cv2.LINE_AA, shift)
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def _render(rng: np.random.Generator, names: list[str], size_range: tuple[int, int]):
    """One image and its objects ``[(name, (x1, y1, x2, y2) ints, difficult, truncated)]``."""
    w = int(rng.integers(size_range[0], size_range[1] + 1))
    h = int(rng.integers(size_range[0], size_range[1] + 1))
    canvas = _background(rng, w, h)
    n_obj = int(rng.choice([1, 2, 2, 3, 3, 4]))
    placed: list[tuple[float, float, float, float]] = []
    objects = []
    short = min(w, h)
    for _ in range(n_obj):
        k = int(rng.integers(0, len(names)))
        shape = SHAPES[k % len(SHAPES)]
        colour = np.array(COLOURS[k % len(COLOURS)], dtype=np.float64)
        for _attempt in range(10):
            side = rng.uniform(0.10, 0.40) * short
            aspect = rng.uniform(0.8, 1.25)
            rx, ry = side * aspect / 2, side / aspect / 2
            truncated = rng.random() < 0.1
            if truncated:  # centre near a border: part of the shape falls outside
                cx = float(rng.choice([rng.uniform(-0.2, 0.3) * rx, w - rng.uniform(-0.2, 0.3) * rx]))
                cy = rng.uniform(ry, h - ry)
            else:
                cx, cy = rng.uniform(rx, w - rx), rng.uniform(ry, h - ry)
            box = (cx - rx, cy - ry, cx + rx, cy + ry)
            # Overlaps are welcome, hiding an object behind another is not.
            if all(_iou(box, other) < 0.3 for other in placed):
                break
        else:
            continue
        difficult = rng.random() < 0.05
        shade = colour * rng.uniform(0.85, 1.1)
        if difficult:  # faint: blended into the background
            shade = 0.35 * colour + 0.65 * canvas[int(np.clip(cy, 0, h - 1)), int(np.clip(cx, 0, w - 1))]
        x1, y1, x2, y2 = _draw(canvas, shape, np.clip(shade, 0, 255), cx, cy, rx, ry, rng.uniform(-0.25, 0.25))
        placed.append(box)
        cx1, cy1 = max(0, int(math.floor(x1))), max(0, int(math.floor(y1)))
        cx2, cy2 = min(w, int(math.ceil(x2))), min(h, int(math.ceil(y2)))
        if cx2 - cx1 < 4 or cy2 - cy1 < 4:
            continue
        cut = x1 < 0 or y1 < 0 or x2 > w or y2 > h
        objects.append((names[k], (cx1, cy1, cx2, cy2), difficult, cut))
    return canvas, objects


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _xml(image_id: str, w: int, h: int, objects) -> str:
    parts = [
        "<annotation>\n\t<folder>VOC2007</folder>\n",
        f"\t<filename>{image_id}.jpg</filename>\n",
        "\t<source><database>drivestage synthetic</database></source>\n",
        f"\t<size><width>{w}</width><height>{h}</height><depth>3</depth></size>\n",
        "\t<segmented>0</segmented>\n",
    ]
    for name, (x1, y1, x2, y2), difficult, truncated in objects:
        parts.append(
            f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n"
            f"\t\t<truncated>{int(truncated)}</truncated>\n\t\t<difficult>{int(difficult)}</difficult>\n"
            f"\t\t<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>\n"
            "\t</object>\n"
        )
    parts.append("</annotation>\n")
    return "".join(parts)


# --------------------------------------------------------------------------- the dataset

def make_synthetic_voc(
    out_dir: Union[str, "os.PathLike[str]"],
    *,
    images: int,
    classes: int,
    seed: int = 0,
    image_size: tuple[int, int] = (200, 400),
    zip_path: Union[str, "os.PathLike[str]", None] = None,
    jpeg_quality: int = 90,
    trainval_percent: float = 0.9,
    train_percent: float = 0.9,
) -> SynthResult:
    """Write ``OUT/VOCdevkit/VOC2007/{Annotations,JPEGImages,ImageSets/Main}``, ``OUT/classes.txt``,
    ``OUT/2007_train.txt`` and ``OUT/2007_val.txt``; with ``zip_path`` also the recipe's zip
    (``VOCdevkit/...`` at its root). Image sides are drawn uniformly from ``image_size``.
    """
    if images < 1:
        raise DataError(f"--images must be at least 1, got {images}")
    if not 16 <= image_size[0] <= image_size[1]:
        raise DataError(f"image_size must be (min, max) with 16 <= min <= max, got {image_size}")
    names = synth_class_names(classes)
    out = Path(out_dir)
    devkit = out / "VOCdevkit"
    voc = devkit / "VOC2007"
    earlier = _refuse_another_dataset(voc)
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    classes_file = out / "classes.txt"
    classes_file.write_text("".join(n + "\n" for n in names), encoding="utf-8")

    root_rng = np.random.default_rng(seed)
    ids = [f"{i + 1:06d}" for i in range(images)]
    boxes_by_id: dict[str, list] = {}
    total = 0
    params = [int(cv2.IMWRITE_JPEG_QUALITY), int(jpeg_quality)]
    for image_id, child in zip(ids, root_rng.spawn(images)):
        canvas, objects = _render(child, names, image_size)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), params)
        if not ok:  # pragma: no cover - OpenCV without a JPEG codec
            raise DataError("OpenCV could not encode a JPEG")
        (voc / "JPEGImages" / f"{image_id}.jpg").write_bytes(buf.tobytes())
        h, w = canvas.shape[:2]
        (voc / "Annotations" / f"{image_id}.xml").write_text(_xml(image_id, w, h, objects), encoding="utf-8")
        boxes_by_id[image_id] = [(*box, names.index(n)) for n, box, difficult, _ in objects if not difficult]
        total += len(objects)
    for stale in sorted(earlier - set(ids)):
        # An earlier, larger set's (ux34): in no split, yet packed into --zip with this one.
        for path in (voc / "Annotations" / f"{stale}.xml", voc / "JPEGImages" / f"{stale}.jpg"):
            path.unlink(missing_ok=True)

    # Splits as the port makes them: trainval/test, then train/val inside trainval.
    split_rng = np.random.default_rng([seed, 1])
    perm = split_rng.permutation(images)
    n_trainval = max(1, int(images * trainval_percent)) if images > 1 else 1
    n_train = max(1, int(n_trainval * train_percent))
    trainval = sorted(ids[i] for i in perm[:n_trainval])
    test = sorted(ids[i] for i in perm[n_trainval:])
    train = sorted(trainval[i] for i in split_rng.permutation(len(trainval))[:n_train])
    val = sorted(set(trainval) - set(train))
    sets = voc / "ImageSets" / "Main"
    for name, members in (("trainval", trainval), ("test", test), ("train", train), ("val", val)):
        (sets / f"{name}.txt").write_text("".join(m + "\n" for m in members), encoding="utf-8")

    line_files = []
    for name, members in (("train", train), ("val", val)):
        path = out / f"2007_{name}.txt"
        jpeg = (voc / "JPEGImages").resolve()
        path.write_text(
            "".join(format_annotation_line(str(jpeg / f"{m}.jpg"), boxes_by_id[m]) + "\n" for m in members),
            encoding="utf-8",
        )
        line_files.append(path)

    written_zip = None
    if zip_path is not None:
        written_zip = Path(zip_path)
        written_zip.parent.mkdir(parents=True, exist_ok=True)
        _write_zip(devkit, written_zip)
    log.info("synthetic VOC: %d images, %d objects, %d classes in %s", images, total, classes, devkit)
    return SynthResult(devkit, classes_file, line_files[0], line_files[1], written_zip, names, images, total)


#: What every annotation synth-data writes says, in its first lines (``_xml``).
_MARK = b"<database>drivestage synthetic</database>"


def _refuse_another_dataset(voc: Path) -> set[str]:
    """DataError when ``voc`` holds an annotation or an image synth-data did not write;
    else the ids of the synthetic set there (none: an empty set).
    ``trainer synth-data data`` with the user's own VOC2007 in data/VOCdevkit wrote its
    000001.jpg... over theirs (VOC2007 uses the same ids) and replaced the dataset's own
    splits; running it again over a synthetic set is fine (the same seed writes the same)."""
    synthetic = set()
    for folder, kind in ((voc / "Annotations", ".xml"), (voc / "JPEGImages", "")):
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            if kind and ext == kind and entry.is_file() and _written_here(entry.path):
                synthetic.add(stem)
            elif kind or stem not in synthetic:
                raise DataError(f"{voc} holds a dataset synth-data did not write (e.g. "
                                f"{entry.path}), which the synthetic one would be written over; "
                                "give another OUT")
    return synthetic


def _written_here(xml: str) -> bool:
    try:
        with open(xml, "rb") as fh:
            return _MARK in fh.read(512)
    except OSError:
        return False


def _write_zip(devkit: Path, zip_path: Path) -> None:
    """Zip ``devkit`` with ``VOCdevkit/`` at the root; JPEGs stored (already compressed)."""
    tmp = zip_path.with_name(zip_path.name + ".partial")
    with zipfile.ZipFile(tmp, "w") as zf:
        for folder, dirnames, files in os.walk(devkit):
            dirnames.sort()
            for name in sorted(files):
                full = Path(folder) / name
                arc = Path("VOCdevkit") / full.relative_to(devkit)
                method = zipfile.ZIP_STORED if name.endswith(".jpg") else zipfile.ZIP_DEFLATED
                zf.write(full, arc.as_posix(), compress_type=method)
    os.replace(tmp, zip_path)
