"""Revision bookkeeping, as Drive keeps file versions.

Uploading new content to a file (``files.update`` with media) makes a new head revision and
keeps the old one (``newRevision`` true or absent), or replaces the head's bytes in place
(``newRevision=false``). Old revisions keep using storage quota until Drive purges them:
unpinned ones 30 days after they were superseded or once more than 100 exist; pinned ones
(``pinned=true``, "keep forever") stay. Sources: the ``newRevision``/``pinned`` parameters
and the Revision schema in the Drive v2 discovery document; Drive Help "Manage file
versions" for the 30 days / 100 versions rule.
"""
from __future__ import annotations

import hashlib
import os
import time
from typing import Optional

from drivestage.emulator.errors import EmulatorApiError
from drivestage.emulator.store import EmulatorStore
from drivestage.emulator.store_ids import new_id
from drivestage.emulator.wire import blob_checksums

MAX_UNPINNED_REVISIONS = 100
REVISION_LIFETIME = 30 * 86400.0


def _head(rec: dict) -> dict:
    return {"id": head_id(rec), "size": rec["size"], "md5": rec["md5"], "modified": rec["modified"],
            "pinned": bool(rec.get("head_pinned")), "mimeType": rec["mimeType"], "title": rec["title"],
            "head": True}


def head_id(rec: dict) -> str:
    """The id of the head revision (records from older emulators derive one)."""
    return rec.get("head_rev") or f"{rec['id']}-{rec['version']}"


def replace_content(store: EmulatorStore, file_id: str, blob: str, size: int, md5: str,
                    meta: Optional[dict] = None, *, new_revision: bool = True,
                    pinned: bool = False, sums: Optional[dict] = None) -> dict:
    """New content for an existing file, keeping its id; readers of the old bytes keep
    their open file (the blob is replaced, never rewritten). ``sums``: its SHA checksums,
    when known already."""
    sums = sums if sums is not None else blob_checksums(blob)
    with store.lock:
        store.check_open()
        rec = dict(store.get(file_id))
        now = store.now()
        # The old head's bytes move aside under their revision's name before the new ones
        # take the head's place, and stay there until the record says which is the head:
        # a SIGKILL between the two moves left a file whose every download answered 500,
        # its acknowledged bytes under a name no record knew (attackemu45). recover() puts
        # them back at the next start.
        stash = store.revision_path(rec["id"], head_id(rec)) if rec["size"] is not None else None
        if stash is not None:
            os.replace(store.blob_path(rec["id"]), stash)
        if new_revision and rec["size"] is not None:
            old = dict(_head(rec), superseded=now)
            old.pop("head")
            rec["revisions"] = list(rec.get("revisions", ())) + [old]
            rec["head_rev"] = new_id("0B")
            rec["head_pinned"] = pinned
            stash = None   # (the old head is a revision now, kept there)
        elif pinned:
            rec["head_pinned"] = True
        os.replace(blob, store.blob_path(rec["id"]))
        rec.update(size=size, md5=md5, modified=now, version=rec["version"] + 1, md5_shown=None,
                   **sums)
        rec.setdefault("head_rev", new_id("0B"))
        store._apply_meta(rec, meta or {})
        rec["revisions"] = _purge(store, rec, rec.get("revisions", []), now)
        store.save_file(rec)
        if stash is not None:   # (replaced in place: the old bytes go only now)
            _unlink(stash)
        return rec


def recover(store: EmulatorStore) -> int:
    """Finish or undo what a killed :func:`replace_content` left (at start, before
    serving): where the head's bytes still sit under the head revision's own name, the
    record was not saved (the head file is missing, or holds bytes the record does not
    describe) and they go back, or it was saved and they are stale; bytes no record names
    go. How many were put back."""
    restored = 0
    for rec in store.all_files():
        if rec.get("size") is None:
            continue
        stash = store.revision_path(rec["id"], head_id(rec))
        if not os.path.exists(stash):
            continue
        head = store.blob_path(rec["id"])
        if os.path.exists(head) and os.path.getsize(head) == rec["size"] \
                and _md5(head) == rec.get("md5"):
            _unlink(stash)
        else:
            os.replace(stash, head)
            restored += 1
    # Bytes no record names: a create killed between its bytes' move into blobs/ and its
    # record's write (attackemu45) took that disk for good.
    named = set(store.files)
    for rec in store.files.values():
        named.update(f"{rec['id']}@{v['id']}" for v in rec.get("revisions", ()))
    for name in os.listdir(store.blob_dir):
        if name not in named:
            _unlink(os.path.join(store.blob_dir, name))
    return restored


def _purge(store: EmulatorStore, rec: dict, revisions: list[dict], now: float,
           lifetime: float = REVISION_LIFETIME) -> list[dict]:
    """Drop what Drive would have purged: unpinned revisions superseded ``lifetime`` ago,
    and the oldest unpinned ones beyond :data:`MAX_UNPINNED_REVISIONS`."""
    keep = [v for v in revisions if v["pinned"] or now - v.get("superseded", now) < lifetime]
    unpinned = [v for v in keep if not v["pinned"]]
    excess = {v["id"] for v in unpinned[: max(0, len(unpinned) - MAX_UNPINNED_REVISIONS)]}
    keep = [v for v in keep if v["id"] not in excess]
    kept = {v["id"] for v in keep}
    for v in revisions:
        if v["id"] not in kept:
            _unlink(store.revision_path(rec["id"], v["id"]))
    return keep


def all_revisions(rec: dict) -> list[dict]:
    """Every revision of a file with content, oldest first, the head last."""
    if rec["size"] is None:
        return []
    return [dict(v, head=False) for v in rec.get("revisions", ())] + [_head(rec)]


def find(store: EmulatorStore, rec: dict, revision_id: str) -> tuple[dict, str]:
    """(revision, path of its bytes); 404 revisionNotFound when there is none."""
    for v in all_revisions(rec):
        if v["id"] == revision_id or (revision_id == "head" and v["head"]):
            path = store.blob_path(rec["id"]) if v["head"] else store.revision_path(rec["id"], v["id"])
            return v, path
    raise EmulatorApiError(404, "revisionNotFound", f"Revision not found: {revision_id}.",
                           location="revisionId", location_type="parameter")


def delete(store: EmulatorStore, file_id: str, revision_id: str) -> None:
    """Delete an old revision (its bytes stop counting); the head cannot be deleted."""
    with store.lock:
        rec = dict(store.get(file_id))
        v, path = find(store, rec, revision_id)
        if v["head"]:
            raise EmulatorApiError(400, "badRequest", "The head revision of a file cannot be deleted.")
        rec["revisions"] = [r for r in rec["revisions"] if r["id"] != v["id"]]
        store.save_file(rec)
        _unlink(path)


def set_pinned(store: EmulatorStore, file_id: str, revision_id: str, pinned: bool) -> dict:
    """Pin ("keep forever") or unpin one revision; returns it."""
    with store.lock:
        rec = dict(store.get(file_id))
        v, _ = find(store, rec, revision_id)
        if v["head"]:
            rec["head_pinned"] = pinned
        else:
            rec["revisions"] = [dict(r, pinned=pinned) if r["id"] == v["id"] else r for r in rec["revisions"]]
        store.save_file(rec)
        return dict(v, pinned=pinned)


def expire(store: EmulatorStore, file_id: Optional[str] = None, older_than: float = 0.0) -> int:
    """Purge unpinned old revisions superseded more than ``older_than`` seconds ago (what
    Drive does after 30 days); returns how many went."""
    gone = 0
    with store.lock:
        recs = [store.get(file_id)] if file_id else [r for r in store.files.values() if r.get("revisions")]
        now = store.now()
        for rec in recs:
            before = rec.get("revisions", [])
            after = _purge(store, rec, before, now, lifetime=older_than)
            if len(after) != len(before):
                gone += len(before) - len(after)
                store.save_file(dict(rec, revisions=after))
    return gone


def _md5(path: str) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            md5.update(chunk)
    return md5.hexdigest()


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
