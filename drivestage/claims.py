"""Names held by live uploads (:class:`Claims`): an upload session record is used by one upload
at a time (:meth:`drivestage.state.UploadSessions.claimed`), across threads and processes."""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
from pathlib import Path

from drivestage.errors import LocalFileError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux or macOS: this process's threads only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("drivestage.state")   # (the name its lines always had)


class Claims:
    """Names held by live uploads, each by one at a time: a lock on one byte of a file (its
    place a hash of the name), which the system releases when the process ends, a kill's
    end too; and, as a process's own byte locks never exclude each other, the names this
    process's threads hold. One descriptor per file and process, open while it holds a
    name: closing any descriptor of the file releases every byte lock of the process on it."""

    _guard = threading.Lock()
    _open: dict[str, tuple[int, set[str]]] = {}  # claims file -> (descriptor, names held)

    def __init__(self, path: Path):
        # One descriptor per file, however its folder is named; the name itself is never
        # resolved: a link there is refused (:meth:`_file`), never followed.
        folder, name = os.path.split(os.path.abspath(path))
        self.path = os.path.join(os.path.realpath(folder), name)

    def take(self, name: str) -> bool:
        """Hold ``name`` if no live upload does; whether it is now held."""
        with self._guard:
            fd, held = self._file()
            if name in held:
                return False
            if fd >= 0:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _byte(name))
                except OSError as exc:
                    if exc.errno in (errno.EACCES, errno.EAGAIN):
                        self._close_if_idle(fd, held)
                        return False  # another process's upload holds it
                    # No byte locks here (a network file system without them): uploads of
                    # other processes are not told apart, as before claims existed.
                    log.debug("cannot lock %s (%s); claims hold in this process only",
                              self.path, exc)
            held.add(name)
            return True

    def release(self, name: str) -> None:
        with self._guard:
            found = self._open.get(self.path)  # not opened again only to find nothing held
            if found is None or name not in found[1]:
                return
            fd, held = found
            held.discard(name)
            if fd >= 0:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_UN, 1, _byte(name))
                except OSError:
                    pass
            self._close_if_idle(fd, held)

    def _close_if_idle(self, fd: int, held: set[str]) -> None:
        """Close the descriptor once this process holds no name: no lock left to lose."""
        if not held:
            del self._open[self.path]
            if fd >= 0:
                os.close(fd)

    def _file(self) -> tuple[int, set[str]]:
        """This process's descriptor of the claims file (-1: none, claims hold only in this
        process), and the names held."""
        found = self._open.get(self.path)
        if found is None:
            fd = -1
            if fcntl is not None:
                try:
                    os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
                    # O_NOFOLLOW: a link here (a dangling one would get its target made)
                    # is refused below, never followed.
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC |
                                 os.O_NOFOLLOW, 0o600)
                except OSError as exc:
                    if os.path.islink(self.path):
                        raise LocalFileError(
                            f"{self.path} is a symbolic link; drivestage never follows a link "
                            "there (it would create or lock the file it leads to): remove the "
                            "link, or point DRIVESTAGE_STATE_DIR at a folder of your own"
                        ) from None
                    log.debug("cannot open %s (%s); claims hold in this process only",
                              self.path, exc)
            found = self._open[self.path] = (fd, set())
        return found

    @classmethod
    def forget(cls) -> None:
        """In a forked child: it holds none of its parent's byte locks, nor its names."""
        for fd, _ in cls._open.values():
            if fd >= 0:
                os.close(fd)
        cls._open.clear()
        cls._guard = threading.Lock()


def _byte(name: str) -> int:
    """The byte of the claims file whose lock holds ``name`` (56 bits of its hash)."""
    # os.fsencode: a path whose bytes are not UTF-8 holds lone surrogates, which
    # str.encode() refused (every upload from such a folder failed; attack28). The same
    # bytes as encode() for any other name, so every version agrees on the byte.
    return int.from_bytes(hashlib.sha256(os.fsencode(name)).digest()[:7], "big")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=Claims.forget)
