"""Descriptors that a process forked from this one must not keep: the pull's locks in DEST's
state folder, an extraction's temporary folder's owner lock and the orders' pipes to its
workers.

A fork's child (``os.fork``, multiprocessing's fork, a DataLoader's workers in a notebook
that pulls in another thread) gets a copy of every descriptor, and a copy keeps what the
original holds: an ``flock`` lives until the last descriptor of its file is closed, and a
worker reads its orders until the last writing end of their pipe is closed. Killed with a
pull under way, the pull left its file's lock to the child: the rerun said ``another pull
of … is running; waiting for it`` for as long as the child lived, the extraction
workers it had started never ended, and its temporary folder (what it had extracted) was
no stale one to sweep (attackcli41). In the child each descriptor noted here that is
still the file noted (its device and inode) is pointed at the null device at once (its
number stays open there: code of the parent's still running in the child closes it
harmlessly). A note outlives its close harmlessly: a number reused by another file is
left alone, so the close never waits on :func:`forget` (a Ctrl-C at that call left the
lock open, and the rerun in the same process waited for it for ever: a full run's hang).
The tree locks of a push have their own (:func:`drivestage.locks.close_inherited`).

A module's own thread lock (:func:`free_in_forks`) is free again in a fork's child: the
thread of the parent's that held it as the process forked (a folder pull looking up its
listing, a push choosing where its locks go) is not in the child, and the child's first
pull, push or extraction waited for it for good (a pool's worker forked while a pull ran
in another thread: attacksig42).
"""
from __future__ import annotations

import os
from typing import Any, TypeVar

L = TypeVar("L")

_NOTED: dict[int, tuple[int, int]] = {}   # fd -> (st_dev, st_ino) when noted
_LOCKS: list[Any] = []   # module locks (they live as long as the process: no weak refs)


def drop_in_forks(fd: int) -> int:
    """Note ``fd``: a process forked from here gets the null device at its number (while
    it is still this file). Returns ``fd``."""
    st = os.fstat(fd)
    _NOTED[fd] = (st.st_dev, st.st_ino)
    return fd


def forget(fd: int) -> None:
    """``fd`` was closed here (or is about to be): no longer noted. Before or after the
    close: a note left behind is no harm (see the module's docstring)."""
    _NOTED.pop(fd, None)


def close(fd: int) -> None:
    """Close ``fd``, then :func:`forget` it."""
    try:
        os.close(fd)
    finally:
        forget(fd)


def free_in_forks(lock: L) -> L:
    """Note ``lock`` (a module's ``threading.Lock`` or ``RLock``, held a moment by any
    thread): a process forked from here gets it free. Returns ``lock``."""
    _LOCKS.append(lock)
    return lock


def _in_child() -> None:
    for lock in _LOCKS:
        lock._at_fork_reinit()   # (threading's own way for its locks: free, no owner)
    if not _NOTED:
        return
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        for fd, noted in _NOTED.items():
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) == noted:   # (else another file's number now)
                    os.dup2(null, fd, inheritable=False)
            except OSError:   # (closed already: nothing of the parent's is held there)
                pass
    finally:
        os.close(null)
        _NOTED.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)
