"""One training process per run folder (``train.out_dir``), on this machine.

Two runs in one folder at once (a notebook cell run again while the first run still trains
in the background, a second terminal, a scheduler starting a job twice) both resume from
the same checkpoint and then overwrite each other's ``last.pt``, ``epoch_NNN.pt`` and
autosaves, while both mirror them to Drive: neither run's files can be trusted after.
:class:`RunFolderLock` holds an ``flock`` for the whole run on a file named after the
folder's real path, in drivestage's state folder (``locks/train-<hash>.lock``, beside the
push locks of :mod:`drivestage.locks`): the run folder holds only the run's own files. The
kernel drops the lock when the process ends, however it ends (a SIGKILL leaves no stale
lock), and a second run refuses at once in one line naming the first one. The file stays
(an ``flock`` on a file that is removed and made again is no lock for whoever opened the
new one).

A state folder that cannot be written, or a file system without ``flock``, gets a warning
and no lock: a run is not refused for what its machine cannot do.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import socket
import time
from typing import Optional

from drivestage.locks import close_inherited
from trainer.errors import RunFolderBusyError

logger = logging.getLogger(__name__)

#: The lock descriptors this process holds. A forked child (a DataLoader worker) shares
#: each one's ``flock`` until it closes its copy: a run stopped in a notebook whose
#: traceback kept its loader's workers alive held its folder, and the next run there was
#: refused as "in use by another training run" (this very process). Closed in every child.
_HELD: set[int] = set()


os.register_at_fork(after_in_child=lambda: close_inherited(_HELD))


class RunFolderLock:
    """The run folder's lock: :meth:`acquire` once, :meth:`release` at the end (both safe
    to call when nothing is held)."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self._fd: Optional[int] = None

    def path(self) -> str:
        """The lock file: in drivestage's state folder, named after the run folder's real
        path (a relative ``out_dir`` or a link to the folder is the same folder)."""
        from drivestage.state import state_dir

        digest = hashlib.sha256(os.path.realpath(self.out_dir).encode()).hexdigest()[:32]
        return str(state_dir() / "locks" / f"train-{digest}.lock")

    def acquire(self) -> None:
        """Hold the lock, or raise :class:`RunFolderBusyError` naming the process holding it."""
        from drivestage.errors import DriveStageError

        try:
            path = self.path()
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except (OSError, DriveStageError) as exc:
            logger.warning("cannot lock the run folder %s (%s): another training run "
                           "started in it now would not be refused", self.out_dir,
                           getattr(exc, "strerror", None) or exc)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                logger.warning("cannot lock the run folder %s (%s): another training run "
                               "started in it now would not be refused", self.out_dir,
                               exc.strerror or exc)
                return
            raise RunFolderBusyError(
                f"{self.out_dir} is in use by another training run{holder}: two runs in one "
                "folder overwrite each other's checkpoints. Stop that run first, or give "
                "this one a folder of its own (--set train.out_dir=...)") from None
        # Who holds it, for the second run's message (a look only: the lock is the flock).
        text = f"{os.getpid()} {socket.gethostname()} {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, text.encode(), 0)
        except OSError:
            pass  # a full disk: the lock holds all the same
        self._fd = fd
        _HELD.add(fd)

    def release(self) -> None:
        """Let the lock go (closing the file drops the ``flock``), and the run's lease on
        drive.logs with it (:mod:`trainer.lease`)."""
        from trainer.lease import release_all

        release_all()
        fd, self._fd = self._fd, None
        if fd is not None:
            _HELD.discard(fd)
            os.close(fd)


def _read_holder(fd: int) -> str:
    """`` (pid N on HOST, since TIME)`` from the lock file, or "" when it says nothing."""
    try:
        parts = os.pread(fd, 200, 0).decode(errors="replace").split(maxsplit=2)
    except OSError:
        return ""
    if len(parts) < 3 or not parts[0].isdigit():
        return ""
    return f" (pid {parts[0]} on {parts[1]}, since {parts[2].strip()})"
