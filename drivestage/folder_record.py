"""A folder pull's record of the folder it pulled, kept in the local copy's state folder
(``DEST/<folder>/.drivestage/folder@<hash of SRC>.pulled``): the folder's id, its name
and the folder it sat in, and the resource keys a request for it by id needs.

A rerun of ``pull drive:F DEST`` reads it and asks Drive for the folder and its children in
one request (:meth:`drivestage.store.RemoteStore.listed_at`), instead of resolving the path
and listing the folder (two round trips before the first file). The record vouches for
nothing: it only says which folder to ask about, and the answer decides (a folder moved,
renamed, trashed or gone is resolved by its path again, as on a first pull).

Read and written as stamps are (:mod:`drivestage.stamps`), through the state folder's
checked descriptor: this user's regular file only, never through a link. Not a ``.json``
file: stamps are those, and a record is none. Written at the end of a pull that staged
something into the folder (its state folder is there), and only when it says something new.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Optional

from drivestage.extract.statedir import opened_state, read_own
from drivestage.localfs import atomic_write_at
from drivestage.paths import StorePath
from drivestage.store import RemoteEntry, RemoteStore

VERSION = 1
#: The most bytes of a record read (one is about 200: an id, a name, a resource key).
_MAX_BYTES = 1 << 16


def _entry(src: str) -> str:
    key = hashlib.sha1(src.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"folder@{key}.pulled"


def read(root: str, src: str) -> Optional[dict[str, Any]]:
    """The record of the pull of ``src`` into the local folder ``root``, or None (none
    there, not this user's regular file, damaged, of another SRC)."""
    if not os.path.isdir(root):
        return None
    with opened_state(root, create=False) as fd:
        raw = read_own(fd, _entry(src), _MAX_BYTES) if fd is not None else None
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):   # (nested too deep: was a traceback, mount52)
        return None
    if not isinstance(record, dict) or record.get("version") != VERSION or \
            record.get("src") != src or not all(
                isinstance(record.get(k), str) and record[k] for k in ("id", "parent_id")) or \
            not isinstance(record.get("access"), (str, type(None))):
        return None
    return record


def find(store: RemoteStore, record: dict[str, Any], path: StorePath
         ) -> Optional[RemoteEntry]:
    """The recorded folder and, for the pull's walk, its listing, in one request; None when
    Drive's answer does not show it at ``path`` (then resolve it)."""
    if record.get("access"):
        store.use_access_hint(record["id"], record["access"])
    return store.listed_at(path, record["id"], record["parent_id"])


def write(store: RemoteStore, root: str, src: str, folder: RemoteEntry) -> None:
    """Record ``folder`` (pulled from ``src`` into ``root``) where its stamps are, when the
    pull staged something there (its state folder exists) and the record is not already
    this one. A folder reached through a link (a shortcut) is not recorded: it is resolved
    at every pull."""
    if folder.linked or not folder.parent_id or not folder.id:
        return
    record = {"version": VERSION, "src": src, "id": folder.id, "name": folder.name,
              "parent_id": folder.parent_id, "access": store.access_hint(folder)}
    if read(root, src) == record:
        return
    with opened_state(root, create=False) as fd:
        if fd is not None:
            atomic_write_at(fd, _entry(src), json.dumps(record, separators=(",", ":")).encode())
