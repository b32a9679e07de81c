"""One push at a time into one place, on this machine: threads of one process and processes.

Two pushes into one Drive folder at once would each list it, find a folder or file missing
and create it: Drive allows duplicate names, so both copies stay. :func:`place_lock` holds a
thread lock and a file lock (under the state folder) named after the place, so the second
push waits and then finds what the first one made. Pushes from other machines are not
serialised: push repairs or explains what they leave (see :mod:`drivestage.upload_tree`).

A push writes into every folder below its own too: ``drivestage mirror ./runs drive:runs``
and a training run's push of ``./runs/exp1`` to ``drive:runs/exp1`` both create the new files
of ``exp1`` (push27). :func:`tree_lock` holds the folder's file lock exclusively and those of
the folders it sits in shared, so that a push into a folder waits for pushes into the folders
above it and below it, never for one into a folder beside it.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import sys
import threading
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

from filelock import FileLock, Timeout

from drivestage import lock_holders
from drivestage.errors import LocalFileError, LocksBusyError
from drivestage.fork_drop import free_in_forks
from drivestage.interrupts import deferred, flock_wait, lock_wait
from drivestage.lockdir import folder_for
from drivestage.state import state_dir

if sys.platform != "win32":
    import fcntl

log = logging.getLogger(__name__)

_GUARD = free_in_forks(threading.Lock())
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_HELD: dict[str, int] = {}  # tree locks this process holds (either way), by digest
_OPEN: set[int] = set()  # the descriptors of those locks
_WHO: dict[str, Optional[str]] = {}  # their holder files (lock_holders), by digest
_PID = os.getpid()  # this process's (set again in a forked child)


def close_inherited(fds: set[int]) -> None:
    """Close each lock descriptor in ``fds`` and empty the set: in a process just forked,
    what it got of its parent's (a copy shares the parent's ``flock`` until it is closed).
    One already closed is fine. Also :mod:`trainer.run_lock`'s, for the run folder's lock."""
    for fd in list(fds):
        try:
            os.close(fd)
        except OSError:
            pass
    fds.clear()


def _noted(digest: str, folder: str, stem: str) -> bool:
    """Count one more hold of the tree lock ``digest``; the first writes the holder file
    (who holds it, for another's message: lock_holders). Whether it is the first."""
    with _GUARD:
        _HELD[digest] = _HELD.get(digest, 0) + 1
        first = _HELD[digest] == 1
    if first:
        _WHO[digest] = lock_holders.claim(folder, stem)
    return first


def _unnoted(digest: str) -> None:
    """Undo :func:`_noted` (the last hold removes the holder file)."""
    with _GUARD:   # (cleared in a fork's child)
        _HELD[digest] = max(_HELD.get(digest, 0) - 1, 0)
        gone = _WHO.pop(digest, None) if _HELD[digest] == 0 else None
    lock_holders.release(gone)


def _whole(step: Callable[[], None]) -> None:
    """``step()`` run whole once, a Ctrl-C held back till it is done; one that came before
    the holding began runs it first, then is raised."""
    done: list[bool] = []
    try:
        with deferred():
            step()
            done.append(True)
    except KeyboardInterrupt:
        if not done:
            step()
        raise


def _forget_in_child() -> None:
    """In a process just forked: close the tree locks' descriptors it got. A push that is
    SIGKILLed unlocks nothing, and a process it forked (a notebook's helper) that lives on
    held its locks for good: every later push waited for it (attackz27)."""
    global _PID
    _PID = os.getpid()   # (a lock opened before is not its own: see _flock's end)
    close_inherited(_OPEN)
    _HELD.clear()
    _WHO.clear()   # (the parent's: it removes them)
    # A place's thread lock held by another thread of the parent (a push in a thread, for
    # minutes) stays held here, where that thread is not: the child's push into that place
    # waited for it for ever (attack43). Dropped, not freed: the forking thread's own, if
    # it held one, is released by its frame (a freed lock's release would raise).
    _THREAD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


@contextmanager
def place_lock(place: str, where: str) -> Iterator[None]:
    """Hold the lock of ``place`` (a store's :meth:`~drivestage.store.RemoteStore.place`);
    ``where`` names it in the message shown while waiting for another push."""
    digest = hashlib.sha256(os.fsencode(place)).hexdigest()[:32]  # (a path not UTF-8)
    with _GUARD:
        mine = _THREAD_LOCKS.setdefault(digest, threading.Lock())
    if mine.locked():  # a look, for the message only
        log.warning("another push into %s is running in this process; waiting for it", where)
        lock_wait(mine)   # (a Ctrl-C ends it: see interrupts.SLICE)
    # Taken and released by ``with`` on the C lock itself: acquire() then try/finally left
    # it held for good when a Ctrl-C landed between the two, and every later push into the
    # place in this process (a notebook) waited for it.
    with mine:
        folder = state_dir() / "locks"
        try:
            folder = _folder()
            name = f"push-{digest}.lock"
            lock = FileLock(str(folder / name))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                log.warning("another push into %s is running on this machine%s; waiting for "
                            "it", where, lock_holders.described(str(folder), name))
                lock.acquire()
        except OSError as exc:  # read-only, full: no lock, so no push (see the module's doc)
            raise _cannot(where, folder, exc) from None
        who: Optional[str] = None
        try:
            who = lock_holders.claim(str(folder), name)
            lock_holders.sweep(str(folder), name, who)
            yield
        finally:
            try:
                lock_holders.release(who)
            finally:
                lock.release()


def _folder() -> Path:
    """The folder of the push locks: ``locks`` in the state folder, or in the local folder
    that keeps its locks where its file system cannot lock files (:mod:`drivestage.lockdir`)."""
    folder = folder_for(state_dir()) / "locks"
    folder.mkdir(exist_ok=True)
    return folder


def _cannot(where: str, folder: "os.PathLike[str]", exc: OSError) -> LocalFileError:
    """The error of a push that cannot take its lock in ``folder``."""
    if isinstance(exc, LocalFileError):   # (what is wrong with the file system, said)
        return LocalFileError(f"cannot lock {where} for this push: {exc}")
    if exc.errno in (errno.ELOOP, errno.EISDIR) and exc.filename:   # (filelock's, as _open)
        return LocalFileError(f"cannot lock {where} for this push: {exc.filename}, a lock "
                              "file of drivestage, is a link, a folder or another user's file; "
                              "is another program writing there? Remove it (a lock file "
                              "holds nothing) and push again")
    return LocalFileError(
        f"cannot lock {where} for this push in drivestage's state folder {folder} "
        f"({exc.strerror or exc}); point DRIVESTAGE_STATE_DIR at a folder you can write")


@contextmanager
def tree_lock(lineage: Sequence[tuple[str, str]]) -> Iterator[None]:
    """Hold the lock of a push's folder, ``lineage[0]`` (a place and its description), and
    those of the folders it sits in, ``lineage[1:]`` (nearest first: a store's
    :meth:`~drivestage.store.RemoteStore.lineage`): another push into one of them, or into a
    folder below this one, writes into the same folders; it is waited for, and said.
    Taken from the top down, the folder's own last: two pushes never wait for each other."""
    if not lineage:
        yield
        return
    (place, where), above = lineage[0], list(lineage[1:])
    if sys.platform == "win32":  # pragma: no cover - shared locks need flock: its own only
        with place_lock("tree|" + place, where):
            yield
        return
    folder = state_dir() / "locks"
    with ExitStack() as held:
        try:
            folder = _folder()
            for up, up_where in reversed(above):
                held.enter_context(_flock(folder, up, False, (
                    f"another push into {up_where}, which holds {where}, is running")))
            held.enter_context(_flock(folder, place, True, (
                f"another push into {where} or a folder inside it is running")))
        except OSError as exc:  # read-only, full: no lock, so no push (see the module's doc)
            raise _cannot(where, folder, exc) from None
        yield


class Busy(Exception):
    """A tree lock another push holds, met by :func:`more` (which never waits for one)."""

    def __init__(self, lineage: Sequence[tuple[str, str]]):
        super().__init__(lineage[0][1])
        self.lineage = lineage


class Held:
    """The tree locks one push holds: its own folder's ``lineage``, in ``stack``."""

    def __init__(self, stack: ExitStack, lineage: Sequence[tuple[str, str]]):
        self.stack, self.lineage = stack, lineage


#: Times :func:`locked` runs a push again after a lock it reached was busy, at most: each
#: round lists DEST again, and pushes that keep taking the folders it reaches in turn
#: (mirrors every few seconds) must not keep it talking to Drive for ever.
MAX_ROUNDS = 20


def locked(lineage: Sequence[tuple[str, str]], work: Callable[[Held], None]) -> None:
    """``work(held)`` under :func:`tree_lock` of ``lineage``. When it meets a lock another push
    holds (:class:`Busy`, from :func:`more`), every lock is let go, that one waited for (said)
    and given back, and ``work`` runs again from the start, :data:`MAX_ROUNDS` times at most
    (then :class:`~drivestage.errors.LocksBusyError`)."""
    last = ""
    for _ in range(MAX_ROUNDS + 1):
        try:
            with ExitStack() as stack:
                stack.enter_context(tree_lock(lineage))
                work(Held(stack, lineage))
            return
        except Busy as busy:
            last = busy.lineage[0][1]
            with tree_lock(busy.lineage):
                pass
    raise LocksBusyError(f"push into {lineage[0][1] if lineage else 'DEST'}: other pushes "
                         f"took {last}, a folder it reaches through a shortcut, each of the "
                         f"{MAX_ROUNDS} times it waited for them and started again; run it "
                         "again once they are done")


def more(held: Held, lineages: Iterable[Sequence[tuple[str, str]]]) -> None:
    """Also hold, in ``held``, the tree locks of folders a push writes into that its own do
    not cover: those it reaches through shortcuts in its tree (``lineages``: each folder's,
    as :func:`tree_lock` takes). ``push ./a drive:outer`` with ``outer/link`` a shortcut to
    ``x`` and ``push ./b drive:x`` at once both made every new file of ``x`` (lock28).
    Never waits (with this push's own locks held, it could wait for a push that waits for
    them): :class:`Busy` when another push holds one. A folder at or above the push's own,
    or inside one held alone, is passed over: the locks held already cover it."""
    alone = {held.lineage[0][0]} if held.lineage else set()
    shared = {place for place, _ in held.lineage[1:]}
    folder = state_dir() / "locks"
    for lineage in sorted((list(each) for each in lineages if each), key=len):
        places = [place for place, _ in lineage]
        if places[0] in shared or alone & set(places):
            continue
        try:
            folder = _folder()
            for up, _ in reversed(lineage[1:]):
                if up not in shared and up not in alone:
                    held.stack.enter_context(_flock(folder, up, False, "", wait=False))
                    shared.add(up)
            held.stack.enter_context(_flock(folder, places[0], True, "", wait=False))
            alone.add(places[0])
        except BlockingIOError:
            raise Busy(lineage) from None
        except OSError as exc:
            raise _cannot(lineage[0][1], folder, exc) from None


def _open(path: str) -> int:
    """The lock file ``path``, made if missing: this user's own plain file, never through a
    link (a link planted there made the file it leads to: lock28), nor a FIFO or a folder."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
                     | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise
        fd = -1
    st = os.fstat(fd) if fd >= 0 else None
    if st is None or not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        if fd >= 0:
            os.close(fd)
        raise LocalFileError(f"{path}, a lock file of drivestage, is a link, a folder or "
                             "another user's file; is another program writing there? Remove "
                             "it (a lock file holds nothing) and push again")
    return fd


@contextmanager
def _flock(folder: "os.PathLike[str]", place: str, alone: bool, who: str,
           wait: bool = True) -> Iterator[None]:
    """The file lock of ``place`` (``alone``: exclusively, else shared), waited for with a
    warning (``who`` holds it, in this process or another one of this machine); not waited
    for unless ``wait``: BlockingIOError."""
    digest = hashlib.sha256(os.fsencode(place)).hexdigest()[:32]  # (a path not UTF-8)
    fd: Optional[int] = None
    owner = _PID
    try:
        with deferred():  # (a Ctrl-C between the open and this try left it open)
            fd = _open(os.path.join(folder, f"tree-{digest}.lock"))
            _OPEN.add(fd)
        mode = fcntl.LOCK_EX if alone else fcntl.LOCK_SH
        stem = f"tree-{digest}.lock"
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise
            with _GUARD:
                here = _HELD.get(digest, 0) > 0
            log.warning("%s %s; waiting for it", who, "in this process" if here else
                        "on this machine" + lock_holders.described(str(folder), stem))
            flock_wait(fd, mode)  # (a Ctrl-C ends it, whichever thread got the signal)
        # Noted (and the note undone) whole: a Ctrl-C between the count and the `try`, or
        # inside the claim, left this process counted as a holder for good (the next wait
        # for another process's push said "in this process") or its holder file behind (a
        # live notebook named as the holder of a push it never ran) (attacknew33).
        first: list[bool] = []
        try:
            _whole(lambda: first.append(_noted(digest, str(folder), stem)))
            if first[0] and alone:
                lock_holders.sweep(str(folder), stem, _WHO.get(digest))
            yield
        finally:
            if first:
                undone: list[bool] = []
                try:   # (here, not in a function: a Ctrl-C at its first line undid nothing)
                    with deferred():
                        _unnoted(digest)
                        undone.append(True)
                except KeyboardInterrupt:
                    if not undone:
                        _unnoted(digest)
                    raise
    finally:
        if fd is not None and owner == _PID:   # (a fork's child closed it: maybe reused)
            # Let go before the close: a process forked meanwhile (a DataLoader worker of
            # the training thread) holds this descriptor too, and a flock lives until its
            # last descriptor is closed: the worker kept the lock for its life (attackz27).
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                try:
                    os.close(fd)
                finally:   # (after the close: a fork's child closes only what is ours)
                    _OPEN.discard(fd)
