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

Closing an inotify descriptor waits for the kernel to free the watches removed before it (an
RCU grace period: 1.5 ms on an idle machine, 8-30 ms on a busy one, in every pull: the
interrupt sweeps of the tests spent a seventh of their time there, and parking the close for
later did not spare it). So a process has one inotify descriptor, never closed
(:data:`_shared`): each :class:`Watch` is one watch in it (the events read by any watch are
handed to the one whose folder they are of), and :meth:`Watch.close` removes that watch (the
kernel frees it in the background). A forked child shares its parent's descriptor (one queue:
what either read the other would not see), so it never reads or changes it: its inherited
watches say "changed" at every use, and it makes a descriptor of its own.
"""
from __future__ import annotations

import os
import struct
import sys
import threading
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

#: The process's inotify descriptor (-1: none yet), the watches in it by watch descriptor (two
#: watches of one folder share one: the kernel's), and :data:`_generation`: how many forks
#: this process is from its first (a watch made before a fork is its parent's, in a child).
_shared = -1
_by_wd: dict[int, list["Watch"]] = {}
_lock = threading.Lock()
_generation = 0


def _forgotten_in_child() -> None:
    """A forked child's: no descriptor of its own yet (the inherited one is the parent's:
    left open, never read nor closed here), and a lock of its own (one a thread of the
    parent held at the fork would be held for good)."""
    global _lock, _shared, _generation
    _lock = threading.Lock()
    _shared = -1
    _by_wd.clear()
    _generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forgotten_in_child)


class Watch:
    """The entry changes of one folder, but those of names ``ignore`` accepts: the events of
    the watch ``wd`` in the inotify descriptor ``fd`` (without ``wd``: every event read
    from ``fd``, a descriptor of this watch alone)."""

    def __init__(self, fd: int, ignore: Callable[[str], bool], wd: Optional[int] = None):
        self._fd, self._ignore, self._wd = fd, ignore, wd
        self._lost = self._changed = False
        self._generation = _generation

    def changed(self) -> bool:
        """Whether an entry (not an ignored one) was made, removed or renamed since the
        watch began or the last call said so; always, once the watch is lost (or in a
        forked child: the descriptor is the parent's)."""
        if self._fd >= 0 and self._generation != _generation:
            self._lost = True
        with _lock:
            if self._fd >= 0 and not self._lost:
                _read_events(self._fd, self if self._wd is None else None)
            changed, self._changed = self._changed, False
        return changed or self._lost

    def _event(self, mask: int, name: bytes) -> None:
        if mask & _LOST:
            self._lost = True
        elif not self._ignore(os.fsdecode(name)):
            self._changed = True

    def close(self) -> None:
        """Stop watching: the watch removed (the kernel frees it in the background), the
        process's descriptor kept for the next (module doc)."""
        fd, self._fd = self._fd, -1
        if fd < 0 or self._generation != _generation:
            return   # (closed already, or the parent's: not this process's to change)
        if self._wd is None:
            os.close(fd)   # (a descriptor of its own)
            return
        libc = _loaded[0] if _loaded else None
        with _lock:
            watches = _by_wd.get(self._wd, [])
            if self in watches:
                watches.remove(self)
            if watches or libc is None:
                return   # (another watch of the folder holds it on)
            _by_wd.pop(self._wd, None)
            libc.inotify_rm_watch(fd, self._wd)
            # Its IN_IGNORED read now, before the kernel may give its number to another.
            _read_events(fd, None)


def _read_events(fd: int, only: Optional[Watch]) -> None:
    """Hand what is queued on ``fd`` to the watches it is for (``only``: all to it), under
    ``_lock``; a read that fails loses them all."""
    while True:
        try:
            raw = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            for watch in [only] if only else [w for ws in _by_wd.values() for w in ws]:
                watch._lost = True
            return
        at = 0
        while at + _EVENT.size <= len(raw):
            wd, mask, _cookie, size = _EVENT.unpack_from(raw, at)
            name = raw[at + _EVENT.size:at + _EVENT.size + size].rstrip(b"\0")
            at += _EVENT.size + size
            if only is not None:
                only._event(mask, name)
            elif wd == -1:   # (IN_Q_OVERFLOW: every watch lost events)
                for watches in _by_wd.values():
                    for watch in watches:
                        watch._event(mask, name)
            else:
                for watch in _by_wd.get(wd, ()):
                    watch._event(mask, name)


def watch(folder_fd: int, ignore: Callable[[str], bool]) -> Optional[Watch]:
    """A :class:`Watch` of the folder open as ``folder_fd`` (set up before the caller's
    listing: a change during it is told at the next :meth:`Watch.changed`), or None where
    the kernel cannot tell every change (see the module doc)."""
    global _shared
    if not sys.platform.startswith("linux") or not _local(os.fstat(folder_fd).st_dev):
        return None
    libc = _libc()
    if libc is None:
        return None
    with _lock:
        if _shared < 0:
            _shared = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if _shared < 0:
                return None
        # The very folder open (its /proc link leads to it, whatever its path is now).
        wd = libc.inotify_add_watch(_shared, f"/proc/self/fd/{folder_fd}".encode(), _MASK)
        if wd < 0:
            return None
        made = Watch(_shared, ignore, wd)
        _by_wd.setdefault(wd, []).append(made)
        return made


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
