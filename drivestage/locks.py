"""One push at a time into one place, on this machine: threads of one process and processes.

Two pushes into one Drive folder at once would each list it, find a folder or file missing
and create it: Drive allows duplicate names, so both copies stay. :func:`place_lock` holds a
thread lock and a file lock (under the state folder) named after the place, so the second
push waits and then finds what the first one made. Pushes from other machines are not
serialised: push repairs or explains what they leave (see :mod:`drivestage.upload_tree`).
"""
from __future__ import annotations

import hashlib
import logging
import threading
from contextlib import contextmanager
from typing import Iterator

from filelock import FileLock, Timeout

from drivestage.errors import LocalFileError
from drivestage.state import state_dir

log = logging.getLogger(__name__)

_GUARD = threading.Lock()
_THREAD_LOCKS: dict[str, threading.Lock] = {}


@contextmanager
def place_lock(place: str, where: str) -> Iterator[None]:
    """Hold the lock of ``place`` (a store's :meth:`~drivestage.store.RemoteStore.place`);
    ``where`` names it in the message shown while waiting for another push."""
    digest = hashlib.sha256(place.encode()).hexdigest()[:32]
    with _GUARD:
        mine = _THREAD_LOCKS.setdefault(digest, threading.Lock())
    if mine.locked():  # a look, for the message only
        log.warning("another push into %s is running in this process; waiting for it", where)
    # Taken and released by ``with`` on the C lock itself: acquire() then try/finally left
    # it held for good when a Ctrl-C landed between the two, and every later push into the
    # place in this process (a notebook) waited for it.
    with mine:
        folder = state_dir() / "locks"
        lock = FileLock(str(folder / f"push-{digest}.lock"))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                log.warning("another push into %s is running on this machine; waiting for it",
                            where)
                lock.acquire()
        except OSError as exc:  # read-only, full: no lock, so no push (see the module's doc)
            raise LocalFileError(
                f"cannot lock {where} for this push in drivestage's state folder {folder} "
                f"({exc.strerror or exc}); point DRIVESTAGE_STATE_DIR at a folder you can "
                "write") from None
        try:
            yield
        finally:
            lock.release()
