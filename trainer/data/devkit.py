"""A VOCdevkit: its folder (``VOC<year>`` inside), the ``Annotations/*.xml`` files it holds
(:func:`parse_voc_xml`) and the evaluation's ground truth they give; split from
:mod:`trainer.data.voc` (the port's annotation lines and ``prepare_voc``) at its line cap.
"""
from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from trainer.data.images import open_regular
from trainer.errors import DataError

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class VocObject:
    """One ``<object>`` of a VOC annotation."""

    name: str
    box: tuple[float, float, float, float]
    difficult: bool = False
    truncated: bool = False


def find_voc_root(root: PathLike, year: str = "2007") -> Path:
    """The ``VOCdevkit`` folder given it or its parent; error if ``VOC<year>`` is not inside."""
    root = Path(root)
    for candidate in (root, root / "VOCdevkit", root.parent if root.name.startswith("VOC") else None):
        if candidate is not None and (candidate / f"VOC{year}").is_dir():
            return candidate
    raise DataError(
        f"no VOC{year} folder under {root}; give the VOCdevkit folder (the one holding VOC{year}/Annotations)"
    )


#: Largest box coordinate read: past any image side the trainer decodes (MAX_PIXELS wide).
_MAX_COORD = 2.0 ** 31

#: Most bytes of a VOC XML read (one of VOC2007's is 1-2 KB; 16 MiB is a hundred thousand objects).
_MAX_XML_BYTES = 16 << 20


def parse_voc_xml(path: PathLike) -> tuple[tuple[int, int] | None, list[VocObject]]:
    """``((height, width) or None, objects)`` of one VOC XML file."""
    try:
        with open_regular(path, "annotation", "the XML file") as fh:  # (a FIFO is refused)
            size = os.fstat(fh.fileno()).st_size
            if size > _MAX_XML_BYTES:  # (a sparse file of any size takes no disk)
                raise DataError(f"annotation {path} is {size / 2 ** 20:.1f} MiB, more than a VOC "
                                f"annotation ever is ({_MAX_XML_BYTES >> 20} MiB); is it the right "
                                "file?")
            data = fh.read()
    except FileNotFoundError:
        raise DataError(f"annotation {path} does not exist") from None
    except OSError as exc:
        raise DataError(f"cannot read annotation {path}: {exc.strerror or exc}") from None
    root = _xml_root(data, path)
    for el in root.iter():  # <annotation xmlns="..."> (some exporters): match the bare names
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            el.tag = el.tag.split("}", 1)[1]
    size = None
    size_el = root.find("size")
    if size_el is not None:
        try:
            size = (int(float(size_el.findtext("height", "0"))), int(float(size_el.findtext("width", "0"))))
        except (ValueError, OverflowError):  # (int(inf) overflows: <width>inf</width> was a traceback)
            size = None
    objects = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        bnd = obj.find("bndbox")
        if bnd is None:
            raise DataError(f"annotation {path}: object {name!r} has no <bndbox>")
        try:
            box = tuple(float(bnd.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            # float() takes "nan" and "inf"; beyond any image side (1e39) is inf as float32,
            # the lines' and the evaluation's type: a truth box no detection could match.
            if not all(math.isfinite(v) and abs(v) < _MAX_COORD for v in box):
                raise ValueError
        except (TypeError, ValueError):
            raise DataError(f"annotation {path}: object {name!r} has a bad <bndbox>") from None
        difficult = _flag(obj.findtext("difficult"))
        if difficult is None:
            raise DataError(f"annotation {path}: object {name!r} has <difficult>{obj.findtext('difficult')}"
                            "</difficult>; expected 0 or 1")
        truncated = bool(_flag(obj.findtext("truncated")))  # unused by training: never fatal
        objects.append(VocObject(name, box, difficult, truncated))  # type: ignore[arg-type]
    return size, objects


_DECLARED = re.compile(rb"""\A\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _xml_root(data: bytes, path: PathLike) -> ET.Element:
    """The root element of an XML file's bytes, in the encoding it declares."""
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise DataError(f"annotation {path} is not valid XML: {exc}") from None
    except ValueError:
        pass  # "multi-byte encodings are not supported": expat reads UTF-8/16 and Latin-1 only
    # A file declaring GBK, GB2312, Big5 or Shift_JIS (Chinese and Japanese labelling tools
    # write them) was a ValueError traceback: Python's codec decodes it for expat.
    declared = _DECLARED.match(data)
    encoding = declared.group(1).decode("ascii") if declared else "?"
    try:
        text = data.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        raise DataError(f"annotation {path} declares encoding {encoding!r} but is not in it; save "
                        "it as UTF-8") from None
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise DataError(f"annotation {path} is not valid XML: {exc}") from None


def empty_box(box: Sequence[float]) -> bool:
    """Whether a VOC box has no area in the whole pixels the lines keep (xmax <= xmin or
    ymax <= ymin): prepare-voc leaves it out of the lines, evaluation out of the truth."""
    x1, y1, x2, y2 = (int(v) for v in box)
    return x2 <= x1 or y2 <= y1


def _flag(text: str | None) -> bool | None:
    """A VOC flag: 0/1 as VOC writes it, a float or a boolean word as other tools do; None if neither."""
    value = (text or "0").strip().lower()
    if value in ("", "false", "no"):
        return False
    if value in ("true", "yes"):
        return True
    try:
        return float(value) != 0
    except ValueError:
        return None


def load_voc_ground_truth(
    voc_root: PathLike, year: str, image_ids: Sequence[str], classes: Sequence[str],
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image id: ``(boxes [m, 4] float32, labels [m] int64, difficult [m] bool)``.

    Difficult objects are kept and flagged (the mAP ignores them); objects of classes not in
    ``classes`` are left out.
    """
    voc = find_voc_root(voc_root, year) / f"VOC{year}"
    index = {name: i for i, name in enumerate(classes)}
    out = {}
    for image_id in image_ids:
        _, objects = parse_voc_xml(voc / "Annotations" / f"{image_id}.xml")
        kept = [o for o in objects if o.name in index]
        out[image_id] = (
            np.array([o.box for o in kept], dtype=np.float32).reshape(-1, 4),
            np.array([index[o.name] for o in kept], dtype=np.int64),
            np.array([o.difficult for o in kept], dtype=bool),
        )
    return out
