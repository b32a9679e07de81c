"""The re-check just before a Drive folder is removed: no run folder marked inside it since
the listing.

``push --delete`` decides on a listing taken before it sends its files, and leaves whole a
folder holding a run folder at any depth (:func:`drivestage.extra._inside`, asked then). A
run on another machine may begin meanwhile in a folder *inside* one to go (``runs/old/exp1``
marked by its property, or by a Drive mount's ``.drivestage/run-folder``): the folder's own
re-check (its properties, :func:`drivestage.drive.provenance.check_as_listed`; its mount
mark) did not look inside, and the trash (or ``--delete-permanently``) took the run with its
parent (seen36). So every folder inside is read again too (:func:`left_unmarked`): one
``files.list`` of each folder's children, whose ``fields`` name their properties (Drive
v2's listing may leave properties out where no ``fields`` are named), and one more for each
``.drivestage`` folder met (its ``run-folder`` file). A plain folder with no subfolder costs
one listing, as the mount-mark check alone did.

Drive's listing lags (eventually consistent): a mount's mark file synced a moment ago may be
missing from it while the run's new checkpoints, synced with it, are listed (lag36). So the
same listings, of every child rather than the subfolders alone, are also held against the
plan's (the store's last listing of each folder): a folder in which an item came, or changed
(md5, modified date), since it was listed is left too, said once; the next push decides again
on a listing of its own. No request more: the listing of a folder's subfolders became one of
all its children (more pages only where a folder holds more than a page, and ``--delete``
removes no more items than its limit).

Bounded: at most :data:`MAX_FOLDERS` listings and :data:`SECONDS` for one folder removed;
past either it is left, and said so (never removed unread: the trash takes all it holds).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping, Optional

from drivestage.drive.mount_marks import Children
from drivestage.drive.resources import FOLDER_MIME, run_marked
from drivestage.errors import LeftAloneError, NotFoundError
from drivestage.local_marks import MARK
from drivestage.paths import STATE_DIR
from drivestage.store import RemoteEntry

log = logging.getLogger("drivestage.drive.store")

#: What a listing of a folder's children asks for: enough to walk on (id, title, kind,
#: parents, the trash label, a resource key), each folder's properties (its run-folder mark),
#: and what tells an item changed since the plan's listing (md5, modified date).
FIELDS = ("nextPageToken,items(id,title,mimeType,parents(id),labels(trashed),resourceKey,"
          "md5Checksum,modifiedDate,properties(key,visibility))")
#: Folders listed (one request each, and one more per ``.drivestage``) before a folder to
#: remove is left unread: a tree larger than --delete's own limit lets go at once anyway.
MAX_FOLDERS = 1000
#: Seconds the walk of one folder may take before it is left: what was read first is old by
#: then, and the folder goes only on a fresh look.
SECONDS = 120.0

#: The store's listing of a folder's children with :data:`FIELDS`: (folder id, where).
Folders = Callable[[str, str], list[dict[str, Any]]]
#: What a listing showed of an item: (md5, modified date, the ids of its parents), each None
#: where it named none.
Stamp = tuple[Optional[str], Optional[str], Optional[frozenset[str]]]
#: folder id -> what the store's last listing of it showed: item id -> its stamp.
Listed = Mapping[str, Mapping[str, Stamp]]


def stamp(res: Mapping[str, Any]) -> Stamp:
    """What a listing's item ``res`` tells of its version."""
    md5, modified, parents = res.get("md5Checksum"), res.get("modifiedDate"), res.get("parents")
    return (md5 if isinstance(md5, str) else None,
            modified if isinstance(modified, str) else None,
            frozenset(str(p.get("id")) for p in parents if isinstance(p, Mapping))
            if isinstance(parents, list) else None)


def left_unmarked(folders: Folders, children: Children, folder: RemoteEntry,
                  where: str, listed_then: Listed) -> Optional[str]:
    """Just before ``folder`` is removed: :class:`LeftAloneError` (logged) where it, or a
    folder at any depth in it, holds a ``.drivestage/run-folder`` file, or a folder in it
    carries the run-folder property (the folder's own property is read by its files.get);
    or where the walk passed :data:`MAX_FOLDERS` or :data:`SECONDS`. Else why the folder is
    to be left all the same (:func:`leave`), where an item came into a folder it read, or
    changed, since ``listed_then`` showed that folder; None: it may go. (A mark is named
    before a change, the folder's own property too: the walk goes on past a change, at no
    request more, and the caller leaves the folder only once its files.get passed.)"""
    began = time.monotonic()
    todo = [(folder.id, where)]
    seen = {folder.id}   # (a folder with two parents inside, kept from before 2020: read once)
    listed = 0
    changed: Optional[str] = None
    outside: list[tuple[str, str, frozenset[str]]] = []   # (item, its folder, other parents)
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
        changed = changed or _change(subs, listed_then.get(at_id), at)
        outside.extend(_outside(subs, listed_then.get(at_id), at_id, at))
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
            if sub_id not in seen:
                seen.add(sub_id)
                todo.append((sub_id, inner))
    for inner, at, others in outside:
        if others - seen:   # (a folder of this walk: the removal takes the item whole)
            name = inner.rsplit("/", 1)[-1]
            _left(f"{where} was not deleted: {inner} is also in a folder outside it (an item "
                  "with two parents, kept from before 2020), and its removal would take that "
                  f"from there too. Take {name} out of {at} on Drive (it stays in its other "
                  f"folder) to let {where} go")
    if changed is None:
        return None
    return (f"{where} was not deleted: {changed} since it was listed (someone writes there); "
            "the next push decides again")


def leave(said: str) -> None:
    """:class:`LeftAloneError` (logged) for a folder :func:`left_unmarked` found changed."""
    _left(said)


def _change(items: list[dict[str, Any]], then: Optional[Mapping[str, Stamp]],
            at: str) -> Optional[str]:
    """How the listing ``items`` of ``at`` differs from the plan's (``then``; None: not
    listed by this store, nothing to hold it against): an item new in it, or one whose md5
    or modified date moved (a field either listing left out is not compared)."""
    if then is None:
        return None
    for it in items:
        name = f"{at}/{it.get('title') or ''}"
        was = then.get(str(it.get("id")))
        if was is None:
            return f"{name} came in"
        now = stamp(it)
        if was[0] and now[0] and was[0] != now[0]:
            return f"{name} was given other content"
        if was[1] and now[1] and was[1] != now[1]:
            return f"{name} was modified"
    return None


def _outside(items: list[dict[str, Any]], then: Optional[Mapping[str, Stamp]], at_id: str,
             at: str) -> list[tuple[str, str, frozenset[str]]]:
    """Items of the listing ``items`` of ``at`` (``at_id``) in a folder the plan's listing
    (``then``) did not name for them: ``(its path, at, those folders' ids)``. Where the plan
    named no parents (a listing that left them out), it knew of ``at`` alone. The trash of a
    folder takes everything in it from every folder it is also in: a second parent the plan
    decided on (:mod:`drivestage.other_parents`) is not in the way, one it never saw is."""
    out = []
    for it in items:
        parents = stamp(it)[2]
        was = (then or {}).get(str(it.get("id")))
        known = was[2] if was is not None and was[2] is not None else frozenset({at_id})
        if parents is not None and parents - known:
            out.append((f"{at}/{it.get('title') or ''}", at, parents - known))
    return out


def _left(said: str) -> None:
    log.warning("%s", said)
    raise LeftAloneError(said)
