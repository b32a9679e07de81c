"""The autosaves kept in the run folder: the newest two, and those a push may be sending.

:class:`trainer.writer.BackgroundWriter` writes ``autosave_<iteration>.pt`` every
``train.save_minutes`` and keeps the newest :data:`LOCAL_AUTOSAVES` of them.
One pruned while a push was sending it reached Drive without its sidecar (deleted here first,
then its file, while its bytes were on their way): an undescribed checkpoint there, which no
retention rule deletes (it names no run), a checkpoint's size each time, and the autosave
never verified (attacktrain26). So the newest autosaves present when a push began
(``spare``) stay until it ends, beside the newest ones written meanwhile (at most twice
:data:`LOCAL_AUTOSAVES`, which :mod:`trainer.room` counts with Drive); the
next prune after it removes them.
"""
from __future__ import annotations

import logging
import os
from typing import Collection, Optional

from trainer import checkpoint as ckpt
from trainer.state import AUTOSAVE_NAME

logger = logging.getLogger(__name__)

#: Autosaves kept in the run folder (the newest and the one before it, in case the newest
#: is still being uploaded when the machine dies).
LOCAL_AUTOSAVES = 2


def newest(folder: str, keep: int, upto: Optional[int] = None) -> set[str]:
    """The newest ``keep`` autosaves in ``folder`` now (none when it cannot be read), up to
    iteration ``upto`` (the run's furthest write, when there is one): those a push beginning
    now may send (the folder was pruned to about that many; with a retention policy the push
    sends the newest alone). Not those above ``upto``, left by a run sent back on purpose:
    :func:`prune` never touches them, and taken for the newest they spared none of the new
    branch's, pruned here while a push sent it (train27)."""
    try:
        found = sorted((int(m.group("iteration")), m.string) for m in map(
            AUTOSAVE_NAME.match, os.listdir(folder))
            if m is not None and (upto is None or int(m.group("iteration")) <= upto))
    except OSError:
        return set()
    return {name for _, name in found[-keep:]}


def split(folder: str, keep: int, upto: Optional[int] = None) -> tuple[set[str], list[str]]:
    """At a push's start: the autosaves it may send (:func:`newest`: spared until it ends) and
    the files it must not send, those :func:`prune` may remove while it runs (older ones up to
    ``upto``, with their sidecars). Without a retention policy a push sent every autosave
    here; one pruned under its upload reached Drive without its sidecar (train28)."""
    spare = newest(folder, keep, upto)
    try:
        names = os.listdir(folder)
    except OSError:
        return spare, []
    older = sorted(m.string for m in map(AUTOSAVE_NAME.match, names) if m is not None
                   and m.string not in spare and (upto is None or int(m.group("iteration")) <= upto))
    return spare, [f for name in older for f in (name, os.path.basename(ckpt.sidecar_path(name)))]


def prune(folder: str, written: int, keep: int, spare: Collection[str] = ()) -> list[str]:
    """Keep the newest ``keep`` autosaves up to iteration ``written`` (the one just written
    among them) and those in ``spare``; the names removed. Those numbered above ``written``
    are left alone: a run sent back on purpose left them (by number they were "newer", and
    every autosave of the new branch, the stop save included, was deleted as soon as it was
    written)."""
    try:
        names = os.listdir(folder)
    except OSError as exc:   # (the run folder gone or its mount hung up since the write:
        # nothing to prune here; the write's own end says how the save went. It raised in
        # the writer thread, a traceback after the run: attackt31_hung_stop's teardown)
        logger.debug("could not list %s to prune autosaves: %s", folder, exc)
        return []
    found = sorted((int(m.group("iteration")), m.string) for m in map(AUTOSAVE_NAME.match, names)
                   if m is not None and int(m.group("iteration")) <= written)
    gone = []
    for name in (name for _, name in found[:-keep] if name not in spare):
        path = os.path.join(folder, name)
        try:
            ckpt.remove_checkpoint(path)
        except OSError as exc:
            # (A folder of its name, a file a network file system will not let go: EIO,
            # EPERM. Raised, it ended the writer's thread, and the next epoch's save waited
            # for it for good: trainatk47. The file stays; nothing is lost.)
            logger.warning("could not remove the older autosave %s (train.save_minutes keeps "
                           "the newest %d): %s; it stays", path, keep, exc)
            continue
        gone.append(name)
        logger.debug("removed the older local autosave %s", name)
    return gone
