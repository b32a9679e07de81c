"""Decoding image files into what the network takes: RGB ``uint8``, no larger than its input.

Training never needs more pixels than the input size: mosaic scales each image to at most
the input, and the letterbox shrinks it to fit. So an image is decoded once into its
*fitted* form (the longer side shrunk to the input size, the aspect ratio kept: the size
``augment.letterbox`` gives it; smaller images stay as they are), and the rest of the
pipeline works on that. JPEGs much larger than the input are decoded at 1/2, 1/4 or 1/8 of
their size by libjpeg itself (its scaled DCT: less work than a full decode and a resize).

The fitted pixels are a pure function of the file's bytes and the input size, which is what
lets ``cache.py`` key them by content. ``FIT_VERSION`` is part of those keys: change it when
the pixels produced here change.
"""
from __future__ import annotations

import errno
import io
import os
import re
from typing import BinaryIO, Optional, Union

import cv2
import numpy as np
from PIL import Image

from drivestage.localfs import NotRegularFileError, open_regular as _open_fd
from trainer.data.augment import letterbox_params
from trainer.errors import DataError

__all__ = ["FIT_VERSION", "MAX_PIXELS", "MAX_FILE_BYTES", "read_image", "read_bytes", "open_regular",
           "header_size", "fitted_shape", "decode_fitted"]

FIT_VERSION = 1

_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def open_regular(path: Union[str, os.PathLike], what: str = "image", fix: str = "the image") -> BinaryIO:
    """``path`` opened for reading when it is a regular file (a link to one included), a
    :class:`DataError` naming it when it is something else; OSError when it cannot be opened.
    A FIFO under a dataset file's name (a tar extracted as it came) is never waited on: a
    plain open() blocked until a writer came, which never does, and training (or a loader
    worker) hung for good."""
    try:
        fd = _open_fd(path)
    except NotRegularFileError as exc:
        if exc.errno == errno.EISDIR:  # (said as open() says it)
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path)) from None
        raise DataError(f"cannot read {what} {path}: not a regular file (a FIFO, socket or "
                        f"device); replace it with {fix}") from None
    return os.fdopen(fd, "rb")


def read_bytes(path: Union[str, os.PathLike]) -> bytes:
    """The file's bytes, or a :class:`DataError` naming it. A file larger than any image the
    trainer decodes is refused before it is read: a sparse file takes no disk (GNU tar ships
    them as such) and any size when read, into every loader worker that meets it."""
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise DataError(f"cannot read image {path}: {size / 2 ** 30:.2f} GiB, more than the "
                                f"{MAX_FILE_BYTES / 2 ** 30:.2f} GiB any image the trainer decodes "
                                "takes; is it an image?")
            return f.read()
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from None


#: Most pixels decoded from one image (after libjpeg's scaling): PIL's decompression-bomb
#: limit, which the image cache applies through PIL too. A PNG of zeros 20 times larger
#: fits in a few MB and would take gigabytes in a loader worker.
MAX_PIXELS = 2 * int(Image.MAX_IMAGE_PIXELS or 89_478_485)
#: Most bytes of an image file read: MAX_PIXELS of 16-bit RGBA, uncompressed (a TIFF), and
#: a little more for its headers.
MAX_FILE_BYTES = MAX_PIXELS * 8 + (16 << 20)
_SCALE = {cv2.IMREAD_REDUCED_COLOR_2: 2, cv2.IMREAD_REDUCED_COLOR_4: 4, cv2.IMREAD_REDUCED_COLOR_8: 8}


def _png_size(data: bytes) -> Optional[tuple[int, int]]:
    """``(h, w)`` from a PNG's IHDR chunk; None if ``data`` is no PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")


def _bomb(name: str, pixels: str) -> str:
    return (f"cannot read image {name}: {pixels} pixels, more than the {MAX_PIXELS:,} the "
            "trainer decodes (a decompression bomb?); shrink it")


def _pil_size(data: bytes, name: str) -> Optional[tuple[int, int]]:
    """``(h, w)`` from the header PIL reads (no pixel decoded); None when PIL does not know
    the format (OpenCV may: it says then whether it can decode it)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Image.DecompressionBombError as exc:  # PIL's own limit is MAX_PIXELS
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise DataError(_bomb(name, f"{int(found.group(1)):,}" if found else "more")) from None
    except (OSError, ValueError, SyntaxError):  # (PIL raises these for damaged headers)
        return None
    return int(h), int(w)


def _decode(data: bytes, flags: int, name: str) -> np.ndarray:
    if not data:  # OpenCV asserts on an empty buffer (a cv2.error, not a None)
        raise DataError(f"cannot read image {name}: the file is missing or not an image")
    hw = _jpeg_size(data) if data[:2] == b"\xff\xd8" else _png_size(data)
    if hw is None:  # TIFF, BMP, WebP (a deflate TIFF bombs as a PNG does): PIL reads the header
        hw = _pil_size(data, name)
    scale = _SCALE.get(flags, 1)
    if hw is not None and (hw[0] // scale) * (hw[1] // scale) > MAX_PIXELS:
        raise DataError(_bomb(name, f"{hw[1]}x{hw[0]}"))
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if image is None and hw is not None:   # (a header, no pixels: not "missing", attacktrain34)
        raise DataError(f"cannot read image {name}: its header says {hw[1]}x{hw[0]}, but its "
                        "pixels cannot be decoded (the file is cut short or damaged: a copy or "
                        "download that did not finish?)")
    if image is None:
        raise DataError(f"cannot read image {name}: the file is missing or not an image")
    return image


def read_image(path: Union[str, os.PathLike]) -> np.ndarray:
    """Decode an image file at full size into RGB ``uint8 [H, W, 3]``; a clear error if it cannot be read."""
    image = _decode(read_bytes(path), cv2.IMREAD_COLOR, str(path))
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image)


def header_size(data: Union[bytes, str, os.PathLike], name: Optional[str] = None) -> tuple[int, int]:
    """``(h, w)`` from the file header alone (before any EXIF rotation); no pixel is decoded.

    ``name`` is the file the bytes came from, for the error message."""
    is_bytes = isinstance(data, (bytes, bytearray, memoryview))
    name = name or (str(data) if not is_bytes else "bytes")
    try:
        with io.BytesIO(data) if is_bytes else open_regular(data) as source, Image.open(source) as im:
            w, h = im.size
    except (OSError, Image.DecompressionBombError) as exc:  # UnidentifiedImageError is an OSError
        # PIL names a BytesIO by its repr; say which file instead.
        reason = "the file is missing or not an image" if is_bytes and "cannot identify" in str(exc) else exc
        raise DataError(f"cannot read image {name}: {reason}") from None
    return int(h), int(w)


def _jpeg_size(data: bytes) -> Optional[tuple[int, int]]:
    """``(h, w)`` from a JPEG's frame header (SOFn), read straight from the bytes; None if not found."""
    # Walked as libjpeg walks it (jdmarker.c): bytes that are no marker (and a stuffed FF 00)
    # are passed over, and TEM and RSTn have no length. Stopping at them instead found no
    # size, and a JPEG hiding a 40000x40000 frame behind one was decoded unchecked.
    i, n = 2, len(data)
    while i + 1 < n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x00 or marker == 0x01 or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker in (0xD9, 0xDA) or i + 9 >= n:  # EOI or SOS before a frame: none
            return None
        length = (data[i + 2] << 8) | data[i + 3]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return (data[i + 5] << 8) | data[i + 6], (data[i + 7] << 8) | data[i + 8]
        i += 2 + length
    return None


def fitted_shape(orig_hw: tuple[int, int], size: int) -> tuple[int, int]:
    """``(h, w)`` of an image of ``orig_hw`` once fitted to ``size`` (the letterbox's resize, never up)."""
    h, w = int(orig_hw[0]), int(orig_hw[1])
    if max(h, w) <= size:
        return h, w
    _, (new_w, new_h), _ = letterbox_params((h, w), size)
    return new_h, new_w


def _reduction(h: int, w: int, size: int) -> int:
    """The largest libjpeg scale-down (2, 4, 8) that keeps the longer side at ``size`` or more."""
    for factor in (8, 4, 2):
        if max(h, w) // factor >= size:
            return factor
    return 1


def decode_fitted(data: bytes, size: int, name: str = "image") -> tuple[np.ndarray, tuple[int, int]]:
    """Decode ``data`` into its fitted RGB ``uint8`` image; returns ``(image, (orig_h, orig_w))``.

    ``orig_h, orig_w`` is the size a full decode gives (EXIF rotation applied, as OpenCV does),
    the frame the annotation boxes are in; box coordinates scale by ``image_w / orig_w`` and
    ``image_h / orig_h``.
    """
    factor = 1
    if data[:2] == b"\xff\xd8":  # JPEG: libjpeg can decode at a fraction of the size
        hw = _jpeg_size(data)
        if hw is not None:
            h, w = hw
            factor = _reduction(h, w, size)
    if factor == 1:
        image = _decode(data, cv2.IMREAD_COLOR, name)
        orig = image.shape[:2]
    else:
        image = _decode(data, _REDUCED[factor], name)
        # The header's size is before EXIF rotation; the decoded image tells whether it turned.
        turned = h != w and image.shape[:2] == (-(-w // factor), -(-h // factor))
        orig = (w, h) if turned else (h, w)
    new_h, new_w = fitted_shape(orig, size)
    if image.shape[:2] != (new_h, new_w):
        # Bilinear is 7x faster than area averaging and aliases little down to half the size,
        # which is all a JPEG ever needs after libjpeg's own scaling.
        mild = new_w * 2 > image.shape[1] and new_h * 2 > image.shape[0]
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR if mild else cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=image), (int(orig[0]), int(orig[1]))
