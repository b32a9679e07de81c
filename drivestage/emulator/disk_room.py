"""The emulator's own disk as a storage limit: an upload is refused as Drive refuses one that
does not fit the account's storage (403 ``storageQuotaExceeded``) where it would leave less
than :attr:`Emulator.min_free_bytes` free on the data folder's file system. Without a quota
(the default) an endless upload filled the disk (emulefts46); a pipeline under test still
uploads whatever the disk can hold, and meets Drive's own answer to a full Drive."""
from __future__ import annotations

import shutil
import threading
from typing import Optional

from drivestage.emulator.errors import drive_error

#: The default reserve: this much, or a tenth of the file system, whichever is less (a
#: small tmpfs a test gives the emulator keeps room for its uploads).
DEFAULT_MIN_FREE = 1 << 30
#: A body of unknown length writes at most this much between two checks of the room left.
CHECK_STEP = 16 << 20


def min_free(setting: Optional[int], path: str) -> int:
    """The bytes to keep free under ``path``: ``setting``, or the default where None."""
    if setting is not None:
        return setting
    return min(DEFAULT_MIN_FREE, shutil.disk_usage(path).total // 10)


def check_step(setting: Optional[int], path: str) -> int:
    """The bytes a body of unknown length may write between two checks of the room left: a
    quarter of the reserve, at most :data:`CHECK_STEP`, so that the reserve outlasts the
    bytes written unchecked, those of a few such uploads at once too. A fixed 16 MiB step
    was more than the default reserve of a disk under 160 MiB, which then filled (500,
    "No space left on device") before the upload was refused (emul47)."""
    keep = min_free(setting, path)
    return CHECK_STEP if keep <= 0 else min(CHECK_STEP, keep // 4)


#: What the uploads under way may still write, by the thread serving each: (the folder, the
#: bytes its request declared). Checked one by one against the free space alone, two
#: uploads of 15 MiB started together with 20 MiB of room both passed and wrote (attack47).
_PROMISED: dict[int, tuple[str, int]] = {}
_PROMISED_LOCK = threading.Lock()


def check_disk_room(path: str, pending: int, setting: Optional[int]) -> None:
    """403 storageQuotaExceeded where ``pending`` more bytes under ``path`` would leave less
    than the reserve (:func:`min_free`) free beside what the other uploads under way there
    declared; a reserve of 0 checks nothing. What passes is promised to this thread's
    request (the most it declared) until :func:`release_room`."""
    keep = min_free(setting, path)
    if keep <= 0:
        return
    me = threading.get_ident()
    with _PROMISED_LOCK:
        others = sum(n for t, (at, n) in _PROMISED.items() if at == path and t != me)
        free = shutil.disk_usage(path).free
        if free - others - pending < keep:
            raise drive_error("storageQuotaExceeded", (
                f"The user's Drive storage quota has been exceeded. (The emulator keeps {keep} "
                f"bytes free on the disk of its data folder, which has {free} free"
                + (f", {others} of it promised to uploads under way" if others else "")
                + ": free some space, or lower --min-free-bytes.)"))
        if pending > _PROMISED.get(me, (path, 0))[1]:   # (a later check, its bytes landed: 0)
            _PROMISED[me] = (path, pending)


def release_room() -> None:
    """The end of the request this thread served: what it declared is written, or never
    will be (:func:`check_disk_room`)."""
    with _PROMISED_LOCK:
        _PROMISED.pop(threading.get_ident(), None)
