"""The re-check just before a Drive folder is removed: no run folder marked inside it since
the listing.

``push --delete`` decides on a listing taken before it sends its files, and leaves whole a
folder holding a run folder at any depth (:func:`drivestage.extra._inside`, asked then). A
run on another machine may begin meanwhile in a folder *inside* one to go (``runs/old/exp1``
marked by its property, or by a Drive mount's ``.drivestage/run-folder``): the folder's own
re-check (its properties, :func:`drivestage.drive.provenance.check_as_listed`; its mount
mark) did not look inside, and the trash (or ``--delete-permanently``) took the run with its
parent (seen36). So every folder inside is read again too (:func:`left_unmarked`): one
``files.list`` of each folder's subfolders, whose ``fields`` name their properties (Drive
v2's listing may leave properties out where no ``fields`` are named), and one more for each
``.drivestage`` folder met (its ``run-folder`` file). A plain folder with no subfolder costs
one listing, as the mount-mark check alone did.

Bounded: at most :data:`MAX_FOLDERS` listings and :data:`SECONDS` for one folder removed;
past either it is left, and said so (never removed unread: the trash takes all it holds).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from drivestage.drive.mount_marks import Children
from drivestage.drive.resources import FOLDER_MIME, run_marked
from drivestage.errors import LeftAloneError, NotFoundError
from drivestage.local_marks import MARK
from drivestage.paths import STATE_DIR
from drivestage.store import RemoteEntry

log = logging.getLogger("drivestage.drive.store")

#: What a listing of subfolders asks for: enough to walk on (id, title, kind, parents, the
#: trash label, a resource key) and each folder's properties (its run-folder mark).
FIELDS = ("nextPageToken,items(id,title,mimeType,parents(id),labels(trashed),resourceKey,"
          "properties(key,visibility))")
#: Folders listed (one request each, and one more per ``.drivestage``) before a folder to
#: remove is left unread: a tree larger than --delete's own limit lets go at once anyway.
MAX_FOLDERS = 1000
#: Seconds the walk of one folder may take before it is left: what was read first is old by
#: then, and the folder goes only on a fresh look.
SECONDS = 120.0

#: The store's listing of a folder's subfolders with their properties: (folder id, where).
Folders = Callable[[str, str], list[dict[str, Any]]]


def left_unmarked(folders: Folders, children: Children, folder: RemoteEntry,
                  where: str) -> None:
    """Just before ``folder`` is removed: :class:`LeftAloneError` (logged) where it, or a
    folder at any depth in it, holds a ``.drivestage/run-folder`` file, or a folder in it
    carries the run-folder property (the folder's own property is read by its files.get);
    or where the walk passed :data:`MAX_FOLDERS` or :data:`SECONDS`."""
    began = time.monotonic()
    todo = [(folder.id, where)]
    listed = 0
    while todo:
        if listed >= MAX_FOLDERS or time.monotonic() - began > SECONDS:
            _left(f"{where} was not deleted: it holds more folders than could be read again "
                  f"before its removal ({listed} read in {time.monotonic() - began:.0f} s, "
                  f"at most {MAX_FOLDERS} and {SECONDS:.0f} s), to see that no run began in "
                  "one since it was listed; delete it on Drive, or push again")
        at_id, at = todo.pop()
        listed += 1
        try:
            subs = folders(at_id, at)
        except NotFoundError:
            if at_id == folder.id:
                raise   # (gone itself: the goal reached, as its files.get would say)
            continue    # (one inside gone since it was listed: nothing left to keep there)
        for sub in subs:
            name, sub_id = sub.get("title") or "", sub.get("id")
            if not isinstance(sub_id, str) or sub.get("mimeType") != FOLDER_MIME:
                continue
            inner = f"{at}/{name}"
            if name == STATE_DIR:
                listed += 1
                if any(it.get("mimeType") != FOLDER_MIME
                       for it in children(sub_id, inner, MARK)):
                    _left(f"{where} was marked a run folder on Drive since it was listed "
                          f"(its {STATE_DIR}/{MARK}, synced by a Drive mount); not deleted"
                          if at_id == folder.id else
                          f"{where} holds {at}, marked a run folder on Drive since it was "
                          f"listed (its {STATE_DIR}/{MARK}, synced by a Drive mount); not "
                          "deleted")
                continue
            if run_marked(sub):
                _left(f"{where} holds {inner}, marked a run folder on Drive since it was "
                      "listed; not deleted")
            todo.append((sub_id, inner))


def _left(said: str) -> None:
    log.warning("%s", said)
    raise LeftAloneError(said)
