"""Byte sizes as people type and read them: the one rule for every option and setting.

``pull --reserve``, ``push --max-bytes``, ``--chunk-size`` and the trainer's
``drive.max_bytes`` all parse with :func:`parse_size`: a number of bytes, or a number with a
unit, where ``KB``/``MB``/``GB``/``TB`` are decimal (10**3, 10**6, ...) and
``KiB``/``MiB``/``GiB``/``TiB`` and the bare ``K``/``M``/``G``/``T`` are binary (2**10,
2**20, ..., as ``du -h`` prints them). Units are case-insensitive; ``B`` is bytes.
:func:`format_size` prints binary units (``1.5 GiB``).
"""
from __future__ import annotations

import os
import re
import shutil
from fractions import Fraction
from typing import Optional, Union

from drivestage.errors import DiskSpaceError, PolicyError

_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")

#: The rule in one line, for ``--help`` texts and messages.
RULE = "KB, MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB and K, M, G, T powers of 1024"


def parse_size(text: Union[str, int]) -> int:
    """Parse a byte size: ``1234``, ``10GB`` (10 * 10**9), ``10GiB`` / ``10G`` (10 * 2**30).

    Raises :class:`~drivestage.errors.PolicyError` (a usage error, exit 2) showing the bad
    value."""
    if isinstance(text, bool):
        raise PolicyError(f"{text!r} is not a size; use e.g. 500MB or 10GiB")
    if isinstance(text, int):
        return text
    m = _SIZE_RE.match(str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise PolicyError(
            f"size {text!r} is not understood; use a number of bytes or a unit "
            "like 500MB, 10GB (decimal) or 10GiB, 10G (binary)")
    # (exact: a float made 999999999999999999999999TB 1000000000000000042420637374017961984)
    return int(Fraction(m.group(1)) * _UNITS[unit])


def format_size(n: Optional[float]) -> str:
    """Human-readable binary size (``1536`` -> ``1.5 KiB``; None -> ``?``)."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def check_space(dest: str, reserve: int, needed: int, what: str, detail: str = "", *,
                remedy: Optional[str] = None) -> None:
    """Raise DiskSpaceError unless ``dest`` has ``needed`` bytes free beyond ``reserve``;
    ``detail`` follows the amount in the message (what it is made of), ``remedy`` (a
    caller's own way out, e.g. the trainer's) replaces pull's "free some space or pull
    elsewhere"."""
    free = shutil.disk_usage(dest).free - reserve
    if needed > free:
        kept = f" (keeping {format_size(reserve)} in reserve)" if reserve else ""
        lower = ", lower --reserve" if reserve else ""  # (a reserve set too high is a way out)
        raise DiskSpaceError(
            f"not enough free disk space in {dest} to {what}: needs {format_size(needed)} "
            f"({needed} bytes){detail}, only {format_size(max(free, 0))} ({max(free, 0)} bytes) free"
            f"{kept}; {remedy or f'free some space{lower} or pull elsewhere'}", needed=needed,
            free=max(free, 0))


def restore_needs_room(exc: DiskSpaceError, archive: str, dest: str,
                       missing: str, *, whole: bool = True) -> DiskSpaceError:
    """The space error of a rerun that puts back a member deleted by hand: for one small
    file it asked for the whole archive's size ("free some space or extract elsewhere"),
    without saying why, nor the way out that needs no more space. ``whole``: the archive is
    extracted whole again (its records could not say what is in place); else only what is
    missing or changed is written, and that is what did not fit."""
    free = max(exc.free or 0, 0)
    needed = exc.needed or 0
    top = missing.split("/", 1)[0]
    if not whole:
        return DiskSpaceError(
            f"not enough free disk space to extract {os.path.basename(archive)} into {dest}: "
            f"needs {format_size(needed)} ({needed} bytes), only {format_size(free)} ({free} "
            f"bytes) free to put back what is missing or changed here ({missing} first); "
            "free some space and run the same command (the archive is kept)",
            needed=needed, free=free)
    return DiskSpaceError(
        f"not enough free disk space to extract {os.path.basename(archive)} into {dest}: needs "
        f"{format_size(needed)} ({needed} bytes), only {format_size(free)} ({free} bytes) free; "
        f"{missing} is missing or changed here, and putting it back extracts the whole archive "
        f"again beside what is in place: free some space, or delete {top} in {dest} and run "
        "the same command (the archive is kept)", needed=needed, free=free)


def too_large() -> str:
    """Why a write failed with EFBIG ("File too large"), and what to do: this process's
    file-size limit (``ulimit -f``: a batch system's, a container's), else the file system's
    largest file (FAT32 holds none of 4 GiB)."""
    import resource

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        return (f"this process may write no file larger than {format_size(limit)} (its "
                "file-size limit, ulimit -f); raise it (ulimit -f unlimited)")
    return ("the file system holds no file this large (FAT32: none of 4 GiB); write to "
            "another file system")
