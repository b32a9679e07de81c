"""The reads of a directory store's files that may wait on a hung mount (split from
localdir.py at its line cap): a copy's blocks, a file's hash, a look at a path, each a
:func:`~drivestage.pool.leavable` call, so that a Ctrl-C leaves a read a FUSE daemon that
stopped answering never ends (the kernel waits for its answer through every signal but
SIGKILL: hang51).
"""
from __future__ import annotations

import os
from typing import Callable, Iterator, Optional, TypeVar

from drivestage.localfs import file_md5, on_mount as on_a_mount
from drivestage.pool import aside, leavable
from drivestage.special_files import open_copied

R = TypeVar("R")


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


def mount_look(look: Callable[[], R], on_mount: bool) -> R:
    """``look()``, a look at a directory store's files that makes and writes nothing (a
    stat, the realpath that keeps it inside the store); on a FUSE or network mount
    (``on_mount``) through :func:`~drivestage.pool.aside`, a :func:`~drivestage.pool.leavable`
    call: ``resolve``'s look at SRC in the main thread, a mount that hung after the command's
    first look (open_store), held every Ctrl-C until the mount answered (hang52). Not on a
    disk (a thread a call: 0.1-0.2 ms)."""
    if on_mount:
        return aside(lambda: _leavable(look), "drivestage-look")
    return look()


def mount_read(read: Callable[[], R], dev: int) -> R:
    """``read()``, a whole-file read of a local file on device ``dev`` whose own reads are
    :func:`~drivestage.pool.leavable` ones (a local archive's hash before it is extracted
    where it lies, a staged copy's digest before it moves); where ``dev`` is a FUSE or
    network mount's (:func:`~drivestage.localfs.on_mount`: judged once a device) through
    :func:`~drivestage.pool.aside`: in the main thread, a read of a hung mount held every
    Ctrl-C until the mount answered (hang52b). Not on a disk."""
    if on_a_mount(dev):
        return aside(read, "drivestage-hash")
    return read()


def _leavable(look: Callable[[], R]) -> R:
    with leavable():
        return look()


def root_device(root: str) -> Optional[int]:
    """The device of a store's ``root`` (its files' mount: :func:`mount_stat`), None where
    it is missing (a DEST made later) or unreadable."""
    try:
        return os.stat(root).st_dev
    except OSError:
        return None
