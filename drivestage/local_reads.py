"""The reads of a directory store's files that may wait on a hung mount (split from
localdir.py at its line cap): a copy's blocks and a file's hash, each read a
:func:`~drivestage.pool.leavable` call, so that a Ctrl-C leaves a read a FUSE daemon that
stopped answering never ends (the kernel waits for its answer through every signal but
SIGKILL: hang51).
"""
from __future__ import annotations

from typing import Iterator

from drivestage.localfs import file_md5
from drivestage.pool import aside, leavable
from drivestage.special_files import open_copied


def read_blocks(full: str, start: int, end: int, block: int) -> Iterator[bytes]:
    """Bytes ``[start, end)`` of the file at ``full``, ``block`` at a time."""
    # (A read of a hung FUSE mount is left by a Ctrl-C: pool.leavable, hang51)
    with leavable():
        opened = open_copied(full)   # (a FIFO put there since the walk: never waited on)
    with opened as fh:
        fh.seek(start)
        remaining = end - start
        while remaining > 0:
            with leavable():
                buf = fh.read(min(block, remaining))
            if not buf:
                return
            remaining -= len(buf)
            yield buf


def mount_md5(full: str, block: int, on_mount: bool) -> str:
    """The md5 of the file at ``full`` (:func:`~drivestage.localfs.file_md5`); on a FUSE or
    network mount (``on_mount``) through :func:`~drivestage.pool.aside`: hashed in the main
    thread (a pull of one file), a read of a hung mount held every Ctrl-C until the mount
    answered (streams52). Not on a disk, which answers: a thread for each file would cost
    more than a small file's hash (0.1-0.2 ms a file, measured on a loaded machine)."""
    if on_mount:
        return aside(lambda: file_md5(full, block), "drivestage-hash")
    return file_md5(full, block)
