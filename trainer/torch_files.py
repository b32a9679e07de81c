"""Loading a PyTorch file from anywhere (weights from the web, checkpoints from Drive or a
shared folder): never code, never a zip bomb, never a structure that spells out to billions.

:func:`load` is the one ``torch.load`` of such files; it raises a :class:`Refused` saying
why, which :mod:`trainer.weights` and :mod:`trainer.checkpoint` word for their users.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from typing import Any, Optional

import torch


class Refused(Exception):
    """Why a file was not loaded (the caller words it: weights or a checkpoint)."""


class ZipBomb(Refused):
    """The zip's records would unpack to far more than the file's size on disk."""

    def __init__(self, unpacked: int, size: int) -> None:
        super().__init__(f"{unpacked} from {size}")
        self.unpacked, self.size = unpacked, size


class PickledObject(Refused):
    """The pickle names a Python object (``name``: ``posix.system``, a model class)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class Unreadable(Refused):
    """torch.load failed (a truncated, damaged or foreign file): ``detail`` is its first line,
    with the exception's type unless the error was the unpickler's."""

    def __init__(self, detail: str, *, unpickler: bool = False) -> None:
        super().__init__(detail)
        self.detail, self.unpickler = detail, unpickler


def zip_bomb(path: str) -> Optional[ZipBomb]:
    """A :class:`ZipBomb` when ``path``'s zip would unpack to far more than its size on disk,
    else None. torch.save writes its records stored, but torch.load inflates DEFLATE ones
    too: 195 kB became a 200 MB tensor, so a 20 MB file from anywhere was 20 GB in memory.
    Only the zip's directory is read."""
    try:
        with zipfile.ZipFile(path) as zf:
            unpacked = sum(max(0, info.file_size) for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None  # (torch.load says what is wrong with it)
    size = os.path.getsize(path)
    return ZipBomb(unpacked, size) if unpacked > 4 * size + (1 << 20) else None


def load(path: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, refusing a zip bomb before anything is read;
    any failure is a :class:`Refused`."""
    if zipfile.is_zipfile(path):
        bomb = zip_bomb(path)
        if bomb is not None:
            raise bomb
    try:
        # weights_only: the file may come from anywhere; never unpickle arbitrary objects.
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's text spans eight lines (ANSI escapes included) and advises weights_only=False,
        # "likely to succeed": the one thing never to do with a file from anywhere.
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found is None:
            raise Unreadable(_unpickler_detail(exc, zipfile.is_zipfile(path)),
                             unpickler=True) from None
        raise PickledObject(found.group(1)) from None
    except Exception as exc:  # torch raises many types for damaged or foreign files
        raise Unreadable(f"{type(exc).__name__}: {_without_advice(first_line(exc))}") from None


def _unpickler_detail(exc: BaseException, zipped: bool) -> str:
    """What torch's unpickler stopped at, in our words (``zipped``: the file is a zip, as
    torch.save writes): a file that is no pickle at all (a file of zeros a crash left, a
    Darknet ``.weights``, a picture) fails so, and the first line of torch's text, all the
    message said, was its advice to load it with ``weights_only=False`` (attacktrain45)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    found = re.search(r"WeightsUnpickler error:\s*([^\n]*\S)", text)
    said = f": {found.group(1).strip()}" if found else ""
    return (f"its pickle holds what torch does not load as weights{said}" if zipped
            else f"not a PyTorch file{said}")


#: A sentence of torch's that speaks of loading the file anyway (``weights_only=False``).
_ADVICE = re.compile(r"weights_only|trusted source|arbitrary code", re.IGNORECASE)


def _without_advice(line: str) -> str:
    """``line`` less its sentences about ``weights_only`` (a file of zeros a crash left is
    one torch takes for its legacy .tar format, and its line was that advice alone)."""
    kept = [s for s in re.split(r"(?<=[.!?])\s+", line) if s and not _ADVICE.search(s)]
    return " ".join(kept) if kept else "not a file torch loads as weights"


def first_line(exc: BaseException) -> str:
    """The first non-blank line of ``exc``'s text (torch's run to many), else its type."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


#: Most values a loaded checkpoint holds outside its tensors (every item of a dict, list or
#: tuple, counted as often as it is reached). One of this trainer holds some thousands (its
#: history, optimizer bookkeeping, RNG states, config); pickle's memo keeps shared references
#: shared, so a list of ten references to one list of ten ..., nine levels deep, is a few
#: hundred bytes on disk and 10**9 values to whatever walks it.
MAX_VALUES = 1_000_000


def too_many_values(obj: Any, limit: int = MAX_VALUES) -> bool:
    """Whether walking ``obj`` (dicts, lists, tuples; tensors and strings are leaves) reaches
    more than ``limit`` values. Iterative and bounded: it stops at the limit."""
    stack, seen = [obj], 0
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            values: Any = list(item.keys()) + list(item.values())
        elif isinstance(item, (list, tuple)):
            values = item
        else:
            continue
        seen += len(values)
        if seen > limit:
            return True
        stack.extend(values)
    return False
