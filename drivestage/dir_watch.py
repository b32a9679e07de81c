"""Whether a folder's entries changed since the last look, as the kernel tells it (Linux
inotify), without listing the folder again: :func:`watch` and :meth:`Watch.changed`.

A folder pull's stamp cache (:mod:`drivestage.stamp_cache`) must see a stamp another
process wrote at its next use; it listed the state folder at every use for that, one
listing per archive of the pull, each as long as the folder (a rerun of 500 archives: half
its time, rerun37). The kernel queues an event for every entry made, removed or renamed in
a watched folder before the call that did it returns, whoever made it on this machine: read
at a use, the events say whether a listing would show anything new. Only where every change
is made by this machine's kernel: a local file system (:data:`LOCAL_FS`, by the mount
table); on a network or FUSE file system another machine's writes raise no event, and
there (or without inotify, ``/proc`` or the mount table) :func:`watch` gives None and the
folder is listed at every use, as before. A queue that overflowed, or a watch the kernel
dropped (the folder removed, its file system unmounted), says "changed" from then on.

Closing an inotify descriptor that still holds a watch waits for the kernel to free it (an
RCU grace period: 1.5 ms on an idle machine, 8-30 ms on a busy one, in every pull: the
interrupt sweeps of the tests spent a seventh of their time there). :meth:`Watch.close`
removes the watch (freed by the kernel in the background) and closes the descriptor later,
at a later close or watch of this process once the kernel has had time to free it.
"""
from __future__ import annotations

import os
import struct
import sys
import threading
import time
from typing import Any, Callable, Optional

from drivestage.localfs import MOUNTINFO

#: File systems whose every change goes through this machine's kernel.
LOCAL_FS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "f2fs", "overlay",
                      "zfs", "jfs", "reiserfs", "bcachefs"})

_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x40, 0x80, 0x100, 0x200
_IN_DELETE_SELF, _IN_MOVE_SELF, _IN_UNMOUNT = 0x400, 0x800, 0x2000
_IN_Q_OVERFLOW, _IN_IGNORED, _IN_ONLYDIR = 0x4000, 0x8000, 0x01000000
_MASK = _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE | _IN_DELETE_SELF | \
    _IN_MOVE_SELF | _IN_ONLYDIR
_LOST = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_UNMOUNT | _IN_Q_OVERFLOW | _IN_IGNORED
_EVENT = struct.Struct("iIII")   # wd, mask, cookie, len; then the name, NUL-padded

#: Descriptors whose watch was removed, with when: closed once :data:`PARKED_S` passed (the
#: kernel freed the watch by then: the close is at once), or when more than
#: :data:`PARKED_MAX` wait. A forked child forgets them (the numbers may be reused there).
_parked: list[tuple[float, int]] = []
_parked_lock = threading.Lock()
PARKED_S = 0.05
PARKED_MAX = 8


def _forgotten_in_child() -> None:
    """A forked child's: no parked descriptor (its numbers may be reused there), and a lock
    of its own (one a thread of the parent held at the fork would be held for good)."""
    global _parked_lock
    _parked_lock = threading.Lock()
    _parked.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forgotten_in_child)


class Watch:
    """The entry changes of one folder, but those of names ``ignore`` accepts."""

    def __init__(self, fd: int, ignore: Callable[[str], bool], wd: Optional[int] = None):
        self._fd, self._ignore, self._wd = fd, ignore, wd
        self._lost = False

    def changed(self) -> bool:
        """Whether an entry (not an ignored one) was made, removed or renamed since the
        watch began or the last call said so; always, once the watch is lost."""
        changed = self._lost
        while self._fd >= 0:
            try:
                raw = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                self._lost = True
                break
            at = 0
            while at + _EVENT.size <= len(raw):
                _wd, mask, _cookie, size = _EVENT.unpack_from(raw, at)
                name = raw[at + _EVENT.size:at + _EVENT.size + size].rstrip(b"\0")
                at += _EVENT.size + size
                if mask & _LOST:
                    self._lost = True
                elif not self._ignore(os.fsdecode(name)):
                    changed = True
        return changed or self._lost

    def close(self) -> None:
        """Stop watching: the watch removed now, the descriptor closed later (module doc)."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        libc = _loaded[0] if _loaded else None
        if self._wd is None or libc is None or libc.inotify_rm_watch(fd, self._wd) != 0:
            os.close(fd)   # (no watch held, or the kernel dropped it: no wait)
        else:
            with _parked_lock:
                _parked.append((time.monotonic(), fd))
        close_parked()


def close_parked(everything: bool = False) -> None:
    """Close the parked descriptors the kernel has had time to free (``everything``: all)."""
    now = time.monotonic()
    with _parked_lock:
        due = [fd for at, fd in _parked
               if everything or now - at >= PARKED_S or len(_parked) > PARKED_MAX]
        _parked[:] = [(at, fd) for at, fd in _parked if fd not in due]
    for fd in due:
        os.close(fd)


def watch(folder_fd: int, ignore: Callable[[str], bool]) -> Optional[Watch]:
    """A :class:`Watch` of the folder open as ``folder_fd`` (set up before the caller's
    listing: a change during it is told at the next :meth:`Watch.changed`), or None where
    the kernel cannot tell every change (see the module doc)."""
    if not sys.platform.startswith("linux") or not _local(os.fstat(folder_fd).st_dev):
        return None
    libc = _libc()
    if libc is None:
        return None
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        return None
    # The very folder open (its /proc link leads to it, whatever its path is now).
    wd = libc.inotify_add_watch(fd, f"/proc/self/fd/{folder_fd}".encode(), _MASK)
    if wd < 0:
        os.close(fd)
        return None
    close_parked()
    return Watch(fd, ignore, wd)


_loaded: list[Any] = []


def _libc() -> Any:
    """The C library's inotify calls (ctypes, imported by the first folder pull's cache:
    no other command pays for it); None where there are none."""
    if not _loaded:
        try:
            import ctypes

            libc: Any = ctypes.CDLL(None, use_errno=True)   # (this process's own: libc's)
            libc.inotify_init1.argtypes = [ctypes.c_int]
            libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        except (ImportError, OSError, AttributeError):
            libc = None
        _loaded.append(libc)
    return _loaded[0]


def _local(device: int) -> bool:
    """Whether the mount of ``device`` is of a :data:`LOCAL_FS` type (the last mount of it
    in the table: the one on top); False when the table cannot tell."""
    try:
        with open(MOUNTINFO, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().split("\n")
    except OSError:
        return False
    kind = None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 3 or not rest:
            continue
        major, _, minor = fields[2].partition(":")
        if major.isdigit() and minor.isdigit() and \
                os.makedev(int(major), int(minor)) == device:
            kind = rest[0]
    return kind in LOCAL_FS
