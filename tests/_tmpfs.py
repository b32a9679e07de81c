"""A small file system that really fills up: a tmpfs of a few KiB mounted for one test.

Mounting needs root (CI and the development machines run as root); elsewhere the tests that
need one are skipped, saying why. The mount is lazily detached after the test even when a
file in it is still open.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

import pytest

_MNT_DETACH = 2


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def mount_tmpfs(point: Path, size: int, *, inodes: int = 1000) -> None:
    """Mount a tmpfs of ``size`` bytes (rounded up to pages) at ``point``; OSError if not
    allowed."""
    point.mkdir(parents=True, exist_ok=True)
    opts = f"size={size},nr_inodes={inodes},mode=0755".encode()
    if _libc().mount(b"tmpfs", os.fsencode(point), b"tmpfs", 0, opts) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(point))


def unmount(point: Path) -> None:
    """Detach the file system at ``point`` (lazily: a file still open keeps it alive)."""
    if _libc().umount2(os.fsencode(point), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(point))


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(size)`` -> the folder of a fresh tmpfs of ``size`` bytes."""
    mounted: list[Path] = []

    def make(size: int, *, inodes: int = 1000) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        try:
            mount_tmpfs(point, size, inodes=inodes)
        except OSError as exc:
            pytest.skip(f"a small tmpfs is needed to fill a disk for real: {exc}")
        mounted.append(point)
        return point

    yield make
    for point in reversed(mounted):
        unmount(point)
