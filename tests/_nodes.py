"""Special files made in a test's own folder: a FIFO, or a character device such as
/dev/null (1, 3) — never the system's own (attackcli40: a rename into place as root
replaced /dev/null)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest


def special_node(folder: Path, kind: str, suffix: str) -> str:
    """``folder/<kind><suffix>`` made as ``kind`` ("fifo", or "device"); a device needs root
    (skipped without it: Colab runs as root, where it matters)."""
    path = str(folder / f"{kind}{suffix}")
    if kind == "fifo":
        os.mkfifo(path)
    else:
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("mknod needs root (as Colab runs: where it matters)")
    return path
