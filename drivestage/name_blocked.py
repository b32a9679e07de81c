"""The names of SRC a push leaves unsent because a folder on the store has them (alone, or
beside a file of the name: :class:`~drivestage.errors.NameSharedError`), and what it says.

Sent beside such a folder, a file made a name that every pull refuses ("names 2 items";
attackpush45), so the name is not sent. Before, the whole push was refused (exit 2, nothing
sent) until the user renamed the folder: a training run's later checkpoints never reached
Drive, a mirror stopped (attackint48). Now only that name waits: everything else is sent,
``--delete`` and retention do what they do for the rest (never removing the file or the
folder at the name, unless ``--delete`` removes the folder: it is not local), each name is
said in one line (:func:`say`), and the push fails once everything else is done
(:func:`error`, exit 1), as it does for a path it could not read (:mod:`drivestage.unread`).
"""
from __future__ import annotations

import logging
from typing import Mapping, Sequence

from drivestage.errors import DriveStageError, FolderInTheWayError

# The name push's lines always had (a user's logging config, or grep, may name it).
log = logging.getLogger("drivestage.upload_tree")

#: Why a folder at a file's name stays after ``--delete`` (that name then waits, as without
#: ``--delete``; before, the whole push stopped, exit 2: pushblock49).
KEPT_WHY = (" (--delete keeps that folder: it is protected, a run folder, filtered out, or "
            "also in a folder outside DEST)")

#: Lines said of such names in one push; the rest counted.
SAID_AT_MOST = 10

#: What :func:`say` said last, by DEST: a mirror pushes every period, and a trainer every few
#: minutes; the same lines each time hid everything else (said again once they change).
_SAID: dict[str, tuple[str, ...]] = {}


def say(blocked: Sequence[FolderInTheWayError], dest: str) -> None:
    """One line for each of ``blocked`` (at most :data:`SAID_AT_MOST`, the rest counted);
    not again while the same names are blocked alike in ``dest``."""
    lines = tuple(sorted(str(b) for b in blocked))
    if _SAID.get(dest, ()) == lines:
        return
    _SAID[dest] = lines
    for line in lines[:SAID_AT_MOST]:
        log.error("%s", line)
    if len(lines) > SAID_AT_MOST:
        log.error("... and %d more names of SRC that a folder on Drive holds",
                  len(lines) - SAID_AT_MOST)


def error(blocked: Sequence[FolderInTheWayError], on_drive: bool = True) -> DriveStageError:
    """The push's failure once everything else was done (exit 1: a partial push); DEST on
    Drive or (``on_drive`` false) a local folder."""
    n = len(blocked)
    one = n == 1
    there = "on Drive" if on_drive else "in DEST"
    return DriveStageError(
        f"{n} file{'' if one else 's'} of SRC not sent: a folder {there} has "
        f"{'its name' if one else 'their names'} (the line{'' if one else 's'} above "
        f"name{'s' if one else ''} {'it' if one else 'them'}); everything else was pushed, "
        f"and nothing at {'that name' if one else 'those names'} {there} was removed; push "
        f"again once the folder{'' if one else 's'} {'is' if one else 'are'} renamed")


def owners(blocked: dict[tuple[str, str], FolderInTheWayError],
           owned: Mapping[tuple[str, str], set[tuple[str, str]]],
           shown: Mapping[tuple[str, str], str], for_run: bool) -> None:
    """Into ``blocked`` (by (folder, name) of SRC), each checkpoint whose sidecar is there
    (``owned``: sidecar -> the checkpoints it vouches for; ``shown``: how a file is named).
    A checkpoint goes only with its sidecar: sent while its sidecar could not be, the copy
    on the store (replaced in place) was one no sidecar vouched for, the old sidecar still
    beside the folder naming the old bytes (lead48)."""
    for side, mine in owned.items():
        if side not in blocked:
            continue
        for key in sorted(mine - set(blocked)):
            blocked[key] = FolderInTheWayError(
                blocked[side].where,
                f"{shown[key]} (the checkpoint that sidecar vouches for: one goes only "
                f"with its sidecar)", "rename that folder on Drive" if for_run
                else "rename one of them, or push with --delete to replace the folder")
