"""An ``unread.json`` (:mod:`drivestage.unread_memory`) that is there but cannot be read:
never written over, and ``push --delete`` refused while it lasts.

Unreadable is not damaged. A ``sudo drivestage push`` (to read a root-only mount) that met a
stopped mount wrote the memory root's, mode 0600, in the user's state folder; the user's next
push could not read it, took it as none and went on: its ``--delete`` trashed what Drive held
under the stopped mount, the loss the memory is for, and the first folder that push noted
wrote the file anew, root's records lost for good (attack51). Such a file (a regular file
that cannot be read: EACCES, EIO) is now left as it is (this process's records held in the
process only, as where the state folder cannot be written) and a ``--delete`` is refused
until it is made readable or moved away, as for ``run-folders.json``
(:func:`drivestage.run_folders.check_readable`). A damaged one (not JSON, another version's)
reads, and a folder, FIFO or device in its place holds no records: what is there is lost
either way, and it is said and written anew (or held by the process) as before.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from drivestage.errors import LocalFileError
from drivestage.localfs import NotRegularFileError
from drivestage.state import JsonFile, LockBusyError, read_json, state_dir

log = logging.getLogger("drivestage.upload_tree")   # (push's lines' name)

#: The memory's name in the state folder, and the most bytes of it read (a record is about
#: 150: some 200,000 of them; one larger is damaged, and read whole it held memory in
#: proportion: attack51).
FILE = "unread.json"
MAX_BYTES = 32 << 20

#: The memory files said (once per process) to be ignored, by path.
_warned: set[str] = set()


class UnreadableMemory(OSError):
    """The memory is there and cannot be read: not written over (:func:`not_over`)."""


def unreadable(path: Path, limit: int) -> Optional[str]:
    """Why the memory at ``path`` is a file that cannot be read (its ``strerror``), or None
    where it reads (damaged or not), is absent, or is no file that could hold records (a
    folder, a FIFO, a device). ``limit``: the most bytes read."""
    try:
        read_json(path, limit)
    except (FileNotFoundError, IsADirectoryError, NotRegularFileError):
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    except ValueError:
        return None   # (damaged: read, and written anew)
    return None


def not_over(path: Path, limit: int) -> None:
    """Raise :class:`UnreadableMemory` where the memory at ``path`` cannot be read: the
    update that asks is not made (its records are held by the process instead)."""
    why = unreadable(path, limit)
    if why is not None:
        raise UnreadableMemory(f"{why}: not written over")


def ignoring(path: str, why: str, unreadable_file: bool = False) -> None:
    """Say once a process that the memory at ``path`` is ignored (``why``), and what
    becomes of it: written anew where damaged, left as it is where it cannot be read
    (``unreadable_file``: :func:`unreadable` says so)."""
    if path in _warned:
        return
    _warned.add(path)
    if unreadable_file:
        log.warning("ignoring %s (%s): a folder an earlier push could not read is not known "
                    "to this one; it is not written over, and push --delete is refused until "
                    "it can be read (it may be another user's: a sudo push's)", path, why)
    else:
        log.warning("ignoring %s (%s): a folder an earlier push could not read is not known "
                    "to this one; it is written anew", path, why)


def check_readable() -> None:
    """Refuse a ``push --delete`` while the memory is there and cannot be read: the folders
    an earlier push could not read (a stopped mount, now an empty mount point) are unknown,
    and the delete would take what Drive holds under them."""
    path = state_dir() / FILE
    why = unreadable(path, MAX_BYTES)
    if why is not None:
        raise LocalFileError(
            f"cannot read {path} ({why}): it records the folders an earlier push could not "
            "read (a stopped mount), and without it --delete could take what Drive holds "
            "under one; nothing was sent or deleted. Make it readable (it may be another "
            "user's: a sudo push's), or move it away to start anew, then run again")
    try:   # (a push that found a mount stopped may be writing its note: attackc52)
        JsonFile(path).wait_free()
    except LockBusyError as exc:
        raise LocalFileError(
            f"cannot read {path} ({exc.strerror}): it records the folders an earlier push "
            "could not read (a stopped mount), and a note of one may be under way in that "
            "process; without it --delete could take what Drive holds under one; nothing was "
            "sent or deleted. Let that process go on (fg), or end it, then run again") from None
