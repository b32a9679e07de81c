"""A worker process's side of :mod:`.workers`: orders in, members written, answers out.

A worker starts as ``python -I`` and loads this module without the package's ``__init__``
(see :data:`.workers.CHILD`): it imports only :mod:`.frames`, :mod:`.copying`,
:mod:`drivestage.heap` and light standard modules, so that a worker costs about 12 MB and
starts in a few hundredths of a second (the whole of :mod:`drivestage.extract`: 21 MB and
0.13 s, on each of two cores that the download needs too).
"""
from __future__ import annotations

import errno
import os
import signal
import sys
from typing import Callable, Optional, Sequence

from drivestage.errors import ArchiveError
from drivestage.extract.copying import Member, Progress, TempDir, Written, copy_raw, create, \
    zip_member_start
from drivestage.extract.frames import get_message, put_message

#: One member to write: (index, path, mode, mtime, size, offset, comp_size, method, crc,
#: bound). ``offset``: a zip member's local header, or a tar member's first data byte;
#: ``crc`` -1 for none (tar); ``bound``: the member's bytes end at or before it (-1: none).
Order = tuple[int, str, Optional[int], Optional[float], int, int, int, int, int, int]


class _Target:
    """A member as ordered (a worker knows no more of it)."""

    __slots__ = ("path", "size", "mode", "mtime", "written")

    def __init__(self, path: str, size: int, mode: Optional[int], mtime: Optional[float]):
        self.path, self.size, self.mode, self.mtime = path, size, mode, mtime
        self.written: Optional[Written] = None


def write_order(afd: int, tmp: TempDir, order: Order, label: str, progress: Progress,
                e: Optional[Member] = None) -> Member:
    """One member as ordered (see :data:`Order`), its bytes checked against the order's
    bound; returns its member (``e`` if given) with ``written`` set."""
    i, path, mode, mtime, size, offset, comp_size, method, crc, bound = order
    target: Member = e if e is not None else _Target(path, size, mode, mtime)
    start, data = (offset, None) if crc < 0 else \
        zip_member_start(afd, offset, comp_size, path, label)
    if 0 <= bound < start + comp_size:
        raise ArchiveError(f"member {path!r} of {label} overlaps the member after it; the "
                           "archive is corrupt")
    read: Optional[Callable[[int, int], bytes]] = None
    if data is not None:  # read with its header: copy_raw's one read of it gets these
        def read(n: int, pos: int, have: memoryview = data) -> bytes:
            if (n, pos) == (len(have), start):
                return have  # type: ignore[return-value]  # a buffer, as hashed_pass's
            return os.pread(afd, n, pos)
    fd = create(tmp, target)
    try:
        copy_raw(afd, fd, target, start, comp_size, method, None if crc < 0 else crc, label,
                 progress, read)
    finally:
        os.close(fd)
    return target


def _peak_memory() -> int:
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh
                        if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return 0


def _orphan_check(parent: int) -> Callable[[int], None]:
    """A progress callback that stops the worker once ``parent`` is gone (it was adopted)."""
    def check(_: int) -> None:
        if os.getppid() != parent:
            raise BrokenPipeError(errno.EPIPE, "the parent process ended")
    return check


def serve() -> None:
    """A worker's life: orders from stdin, answers on the pipe ``sys.argv[3]`` names,
    until stdin ends (or its parent does)."""
    from drivestage.heap import collect_less_often, tune_for_transfers

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # Blocked since the start (:func:`.workers._sigint_blocked`): one sent meanwhile was
    # just dropped.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    tune_for_transfers()
    collect_less_often()
    orders = os.fdopen(0, "rb", buffering=0)
    answers = os.fdopen(int(sys.argv[3]), "wb", buffering=0)
    try:
        sys.stdout = sys.stderr  # what a worker prints is seen (its stdout: nowhere)
        first = get_message(orders)
        if first is None or first[0] != "init":
            return
        _, afd, tmp_fd, tmp_path, label = first
        tmp = TempDir(tmp_fd, tmp_path)
        # A batch is bounded in compressed bytes, a member's output is not (zeros inflate
        # a thousandfold): an orphan stops within a chunk, not at its member's end. (The
        # parent, alive now if it ever reads "ready", sends no batch before.)
        watch = Progress(_orphan_check(os.getppid()))
        put_message(answers, ("ready",))
        while True:
            message = get_message(orders)
            if message is None or message[0] != "batch":
                put_message(answers, ("bye", _peak_memory()))
                return
            done: list[tuple[int, Sequence[int]]] = []
            try:
                for order in message[1]:
                    e = write_order(afd, tmp, order, label, watch)
                    assert e.written is not None
                    done.append((order[0], e.written))
            except ArchiveError as exc:
                put_message(answers, ("archive", str(exc)))
                return
            except OSError as exc:
                put_message(answers, ("os", exc.errno or errno.EIO, exc.strerror or str(exc),
                                      exc.filename or ""))
                return
            except Exception as exc:  # a bug: said, never silent
                put_message(answers, ("bug", f"{type(exc).__name__}: {exc}"))
                return
            put_message(answers, ("ok", done))
    except BrokenPipeError:
        return  # the parent went away
