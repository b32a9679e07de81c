"""The sidecar a push sends after its checkpoint: read once, and sent only when it vouches for
the copy of the checkpoint that push just sent.

A training loop may save again while a push of its folder runs (a Colab cell pushing logs
while :class:`~drivestage.hooks.CheckpointSync` or the trainer goes on): the push has sent
``last.pt`` as it was, and the sidecar it then finds names the bytes saved since. Sent, that
sidecar would vouch for bytes that are not on the store, and the old copy it replaced (the
one the sidecar on the store vouched for) would go: no verified checkpoint at all. Such a
sidecar is left for the next push, which sends the new checkpoint with it; meanwhile the copy
the sidecar on the store vouches for stays (:mod:`drivestage.old_copies`). The bytes checked are the bytes sent (a private copy), so a save just after the
check changes nothing.
"""
from __future__ import annotations

import errno
import logging
import os
import re
import tempfile
import time
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterator, Optional, Sequence, Union

from drivestage import localfs, sidecar, special_files, temps
from drivestage.errors import LocalFileError
from drivestage.interrupts import deferred
from drivestage.pool import aside, leavable
from drivestage.store import RemoteEntry

log = logging.getLogger(__name__)


@contextmanager
def checked(path: str, sent: Sequence[RemoteEntry], on_store: Sequence[RemoteEntry], *,
            follow: bool = False) -> Iterator[Optional[str]]:
    """What to upload for the local sidecar ``path`` whose checkpoints this push sent as
    ``sent`` (``on_store``: every copy of them on the store that this push knows of, ``sent``
    too): ``path`` itself when ``sent`` is empty or the file is no sidecar naming an md5; a
    private copy of it when it names the md5 of a copy on the store; None when it names
    bytes that are not there (the checkpoint was saved again since it was sent). Raises what
    reading ``path`` raises (FileNotFoundError when it is gone; through a link only where
    ``follow``, a FIFO never waited on: :func:`drivestage.special_files.open_sent`)."""
    if not sent:
        yield path
        return
    # (A plain open waited for good on a FIFO put at the sidecar's name once its checkpoint
    # was sent, and read a link's target: pushfollow46.)
    data = _read(path, follow)
    said = sidecar.parse(data, path) if len(data) <= sidecar.MAX_BYTES else None
    if said is None or said.md5 is None:
        yield path
        return
    if not said.md5s & {(e.md5 or "").lower() for e in on_store}:
        log.warning("%s changed while the push ran (its checkpoint was saved again); not sent, "
                    "and the copy the sidecar on the store vouches for stays: the next push "
                    "sends both", path)
        yield None
        return
    with private(path, data) as copy:
        yield copy


def _read(path: str, follow: bool) -> bytes:
    """The bytes of the sidecar ``path`` (:data:`~drivestage.sidecar.MAX_BYTES` and one more
    at most; :func:`~drivestage.special_files.open_sent`'s rules). On a FUSE or network
    mount aside, opened, read and closed in one leavable call (a close there waits for the
    mount too: FLUSH): with ``--jobs 1`` the main thread's, a read of a hung mount held every
    Ctrl-C until it answered (hang52b)."""
    def read() -> bytes:
        with leavable(), special_files.open_sent(path, follow) as fh:
            return fh.read(sidecar.MAX_BYTES + 1)
    try:
        on_mount = localfs.on_mount(os.stat(path, follow_symlinks=follow).st_dev)
    except OSError:
        on_mount = False   # (what the open meets, it says)
    return aside(read, "drivestage-read") if on_mount else read()


@contextmanager
def private(path: str, data: Union[bytes, Callable[[BinaryIO], None]]) -> Iterator[str]:
    """``data`` (read from ``path``; or written by ``data(file)``, in chunks) in a private
    copy in the temporary folder, removed after the block (:mod:`drivestage.snapshots`
    sends a log that kept changing so). ``data(file)`` writes from its start each time: it
    is called again for a copy in memory where the temporary folder had no room."""
    copy = None
    try:
        with deferred():  # a Ctrl-C as it returned left the copy in $TMPDIR
            copy = _private_copy(path, data)
            temps.stand_for(copy, path)
        yield copy
    finally:
        if copy is not None:
            try:   # (a Ctrl-C between the two steps left a copy in memory open for good)
                with deferred():
                    _let_go(copy)
            except KeyboardInterrupt:
                _let_go(copy)   # (one before deferred() held it back: nothing was done)
                raise


def _let_go(copy: str) -> None:
    """Remove the private copy ``copy`` (close it, in memory); again, nothing."""
    temps.stand_for(copy, None)
    fd = _IN_MEMORY.pop(copy, None)
    if fd is not None:
        os.close(fd)
    elif not copy.startswith(_MEMORY):
        try:
            os.unlink(copy)
        except FileNotFoundError:
            pass


#: A private copy's name: the prefix, this process's pid namespace (:func:`temps.namespace_tag`),
#: a dot, its id, a dash, mkstemp's letters (older versions: no namespace, nor its dot: one
#: of them, in another container, never takes a copy of this form for a dead process's).
_PREFIX = ".drivestage-sidecar-"
_COPY_RE = re.compile(r"\A\.drivestage-sidecar-(?:(?P<tag>[0-9a-f]{8})\.)?(?P<pid>[1-9][0-9]{0,9})"
                      r"-[a-z0-9_]+\.json\Z")
#: Why the temporary folder may take no copy while memory can: its disk full, over quota,
#: read-only (on Colab it is the run folder's disk, full when a save failed).
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
_IN_MEMORY: dict[str, int] = {}  # private copies in memory: their /proc path -> descriptor
_MEMORY = "/proc/self/fd/"  # (what their paths start with)
_swept: dict[str, float] = {}  # temporary folder: when this process last looked through it


def _private_copy(path: str, data: Union[bytes, Callable[[BinaryIO], None]]) -> str:
    """``data`` in a new file of the temporary folder. A failure there is said as such: a
    FileNotFoundError (the temp folder removed under a long-lived process) would pass for
    the sidecar gone, and the sidecar would be skipped on every push without a word."""
    copy = None
    fh = None
    try:
        with deferred():  # its first call in a process takes tempfile's lock as mkstemp's does
            folder = tempfile.gettempdir()
        _remove_stale_copies(folder)
        # Made and handed to a file object with a Ctrl-C held back: one between the two
        # (os.fdopen's first line) left the descriptor open and the copy in $TMPDIR for the
        # life of a notebook's process (no sweep removes a live process's copy); one inside
        # mkstemp's first call in a process, tempfile's own lock held for good.
        with deferred():
            fd, copy = tempfile.mkstemp(prefix=f"{_PREFIX}{temps.namespace_tag()}.{os.getpid()}-",
                                        suffix=sidecar.SUFFIX)
            fh = os.fdopen(fd, "wb")
        with fh:
            fh.write(data) if isinstance(data, bytes) else data(fh)
    except BaseException as exc:
        if fh is not None:
            fh.close()
        if copy is not None:
            try:
                os.unlink(copy)
            except OSError:
                pass
        if not isinstance(exc, OSError):
            raise
        if exc.errno in _NO_ROOM:
            held = _memory_copy(path, data)
            if held is not None:
                return held
        raise LocalFileError(f"cannot write a private copy of {path} into the temporary "
                             f"folder {tempfile.gettempdir()}: {exc.strerror or exc}; set "
                             "TMPDIR to a writable folder with free space") from exc
    return copy


def _memory_copy(path: str, data: Union[bytes, Callable[[BinaryIO], None]]) -> Optional[str]:
    """``data`` in an anonymous file in memory (``memfd``: Linux), as a path this process
    opens (``/proc/self/fd/N``); None where there is none. A sidecar is a few hundred bytes,
    a log's snapshot 64 MiB at most (:data:`drivestage.snapshots.MAX_BYTES`). Closed by
    :func:`private`."""
    if not hasattr(os, "memfd_create") or not os.path.isdir("/proc/self/fd"):
        return None
    with deferred():   # (a Ctrl-C between the two left the descriptor open)
        fd = os.memfd_create(_memory_name(path), os.MFD_CLOEXEC)
        copy = f"{_MEMORY}{fd}"
        _IN_MEMORY[copy] = fd
    try:
        with open(fd, "wb", closefd=False) as fh:
            fh.write(data) if isinstance(data, bytes) else data(fh)
    except BaseException as exc:
        # Closed whatever stopped it (a snapshot over its limit, a Ctrl-C): else the memory
        # stayed held for the life of the process (attacknew33).
        try:
            with deferred():
                _let_go(copy)
        except KeyboardInterrupt:
            _let_go(copy)
            raise
        if isinstance(exc, OSError):
            return None
        raise
    log.info("%s: the temporary folder %s has no room; its private copy is kept in memory",
             path, tempfile.gettempdir())
    return copy


def _forget_in_child() -> None:
    """In a process just forked (a DataLoader worker, forked by the training thread while a
    push thread sent from a copy in memory): close the copies it got. Close-on-exec ends
    them only at an exec, and each worker held the memory for its life (attacknew33)."""
    for fd in list(_IN_MEMORY.values()):
        try:
            os.close(fd)
        except OSError:
            pass
    _IN_MEMORY.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _memory_name(path: str) -> str:
    """The name of ``path``'s copy in memory (seen in ``/proc/PID/fd``), cut to what the
    kernel takes: 249 bytes, not characters (a long name in Japanese made ``memfd_create``
    fail with EINVAL: attacknew33)."""
    return os.fsdecode(os.fsencode(f"drivestage-{os.path.basename(path)}")[:240])


def _remove_stale_copies(folder: str) -> None:
    """Remove the private copies that processes killed during their upload left in
    ``folder`` (once a minute at most per process and folder, as the atomic writes' sweep:
    :data:`drivestage.localfs.SWEEP_EVERY_S`; once per process, a mirror or a training
    run's hooks, days long, never swept a copy that became a leftover after its first look:
    attacksync35), by :func:`drivestage.temps.left_by_dead`: one
    of this pid namespace whose process no longer runs; one of another (a container sharing
    /tmp: its pids mean nothing here) or of an older drivestage (``<pid>-``, no namespace)
    once a day old. By the pid alone, a push removed the copies another container's uploads
    were reading (attacksync34)."""
    now = time.monotonic()
    if now - _swept.get(folder, -localfs.SWEEP_EVERY_S) < localfs.SWEEP_EVERY_S:
        return
    _swept[folder] = now
    try:
        names = os.listdir(folder)
    except OSError:
        return  # said by the copy itself, if it cannot be made either
    for name in names:
        made = _COPY_RE.match(name)
        if made is None:
            continue  # an older drivestage's name without a pid: nothing says whose
        path = os.path.join(folder, name)
        try:
            if temps.left_by_dead(made["tag"], int(made["pid"]), os.lstat(path)):
                os.unlink(path)
                log.debug("removed %s, left by a push that was killed", name)
        except OSError:
            pass
