"""A folder pulled before, found again with its listing in one request
(:meth:`DriveStore.listed_at`): the rerun of a folder pull asked twice, once for the path
(``title='F' and 'P' in parents``) and once for the folder's children, two round trips
before its first file.

One ``files.list`` asks both: ``('P' in parents and title='F' and trashed=false) or ('FID'
in parents and trashed=false)``, where FID is the folder the earlier run pulled and P the
folder it sat in (the record a folder pull keeps: :mod:`drivestage.folder_record`). The
answer holds FID itself when it is still a folder named F in P, beside its children. It is
taken only when it says exactly what the path's resolve and the listing would have: FID
there under that exact name (Drive's title match ignores case), not trashed, a plain
folder, and no other item of that exact name in P (a duplicate: the resolve refuses it,
naming the ids), and at least one child listed: Drive's answer to an OR of parents can
leave every item of one parent out, silently (``drivestage/emulator/split_or.py`` names the
reports), so an answer with the folder and none of its children is no proof the folder is
empty, nor a page of it without a child (each page is a request Drive can answer so). Anything else is None, and the pull resolves the path as a first pull does. P is
the store's top (or the id the path starts at) for a path of one name; deeper, the recorded
parent: as for a single file's rerun (:func:`drivestage.stage.recheck`), the
folders above P are not asked again, the path's last step is. A server that refuses the
query (400: a Drive that no longer takes that form) costs the resolve, not the pull.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

from drivestage.drive import paging, provenance
from drivestage.drive.resources import FOLDER_MIME, DriveEntry, check_resource, is_shortcut, \
    is_trashed
from drivestage.drive.store_folders import SHARED_WITH_ME
from drivestage.errors import RemoteError, WrongItemError
from drivestage.paths import StorePath, printable

log = logging.getLogger(__name__)

#: The :class:`~drivestage.drive.store.DriveStore` asking (a layer above this module).
Store = Any


def _escape(name: str) -> str:
    """A name inside a ``q`` string literal."""
    return name.replace("\\", "\\\\").replace("'", "\\'")


def where_of(store: Store, path: StorePath) -> str:
    """``path`` as :meth:`DriveStore.resolve` names it in messages (``drive:a/b``)."""
    where = f"drive:id:{path.start}" if path.start is not None else \
        (store.label.rstrip("/") if path.names else store.label)
    for name in path.names:
        name = printable(name)
        where = f"drive:{name}" if where == "drive:" else f"{where.rstrip('/')}/{name}"
    return where


def listed_at(store: Store, path: StorePath, folder_id: str, parent_id: str
              ) -> Optional[tuple[DriveEntry, list[dict[str, Any]]]]:
    """The folder ``folder_id`` at ``path`` and its children's resources (trashed ones left
    out), from one listing; None when the answer does not show it there alone (see the
    module doc)."""
    name = path.names[-1] if path.names else None
    if len(path.names) == 1:   # (in the store's top or the id given: known, not recorded)
        parent_id = path.start if path.start is not None else store.root_id
    if name is None or SHARED_WITH_ME in (parent_id, folder_id):
        return None   # (Shared with me is no folder a query can name)
    where = where_of(store, path)
    params = store._list_params()
    params["q"] = (f"('{_escape(parent_id)}' in parents and title='{_escape(name)}' and "
                   f"trashed=false) or ('{_escape(folder_id)}' in parents and trashed=false)")
    pages: list[list[dict[str, Any]]] = []

    def page(what: str, fn: Any) -> Any:   # (each page's items, as answered)
        got = store.call(what, fn)
        if got is not None:
            pages.append([dict(it) for it in got])
        return got
    try:
        items = paging.all_pages(page, store.drive.ListFile(params), where)
    except RemoteError as exc:
        if exc.status != 400:   # (a bad request, never retried: no wait is doubled)
            raise
        log.info("list %s with its lookup: %s; resolved by its path instead", where, exc)
        return None
    for it in items:
        check_resource(it, where)
    try:
        provenance.check_listed(items, None, where)   # (one id, one name)
    except WrongItemError:
        return None   # (renamed between two pages: the resolve and listing sort it out)
    if any(provenance.is_in(it, folder_id) is None for it in items):
        return None   # (an answer without parents: which clause it matched is unknown)
    unique = {str(it.get("id")): it for it in items}
    folder = unique.pop(folder_id, None)
    if folder is None or folder.get("title") != name or is_trashed(folder) or \
            is_shortcut(folder) or folder.get("mimeType") != FOLDER_MIME or \
            not provenance.is_in(folder, parent_id):
        return None
    if any(it.get("title") == name and provenance.is_in(it, parent_id) is not False
           for it in unique.values()):
        return None   # another item of that name beside it: the resolve names both
    keys = store.transport.resource_keys
    key = folder.get("resourceKey")
    keys.learn(folder_id, key if isinstance(key, str) else None, via=parent_id)
    children = [it for it in unique.values() if provenance.is_in(it, folder_id)]
    if not children or \
            not all(any(provenance.is_in(it, folder_id) for it in got) for got in pages):
        # Drive's answer to an OR of parents can hold one parent's items and silently none
        # of the other's (incompleteSearch false: rclone's issues 3114, 4289 and 9810):
        # the folder without its children is no proof it is empty. An empty folder costs
        # the resolve and the listing; a lost parent cost every file in it. Each page is
        # an answer of its own: one without a child (a second page that lost them, the
        # first whole) is no proof either; the rerun took the first page's files as the
        # folder's all, exit 0 (attackguard40).
        return None
    for it in children:
        key = it.get("resourceKey")
        keys.learn(it["id"], key if isinstance(key, str) else None, via=folder_id)
    entry = store._entry(folder, where)
    if entry.unreadable or entry.via_shortcut:
        return None
    return entry, [it for it in children if not is_trashed(it)]
