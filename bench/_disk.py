"""What the disk and memory cost an extractor here: creating files, the minutes after a
deletion, and new pages of memory.

On ext4 without a journal (the development VM's disk), creating a file scans past every inode
of its block group freed in the last 1-6 minutes (``recently_deleted`` in ``find_inode_bit``,
fs/ext4/ialloc.c). bench/pull.py therefore keeps its extracted trees until it ends
(:class:`Retired`) and waits out an earlier run's deletions (:func:`settle`).

A VM whose kernel hands free memory back to its host (virtio-balloon free page reporting, as
on the development VM) pays the host for every page it touches again: writing into the page
cache then costs several times what it costs on a machine that keeps its memory, and an
extraction writes the archive's size a second time. :func:`page_cost` measures it.
"""
from __future__ import annotations

import ctypes
import mmap
import os
import resource
import sys
import tempfile
import time

class Retired:
    """Where extracted trees go instead of being deleted while the bench measures.

    On ext4 without a journal (the development VM's disk), creating a file scans past every
    inode of its block group deleted in the last 1-6 minutes (``recently_deleted`` in
    ``find_inode_bit``): after deleting a 20,000-member tree, each new file cost about 1 ms of
    kernel time instead of 25 us, so whichever extractor ran after a deletion lost 10-20 s.
    Trees are renamed here (their top-level files, the zip and the stamps, are deleted: a
    handful of inodes) and deleted only when the bench ends."""

    def __init__(self, folder: str):
        self.folder, self.count = folder, 0
        os.makedirs(folder, exist_ok=True)

    def __call__(self, path: str) -> None:
        if not os.path.isdir(path):
            return
        for entry in os.scandir(path):
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
        self.count += 1
        os.rename(path, os.path.join(self.folder, str(self.count)))


def create_cost(folder: str, n: int = 2000) -> float:
    """Kernel seconds per file to create ``n`` empty files in a new folder under ``folder``:
    what every extractor pays per member. The files stay (see :class:`Retired`)."""
    tmp = tempfile.mkdtemp(prefix="create-", dir=folder)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    for i in range(n):
        os.close(os.open(os.path.join(tmp, str(i)), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o644))
    return (resource.getrusage(resource.RUSAGE_SELF).ru_stime - before) / n


#: ext4 skips (and scans past) inodes freed in the last 60 s, or 360 s while their inode
#: table block is still dirty (``RECENTCY_MIN`` + ``RECENTCY_DIRTY`` in fs/ext4/ialloc.c).
RECENT_S = 370.0


def marker(workdir: str) -> str:
    """The file in which a run notes when it deleted its trees."""
    return os.path.join(workdir, ".trees-deleted-at")


def settle(workdir: str, folder: str, limit_s: float) -> list[float]:
    """Wait (at most ``limit_s``) until the trees an earlier run deleted no longer slow down
    creating files; returns the creation costs seen before and after, in microseconds.

    A probe cannot tell on its own: new folders land in other block groups than the probe's.
    So the end of each run writes when it deleted its trees, and this waits until
    ``RECENT_S`` has passed since then."""
    seen = [create_cost(folder, 500) * 1e6]
    try:
        with open(marker(workdir)) as fh:
            wait = float(fh.read()) + RECENT_S - time.time()
    except (OSError, ValueError):
        wait = 0.0
    wait = min(wait, limit_s)
    if wait > 0:
        print(f"an earlier run deleted its trees {RECENT_S - wait:.0f} s ago: creating a file "
              f"costs {seen[0]:.0f} us now (ext4 scans recently freed inodes on every create); "
              f"waiting {wait:.0f} s for that to pass (--settle 0: do not wait) ...",
              file=sys.stderr)
        time.sleep(wait)
        seen.append(create_cost(folder, 500) * 1e6)
    return seen


def page_cost(mib: int = 256) -> dict:
    """Kernel seconds per GiB to fault in ``mib`` MiB of memory never touched before
    (``fresh``), then the same again at once (``reused``: pages just freed), and what the
    kernel says it has handed back to the host (``reported_gib``; None: no free page
    reporting here)."""
    def touch() -> float:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        m = mmap.mmap(-1, mib << 20)
        try:
            buf = ctypes.c_char.from_buffer(m)
            try:
                ctypes.memset(ctypes.addressof(buf), 1, mib << 20)
            finally:
                del buf
        finally:
            m.close()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_stime - before) * 1024 / mib

    fresh = touch()
    reused = touch()
    try:
        with open("/sys/module/page_reporting/parameters/reported_kib") as fh:
            reported: "float | None" = int(fh.read()) / 2**20
    except (OSError, ValueError):
        reported = None
    return {"fresh_s_per_gib": fresh, "reused_s_per_gib": reused, "reported_gib": reported}
