"""The port's annotation lines (``path x1,y1,x2,y2,cls ...``), written from a VOCdevkit
(:mod:`trainer.data.devkit`: its folder and XML annotations).

``prepare_voc`` does what the port's ``voc_annotation.py`` does, so users' existing
``2007_train.txt`` files and the ones we write are interchangeable:

* mode 0: write the ImageSets splits, then the annotation lines;
* mode 1: only the splits (``ImageSets/Main/{trainval,train,val,test}.txt``);
* mode 2: only the annotation lines (``2007_train.txt``, ``2007_val.txt``) from existing splits.

Splits: ``trainval_percent`` (0.9) of the annotated images go to trainval, ``train_percent``
(0.9) of those to train, the rest to val; the remainder is test. Unlike the port the file list
is sorted before sampling, so a seed gives the same split on every filesystem.
"""
from __future__ import annotations

import errno
import logging
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np
from PIL import Image

from trainer.data.devkit import PathLike, empty_box, find_voc_root, parse_voc_xml
from trainer.data.images import open_regular
from trainer.errors import DataError

log = logging.getLogger(__name__)

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
#: Image files an id may have, in order of preference; matched in any letter case (.Jpg).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

__all__ = [
    "VOC_CLASSES",
    "PrepareReport",
    "read_text",
    "cannot_write",
    "read_classes",
    "parse_annotation_line",
    "format_annotation_line",
    "read_annotation_file",
    "prepare_voc",
]


# --------------------------------------------------------------------------- classes

def read_text(path: Path) -> str:
    """A text file of the dataset (classes, splits, annotation lines) as UTF-8, a byte order
    mark dropped (Notepad writes one). Another encoding is a :class:`DataError` naming the
    file and line: it was a ``UnicodeDecodeError`` traceback (a file saved as GBK or
    Windows-1252 by a Windows editor). FileNotFoundError is the caller's to say; a FIFO is
    refused, not waited on."""
    try:
        with open_regular(path, "text file", "a text file") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise
    except OSError as exc:  # (a folder given for a file: was an IsADirectoryError traceback)
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DataError(f"{path} is not UTF-8 text (line {line} holds the byte "
                        f"0x{data[exc.start]:02X}); save it as UTF-8") from None


def read_classes(path_or_list: Union[PathLike, Sequence[str]]) -> list[str]:
    """Class names from a file (one per line, blank lines ignored) or from a list."""
    if isinstance(path_or_list, (str, os.PathLike)):
        path = Path(path_or_list)
        try:
            text = read_text(path)
        except FileNotFoundError:
            raise DataError(f"classes file {path} does not exist; give a text file with one class name per line") from None
        names = [line.strip() for line in text.splitlines() if line.strip()]
        where = str(path)
    else:
        names = [str(n).strip() for n in path_or_list]
        where = "the class list"
    if not names:
        raise DataError(f"{where} names no classes; give one class name per line")
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise DataError(f"{where} names a class twice: {', '.join(sorted(set(dupes)))}")
    return names


# --------------------------------------------------------------------------- annotation lines

_NUMBER = r"-?\d+(?:\.\d*)?"
_BOX = re.compile(rf"^({_NUMBER}),({_NUMBER}),({_NUMBER}),({_NUMBER}),(\d+)$")


def parse_annotation_line(line: str) -> tuple[str, np.ndarray]:
    """Split an annotation line into ``(image_path, boxes [n, 5] float32 x1,y1,x2,y2,cls)``.

    Box tokens are read from the end of the line, so image paths containing spaces survive
    (the port splits on every space and breaks on them), as they are: two spaces in a row or
    a tab stay in the path (joining its words back with one space named a file that does not
    exist).
    """
    path = line.strip()
    if not path:
        raise DataError("empty annotation line; expected 'path x1,y1,x2,y2,cls ...'")
    boxes = []
    while True:
        rest = path.rsplit(None, 1)
        if len(rest) < 2 or "," not in rest[1]:
            break
        path, token = rest
        match = _BOX.match(token)
        if not match:
            raise DataError(
                f"bad box {token!r} in annotation line {line.strip()[:120]!r}; expected x1,y1,x2,y2,class "
                "with numbers and an integer class"
            )
        boxes.append([float(v) for v in match.groups()])
    if _BOX.match(path):
        raise DataError(f"annotation line {line.strip()[:120]!r} has boxes but no image path")
    arr = np.array(boxes[::-1], dtype=np.float32).reshape(-1, 5)
    return path, arr


def _readable_back(line: str, image_path: str) -> bool:
    """Whether :func:`parse_annotation_line` gives ``image_path`` back from ``line``: a name
    with a comma after a space (``frame 1,2.jpg``) reads as a bad box, and then no training
    could start at all."""
    try:
        return parse_annotation_line(line)[0] == image_path
    except DataError:
        return False


def format_annotation_line(image_path: str, boxes: Iterable[Sequence[float]]) -> str:
    """The port's line for one image: integer pixel boxes after the path."""
    parts = [str(image_path)]
    for b in boxes:
        parts.append(",".join(str(int(v)) for v in b[:5]))
    return " ".join(parts)


def read_annotation_file(path: PathLike, root: PathLike | None = None) -> list[str]:
    """Non-blank lines of an annotation file; relative image paths are resolved against ``root``.

    Without ``root`` relative paths are kept as written (the port resolves them against the
    working directory).
    """
    path = Path(path)
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise DataError(
            f"annotation file {path} does not exist; write it with 'trainer prepare-voc ROOT --mode 2'"
        ) from None
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            image, _ = parse_annotation_line(raw)
        except DataError as exc:
            raise DataError(f"{path}:{number}: {exc}") from None
        if root is not None and not os.path.isabs(image):
            rest = raw.strip()[len(image):]
            raw = str(Path(root) / image) + rest
        lines.append(raw.strip())
    if not lines:
        raise DataError(f"annotation file {path} has no lines; is it the right file?")
    return lines


# --------------------------------------------------------------------------- prepare_voc

@dataclass
class PrepareReport:
    """What ``prepare_voc`` did: split sizes, per-class object counts, files written, warnings."""

    splits: dict[str, int] = field(default_factory=dict)
    class_counts: dict[str, int] = field(default_factory=dict)
    unknown_counts: dict[str, int] = field(default_factory=dict)
    difficult_skipped: int = 0
    empty_boxes: list[str] = field(default_factory=list)
    unturned: list[str] = field(default_factory=list)
    unnamed: list[str] = field(default_factory=list)  # names a line cannot hold
    missing_images: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def table(self) -> str:
        """The per-class count table, as the port prints it after writing the lines."""
        if not self.class_counts:
            return ""
        width = max(12, *(len(n) for n in self.class_counts))
        rule = "-" * (width + 13)
        rows = [rule, f"| {'class':<{width}} | {'objects':>7} |", rule]
        rows += [f"| {n:<{width}} | {c:>7} |" for n, c in self.class_counts.items()]
        rows.append(rule)
        return "\n".join(rows)


def _read_ids(path: Path) -> list[str]:
    try:
        return [line.strip() for line in read_text(path).splitlines() if line.strip()]
    except FileNotFoundError:
        raise DataError(
            f"split file {path} does not exist; write the splits first with 'trainer prepare-voc ROOT --mode 1'"
        ) from None


#: What to do when a file cannot be written (a path under a file, a read-only or full disk:
#: was an OSError traceback).
OUT_ADVICE = "give --out a folder you can write"
_SPLITS_ADVICE = ("the splits are written into the dataset; --mode 2 writes only the annotation "
                  "lines (under --out), from the splits it has")


def _write_lines(path: Path, lines: Iterable[str], advice: str = OUT_ADVICE) -> None:
    """Readers never see half a split file. The temporary file's name is a fresh one made
    with O_EXCL (:func:`drivestage.localfs.atomic_file`): the fixed ``train.txt.tmp`` was
    opened as it was, and a dataset holding a link of that name had its target outside the
    dataset written over."""
    from drivestage.localfs import atomic_file, umask

    try:
        with atomic_file(str(path), mode=0o666 & ~umask()) as fh:
            fh.write("".join(line + "\n" for line in lines).encode("utf-8"))
    except OSError as exc:
        raise cannot_write(path, exc, advice) from None


def _make_folder(folder: Path, advice: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_write(folder, exc, advice) from None


def cannot_write(path: Path, exc: OSError, advice: str) -> DataError:
    why = "not a folder" if exc.errno in (errno.ENOTDIR, errno.EEXIST) else \
        (exc.strerror or str(exc)).lower()
    return DataError(f"cannot write {path} ({why}); {advice}")


def _image_index(folder: Path) -> dict[str, Path]:
    """id -> image file in ``folder`` (one listing for all ids; the preferred extension wins
    when an id has several)."""
    rank = {ext: i for i, ext in enumerate(IMAGE_EXTENSIONS)}
    found: dict[str, tuple[int, Path]] = {}
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return {}
    for entry in entries:
        stem, ext = os.path.splitext(entry.name)
        r = rank.get(ext.lower())
        if r is not None and entry.is_file() and (stem not in found or r < found[stem][0]):
            found[stem] = (r, Path(entry.path))
    return {stem: path for stem, (_, path) in found.items()}


def _annotated_unturned(image: Path, xml_size: tuple[int, int]) -> bool:
    """Whether EXIF turns ``image`` by 90 degrees (decoding does) while its XML ``(height, width)``
    is the stored, unturned size: boxes drawn by a tool that ignores EXIF (labelImg)."""
    try:
        with Image.open(image) as im:
            w, h = im.size
            turned = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except (OSError, Image.DecompressionBombError):
        return False  # decoding the image reports it
    return turned and h != w and tuple(xml_size) == (h, w)


def _refuse_other_splits(sets_dir: Path, split: dict[str, list[str]]) -> None:
    """DataError when ``sets_dir`` holds a split file other than the one ``split`` would
    write (the same seed again writes the same: no question then)."""
    other = sorted(f"{name}.txt" for name, members in split.items()
                   if (sets_dir / f"{name}.txt").is_file()
                   and _read_ids(sets_dir / f"{name}.txt") != members)
    if other:
        raise DataError(f"{sets_dir} holds the dataset's own splits ({', '.join(other)}); new "
                        "random ones would replace them. Use --mode 2 to write the annotation "
                        "lines from them, or --force to replace them")


def prepare_voc(
    voc_root: PathLike,
    mode: int,
    classes: Union[PathLike, Sequence[str]] = VOC_CLASSES,
    out_dir: PathLike = ".",
    *,
    year: str = "2007",
    image_sets: Sequence[str] = ("train", "val"),
    trainval_percent: float = 0.9,
    train_percent: float = 0.9,
    seed: int = 0,
    replace_splits: bool = False,
) -> PrepareReport:
    """Write VOC splits (modes 0, 1) and annotation lines (modes 0, 2); see the module doc.
    Splits other than the ones this call would write are never replaced unless
    ``replace_splits``: a dataset's own (VOC2007's test set) define what it measures."""
    if mode not in (0, 1, 2):
        raise DataError(f"mode must be 0, 1 or 2, got {mode}")
    for name, value in (("trainval_percent", trainval_percent), ("train_percent", train_percent)):
        if not 0.0 <= value <= 1.0:
            raise DataError(f"{name} must be between 0 and 1, got {value}")
    names = read_classes(classes)
    devkit = find_voc_root(voc_root, year)
    voc = devkit / f"VOC{year}"
    report = PrepareReport()

    if mode in (0, 1):
        ann_dir = voc / "Annotations"
        if not ann_dir.is_dir():
            raise DataError(f"{ann_dir} does not exist; a VOC dataset keeps its XML files there")
        ids = sorted(p.name[:-4] for p in ann_dir.iterdir() if p.name.endswith(".xml"))
        if not ids:
            raise DataError(f"{ann_dir} holds no .xml annotations")
        rng = random.Random(seed)
        n_trainval = int(len(ids) * trainval_percent)
        n_train = int(n_trainval * train_percent)
        trainval = set(rng.sample(ids, n_trainval))
        train = set(rng.sample(sorted(trainval), n_train))
        split = {
            "trainval": [i for i in ids if i in trainval],
            "test": [i for i in ids if i not in trainval],
            "train": [i for i in ids if i in train],
            "val": [i for i in ids if i in trainval and i not in train],
        }
        sets_dir = voc / "ImageSets" / "Main"
        if not replace_splits:
            _refuse_other_splits(sets_dir, split)
        _make_folder(sets_dir, _SPLITS_ADVICE)
        for name, members in split.items():
            _write_lines(sets_dir / f"{name}.txt", members, _SPLITS_ADVICE)
            report.files.append(sets_dir / f"{name}.txt")
            report.splits[name] = len(members)
            if not members:
                report.warnings.append(
                    f"the {name} split is empty ({len(ids)} annotated images, trainval_percent="
                    f"{trainval_percent}, train_percent={train_percent}); add images or change the percentages"
                )
        log.info("wrote splits to %s: %s", sets_dir, ", ".join(f"{k} {v}" for k, v in report.splits.items()))

    if mode in (0, 2):
        out = Path(out_dir)
        _make_folder(out, OUT_ADVICE)
        index = {name: i for i, name in enumerate(names)}
        counts = np.zeros(len(names), dtype=np.int64)
        unknown: dict[str, int] = {}
        jpeg_dir = voc / "JPEGImages"
        images = _image_index(jpeg_dir)
        for image_set in image_sets:
            ids = _read_ids(voc / "ImageSets" / "Main" / f"{image_set}.txt")
            unique = list(dict.fromkeys(ids))  # an id listed twice would train twice an epoch
            if len(unique) < len(ids):
                n = len(ids) - len(unique)
                report.warnings.append(
                    f"{n} {'id appears' if n == 1 else 'ids appear'} more than once in the "
                    f"{image_set} split; each is written once")
            lines = []
            for image_id in unique:
                image = images.get(image_id)
                if image is None:
                    report.missing_images.append(image_id)
                    continue
                xml = voc / "Annotations" / f"{image_id}.xml"
                xml_size, objects = parse_voc_xml(xml)
                if xml_size is not None and _annotated_unturned(image, xml_size):
                    report.unturned.append(str(image))
                    continue
                boxes = []
                for obj in objects:
                    if obj.name not in index:
                        unknown[obj.name] = unknown.get(obj.name, 0) + 1
                        continue
                    if obj.difficult:
                        report.difficult_skipped += 1
                        continue
                    x1, y1, x2, y2 = (int(v) for v in obj.box)
                    if empty_box(obj.box):  # training would drop it unseen; eval would count it missed
                        report.empty_boxes.append(str(xml))
                        continue
                    cls = index[obj.name]
                    boxes.append((x1, y1, x2, y2, cls))
                    counts[cls] += 1
                line = format_annotation_line(str(image.resolve()), boxes)
                if not _readable_back(line, str(image.resolve())):
                    report.unnamed.append(str(image))
                    continue
                lines.append(line)
            target = out / f"{year}_{image_set}.txt"
            _write_lines(target, lines)
            report.files.append(target)
            report.splits[f"{year}_{image_set}"] = len(lines)
            if not lines:
                report.warnings.append(f"{target.name} is empty: the {image_set} split lists no usable images")
        report.class_counts = {n: int(c) for n, c in zip(names, counts)}
        report.unknown_counts = dict(sorted(unknown.items()))
        if report.missing_images:
            shown = ", ".join(report.missing_images[:5])
            report.warnings.append(
                f"{len(report.missing_images)} images listed in the splits are missing from {jpeg_dir} "
                f"(e.g. {shown}); their lines were not written"
            )
        if report.unturned:
            n, one = len(report.unturned), len(report.unturned) == 1
            report.warnings.append(
                f"{n} {'image is' if one else 'images are'} turned by {'its' if one else 'their'} EXIF "
                f"orientation but {'was' if one else 'were'} annotated unturned (the XML <size> is the stored "
                "one, as labelImg writes it), so the boxes would not match the pixels training sees; "
                f"{'its line was' if one else 'their lines were'} not written (e.g. "
                f"{', '.join(report.unturned[:3])}); remove the EXIF orientation "
                "(exiftool -Orientation= -overwrite_original FILE) and run again"
            )
        if report.unnamed:
            n, one = len(report.unnamed), len(report.unnamed) == 1
            report.warnings.append(
                f"{n} {'image has a name' if one else 'images have names'} the annotation lines "
                f"cannot hold (a space, then a comma: {', '.join(report.unnamed[:3])}); "
                f"{'its line was' if one else 'their lines were'} not written: rename "
                f"{'it' if one else 'them'} (no comma after a space) and run again")
        if report.empty_boxes:
            n, one = len(report.empty_boxes), len(report.empty_boxes) == 1
            report.warnings.append(
                f"{n} {'object' if one else 'objects'} with an empty or inverted box (xmax <= xmin or "
                f"ymax <= ymin) {'was' if one else 'were'} left out (e.g. "
                f"{', '.join(sorted(set(report.empty_boxes))[:3])}); fix the <bndbox>"
            )
        if unknown:
            report.warnings.append(
                "objects of classes not in the classes list were left out: "
                + ", ".join(f"{n} ({c})" for n, c in report.unknown_counts.items())
            )
        if counts.sum() == 0:
            report.warnings.append(
                "no objects of the given classes were found; check that the classes file matches the "
                "<name> tags of the XML annotations"
            )
    for warning in report.warnings:
        log.warning("%s", warning)
    return report
