"""The local sidecars a push cannot read (EACCES, EIO: :mod:`drivestage.unread`), found
before anything is planned or sent: each waits, and so do the checkpoints it vouches for
(:func:`waiting`).

A checkpoint goes only with its sidecar (lead48). One whose sidecar failed only at its own
send (sidecars go after their checkpoints) was sent already: beside the store's copy, kept
for the sidecar that was not updated, two files of one name were left; where that copy was
another run's, whose it was had not been asked either (``other_runs`` took the failed read
for "gone meanwhile"), and ``--delete`` planned the new pair as the newest verified
(pushblock49)."""
from __future__ import annotations

import logging
from typing import Iterable, Mapping

from drivestage import unread
from drivestage.errors import BecameOtherError
from drivestage.local_tree import LocalFile
from drivestage.sidecar import is_sidecar
from drivestage.special_files import Hashes, walked_md5

Key = tuple[str, str]   # (folder of SRC, name), as old_copies.Key

# The name push's lines always had (a user's logging config, or grep, may name it).
log = logging.getLogger("drivestage.upload_tree")

#: Checkpoints said to wait in one push (their sidecars' lines are unread's, counted there).
SAID_AT_MOST = 10

#: What :func:`say` said last, by DEST: not again while the same (a mirror's periods).
_SAID: dict[str, tuple[str, ...]] = {}


def waiting(files: Iterable[LocalFile], cache: Hashes,
            owners: Mapping[Key, set[Key]]) -> tuple[list[unread.Unread], dict[Key, str]]:
    """The sidecars of ``files`` (``owners``: sidecar -> its checkpoints) that could not be
    read, and each key that waits (the sidecar, its checkpoints) -> its path as shown. Read once into ``cache`` (small files: a send hashes them anyway); one gone, or
    become a link or FIFO, is the send's to say."""
    by_key = {(lf.folder_rel, lf.name): lf for lf in files}
    failed: list[unread.Unread] = []
    waits: dict[Key, str] = {}
    for side, ckpts in sorted(owners.items()):
        lf = by_key.get(side)
        if lf is None or not ckpts & set(by_key):
            continue
        try:
            walked_md5(cache, lf.path, lf.real)
        except BecameOtherError:
            continue
        except OSError as exc:
            got = unread.of(exc, lf.rel, [lf.path, lf.real, lf.named])
            if got is None:
                continue
            failed.append(got)
            for key in {side} | (ckpts & set(by_key)):
                waits[key] = by_key[key].shown
    return failed, waits


def say(waits: Mapping[Key, str], dest: str) -> int:
    """One line for each checkpoint of ``waits`` (:func:`waiting`), after its sidecar's;
    not again while the same wait alike for ``dest``. Returns how many such lines there are
    (said now or before: the end line counts them, :func:`drivestage.unread.error`)."""
    lines = tuple(f"{shown} is not sent either: a checkpoint goes only with its sidecar, "
                  "which could not be read" for (_, n), shown in sorted(waits.items())
                  if not is_sidecar(n))
    if _SAID.get(dest, ()) == lines:
        return len(lines[:SAID_AT_MOST])
    _SAID[dest] = lines
    for line in lines[:SAID_AT_MOST]:
        log.error("%s", line)
    return len(lines[:SAID_AT_MOST])
