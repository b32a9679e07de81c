"""``tmp_path`` on a tmpfs of its own, for the tests that write and remove thousands of small
files (sweeps of Ctrl-Cs and SIGKILLs, extractions of hundreds of members): imported into a
test module (``from _ramdisk import tmp_path``), it replaces pytest's there, for the test and
for every fixture it uses (the emulator's data folder too).

On this VM's disk (ext4 mounted with ``discard``) creating and removing those files cost more
kernel time and waiting than the tests' own work: test_interrupt_commands.py took 146 s on
the disk, 78 s here. What such a test checks does not depend on the file system (the same
calls are interrupted, the same bytes compared). What a test leaves open under it is still
found: before the tmpfs goes (tests/conftest.py looks only after, and would not see it).
Where no tmpfs can be mounted (not root; CI and the development machines run as root) the
test runs on the disk, as before.
"""
from __future__ import annotations

import gc
import os

import pytest

from _tmpfs import mount_tmpfs, unmount


def _open_under(folder: str) -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the listing's own descriptor, closed since
            continue
        if target.startswith(folder + os.sep):
            out.append(target)
    return sorted(out)


@pytest.fixture
def tmp_path(tmp_path):
    """pytest's ``tmp_path``, with a tmpfs mounted on it where one can be (see above)."""
    point = tmp_path / "ram"
    try:
        mount_tmpfs(point, 2 << 30, inodes=400_000)
    except OSError:
        yield tmp_path
        return
    try:
        yield point
    finally:
        left = _open_under(str(point))
        if left:
            gc.collect()  # a file object in a reference cycle is closed by the collector
            left = _open_under(str(point))
        unmount(point)
    assert left == [], f"files left open: {', '.join(left)}"
