"""Parents and the trash in the emulator's store (:class:`StoreTrash`, a mixin of
:class:`~drivestage.emulator.store.EmulatorStore`; split from store.py at its line cap):
Drive's single-parent model, parents checked, what follows a folder into and out of the
trash, permanent deletion (what a folder takes with it) and emptying the trash.
"""
from __future__ import annotations

import os
from typing import Iterable, Optional

from drivestage.emulator.errors import EmulatorApiError


def check_single_parent(parents: list, had: int = 1) -> None:
    """Drive's single-parent model (since September 2020): an item may not end up with more
    parents than it had, nor a new item with more than one (403 cannotAddParent)."""
    if len(parents) > max(1, had):
        raise EmulatorApiError(403, "cannotAddParent",
                               "Increasing the number of parents is not allowed")


class StoreTrash:
    """Parents and the trash of :class:`~drivestage.emulator.store.EmulatorStore`."""

    def check_parents(self, parent_ids: Iterable[str]) -> tuple[list[str], Optional[str]]:
        """Resolve and validate parents; returns (ids, shared drive id or None)."""
        ids = [self.resolve(p) for p in parent_ids] or [self.root_id]
        drive_ids = set()
        for p in ids:
            if p in self.drives:
                drive_ids.add(p)
                continue
            rec = self.get(p)
            if not self.is_folder(rec):
                raise EmulatorApiError(400, "badRequest", f"Parent {p} is not a folder.",
                                       location="parents", location_type="other")
            drive_ids.add(rec.get("driveId"))
        if len(drive_ids) > 1:
            raise EmulatorApiError(400, "badRequest", "Parents must all be in the same drive.")
        return ids, drive_ids.pop()

    def check_no_cycle(self, item_id: str, parent_ids: Iterable[str]) -> None:
        """400 badRequest when a parent in ``parent_ids`` is ``item_id`` or inside it: the
        "Resolve errors" guide lists, under ``badRequest``, "You tried to add a parent that
        would create a cycle in the directory graph" (its message is not documented: this is
        the guide's generic sample body). A cycle seeded through the Python API (from
        before 2020, or a server that lies) is walked once, by the ids seen."""
        seen: set[str] = set()
        todo = [p for p in parent_ids]
        while todo:
            cur = todo.pop()
            if cur == item_id:
                raise EmulatorApiError(400, "badRequest", "Bad Request")
            if cur in seen or cur not in self.files:
                continue
            seen.add(cur)
            todo.extend(self.files[cur].get("parents") or [])

    def _in_trash(self, parent_ids: Iterable[str]) -> bool:
        """Whether an item under ``parent_ids`` is in the trash with them: Drive takes an
        item into a trashed folder (googleworkspace/android-samples issue 66: "API accepts
        and uploads it and puts it in the to the folder in the trash"), and the v3 File's
        ``trashed`` is "Whether the file has been trashed, either explicitly or from a
        trashed parent folder" (``explicitlyTrashed`` false: "as opposed to recursively
        trashed from a parent folder")."""
        return any(self.files[p]["trashed"] for p in parent_ids if p in self.files)

    def set_trashed(self, file_id: str, trashed: bool, *, explicitly: bool = True) -> dict:
        """Trash or restore a file; a folder's descendants follow it (not explicitly).
        ``explicitly`` false: trashed with the folder it was moved into (:meth:`_in_trash`)."""
        with self.lock:
            rec = dict(self.get(file_id))
            if self.is_container_root(rec["id"]):
                raise EmulatorApiError(403, "cannotModifyRoot", "The root folder cannot be trashed.")
            # A new version, as every change is (its etag changes: preconditions.py).
            rec.update(trashed=trashed, explicitlyTrashed=trashed and explicitly,
                       version=rec["version"] + 1)
            self._put("files", self.files, rec)
            for child in self.descendants(rec["id"]):
                if trashed and not child["trashed"]:
                    self._put("files", self.files, dict(child, trashed=True, explicitlyTrashed=False))
                elif not trashed and child["trashed"] and not child["explicitlyTrashed"]:
                    self._put("files", self.files, dict(child, trashed=False))
            return rec

    def delete(self, file_id: str) -> None:
        """Delete permanently, folders recursively; their bytes (and revisions) stop counting.
        In My Drive a folder takes with it only what its owner owns: "If the target is a
        folder, all descendants owned by the user are also deleted" (v2 ``files.delete``);
        another user's item in it goes to that user's My Drive ("the item is placed under
        its owner's root", ``enforceSingleParent``), with what is below it."""
        with self.lock:
            rec = self.get(file_id)
            if self.is_container_root(rec["id"]):
                raise EmulatorApiError(403, "cannotDeleteRoot", "The root folder cannot be deleted.")
            below = self.descendants(rec["id"])
            doomed = [r for r in below if rec.get("driveId") is not None
                      or r.get("owner") == rec.get("owner")] + [rec]
            gone = {r["id"] for r in doomed}
            for r in below:
                if r["id"] not in gone and any(p in gone for p in r["parents"]):
                    kept = [p for p in r["parents"] if p not in gone]
                    home = self.root_id if r.get("owner") is None else self.owner_root(r["owner"])
                    self._put("files", self.files, dict(r, parents=kept or [home]))
            for r in doomed:
                self._drop("files", self.files, r["id"])
                paths = [self.blob_path(r["id"])]
                paths += [self.revision_path(r["id"], v["id"]) for v in r.get("revisions", ())]
                for path in paths:
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass

    def empty_trash(self, drive_id: Optional[str] = None) -> None:
        """Delete every explicitly trashed item of My Drive (or of one shared drive)."""
        with self.lock:
            doomed = [r for r in self.files.values() if r["trashed"] and r.get("driveId") == drive_id
                      and r.get("owner") is None]
            for r in doomed:
                if r["id"] in self.files:
                    self.delete(r["id"])
