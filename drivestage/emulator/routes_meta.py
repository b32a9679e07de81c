"""Drive v2 metadata endpoints: about, shared drives, files (list, get, insert, update,
trash, delete, copy) and revisions, each under the caller's access (see :mod:`access`).
A mixin of the request handler (see :mod:`handler`)."""
from __future__ import annotations

import dataclasses
from typing import Any

from drivestage.emulator import listing, properties, revisions
from drivestage.emulator.access import at_least, can_delete, can_trash, can_write, require, require_app, \
    require_parent, visible
from drivestage.emulator.errors import EmulatorApiError, no_file_permission
from drivestage.emulator.faults import default_reason
from drivestage.emulator.preconditions import check_if_match
from drivestage.emulator.render import render_drive, render_revision
from drivestage.emulator.store import FOLDER_MIME, SHORTCUT_MIME
from drivestage.emulator.store_trash import check_single_parent


def parent_ids(meta: dict) -> list[str]:
    """The parent ids of a File body (``[{"id": ...}]`` or plain ids)."""
    return [p["id"] if isinstance(p, dict) else p for p in meta.get("parents") or []]


class MetadataRoutes:
    """files.*, revisions.*, about.get and drives.* (the handler provides query, body, caller
    and sending)."""

    # ------------------------------------------------------------------ about / drives
    def _about(self) -> None:
        self._send_resource(200, self.emu.about(self._base()))

    def _drives_list(self) -> None:
        """drives.list in pages of ``maxResults`` (Drive: 10 by default, at most 100)."""
        if self.query.get("pageToken") and self.emu.faults.take_token_rejected():
            raise EmulatorApiError(400, "invalid", "Invalid Value", location="pageToken")
        offset, max_results = listing.page_bounds(self.query, default_max=10)
        max_results = self.emu.faults.page_size(min(max_results, 100))
        found = sorted(self.store.drives.values(), key=lambda d: (d["created"], d["id"]))
        out = {"kind": "drive#driveList",
               "items": [render_drive(d) for d in found[offset: offset + max_results]]}
        self._send_resource(200, listing.next_page(out, len(found), offset, max_results,
                                                   f"{self._base()}drive/v2/drives"))

    def _drives_get(self, drive_id: str) -> None:
        d = self.store.drives.get(drive_id)
        if d is None:
            raise EmulatorApiError(404, "notFound", f"Shared drive not found: {drive_id}",
                                   location="driveId")
        self._send_resource(200, render_drive(d))

    # ------------------------------------------------------------------ files metadata
    def _files_list(self) -> None:
        all_drives = self._flag("includeItemsFromAllDrives") or self._flag("includeTeamDriveItems")
        if self.query.get("pageToken") and self.emu.faults.take_token_rejected():
            # Drive's answer to a stale page token (Faults.expire_page_tokens).
            raise EmulatorApiError(400, "invalid", "Invalid Value", location="pageToken")
        found = listing.search(self.store, self.query, self.caller, all_drives, self.emu.faults)
        found = self.emu.faults.split_or.apply(self.query.get("q"), found, self.store.resolve)
        offset, max_results = listing.page_bounds(self.query)
        max_results = self.emu.faults.page_size(max_results)
        empty = self.emu.faults.take_empty_page(self.query.get("q")) \
            if offset < len(found) else None
        base = self._base()
        out = {"kind": "drive#fileList", "etag": '"emulator"', "selfLink": f"{base}drive/v2/files",
               "incompleteSearch": False,
               "items": [] if empty is not None else
               [self._render(r, acc) for r, acc in found[offset: offset + max_results]]}
        if self.emu.list_leaves_out and not self.query.get("fields"):
            out["items"] = [{k: v for k, v in it.items() if k not in self.emu.list_leaves_out}
                            for it in out["items"]]
        self._send_resource(200, listing.next_page(out, len(found), offset, max_results,
                                                   f"{base}drive/v2/files", empty))

    def _files_get(self, file_id: str) -> None:
        rec, acc = visible(self.store, file_id, self.caller)
        if self.query.get("alt") == "media":
            self._download(rec, acc)
            return
        self._send_resource(200, self._render(rec, acc))

    def _new_item_parents(self, parents: list[str], *, folder: bool = False
                          ) -> tuple[list[str], object]:
        """Check that the caller may add one item (a ``folder``?) under ``parents`` and that
        Drive's item limits leave room; returns (resolved parents, shared drive id)."""
        for p in parents or ["root"]:
            require_parent(self.store, p, self.caller)
        check_single_parent(parents)
        ids, drive_id = self.store.check_parents(parents)
        self.store.check_room(ids, drive_id, folder=folder)
        return ids, drive_id

    def _files_insert(self) -> None:
        meta = properties.stamped(self._read_json(), self.caller.app)
        parents = parent_ids(meta)
        mime = meta.get("mimeType") or "application/octet-stream"
        self._new_item_parents(parents, folder=mime == FOLDER_MIME)
        shortcut = self._shortcut_details(meta) if mime == SHORTCUT_MIME else None
        rec = self.store.create(meta.get("title") or "Untitled", mime, parents, meta=meta,
                                shortcut=shortcut, app_created=True, file_id=meta.get("id"))
        self._send_resource(200, self._render(rec))

    def _files_generate_ids(self) -> None:
        """files.generateIds: ``maxResults`` ids (Drive: 10 by default, 1 to 1000) for
        ``space`` drive or appDataFolder and ``type`` files or shortcuts (shortcuts only in
        drive); a create that names one as its ``id`` makes its file with it, once."""
        raw = self.query.get("maxResults", "10")
        try:
            count = int(raw)
        except ValueError:
            count = 0
        if not 1 <= count <= 1000:
            raise EmulatorApiError(400, "invalid", f"Invalid value '{raw}'. Values must be within "
                                   "the range: [1, 1000]", location="maxResults",
                                   location_type="parameter")
        space, kind = self.query.get("space", "drive"), self.query.get("type", "files")
        if space not in ("drive", "appDataFolder"):
            raise EmulatorApiError(400, "invalid", "Invalid Value", location="space",
                                   location_type="parameter")
        if kind not in ("files", "shortcuts") or (kind == "shortcuts" and space != "drive"):
            raise EmulatorApiError(400, "invalid", "Invalid Value", location="type",
                                   location_type="parameter")
        self._send_resource(200, {"kind": "drive#generatedIds", "space": space,
                                  "ids": self.store.generate_ids(count)})

    def _shortcut_details(self, meta: dict) -> dict:
        """Drive fills a new shortcut's details from its target, which the caller must see."""
        target_id = (meta.get("shortcutDetails") or {}).get("targetId")
        if not target_id:
            raise EmulatorApiError(400, "required", "Required: shortcutDetails.targetId.",
                                   location="shortcutDetails.targetId", location_type="other")
        target, _ = visible(self.store, target_id, self.caller)
        return {"targetId": target["id"], "targetMimeType": target["mimeType"],
                "targetResourceKey": target.get("resource_key")}

    def _files_update(self, file_id: str) -> None:
        meta = properties.stamped(self._read_json(), self.caller.app)
        rec, acc = visible(self.store, file_id, self.caller)
        require_app(rec, acc)
        check_if_match(self.headers.get("If-Match"), rec, self.emu.ignores_if_match)
        if self.emu.patch_replaces_properties and isinstance(meta.get("properties"), list):
            meta["properties"] = properties.replacing(rec, meta["properties"], self.caller.app)
        add = [p for p in (self.query.get("addParents") or "").split(",") if p]
        remove = [p for p in (self.query.get("removeParents") or "").split(",") if p]
        trashing = "trashed" in (meta.get("labels") or {}) and bool(meta["labels"]["trashed"]) != rec["trashed"]
        require(can_trash(acc) if trashing else True)
        if {k for k in meta if k not in ("labels", properties.APP_FIELD)} or add or remove or set(meta.get("labels") or {}) - {"trashed"}:
            require(can_write(acc))
        if (add or remove) and acc.via == "drive":
            # A shared drive's Contributor adds and edits but does not move (Drive's roles
            # table; capabilities.canMoveItemWithinDrive): a Content manager is needed.
            require(at_least(acc.role, "fileOrganizer"))
        for p in add + [p for p in parent_ids(meta) if p not in rec["parents"]]:
            require_parent(self.store, p, self.caller)
        # Drive's single-parent model, checked here (the Python seeding API may still make
        # the multi-parent items Drive kept from before 2020).
        after = [self.store.resolve(p) for p in (parent_ids(meta) if meta.get("parents") is not None
                                                 else rec["parents"])]
        after += [p for p in map(self.store.resolve, add) if p not in after]
        gone = set(map(self.store.resolve, remove))
        absent = sorted(gone - set(rec["parents"]))
        if absent and self.emu.absent_parent_status is not None:
            status = self.emu.absent_parent_status
            reason, message = ("notFound", f"File not found: {absent[0]}.") if status == 404 \
                else default_reason(status)
            raise EmulatorApiError(status, reason, message, location="removeParents",
                                   location_type="parameter")
        check_single_parent([p for p in after if p not in gone], len(rec["parents"]))
        if gone and not [p for p in after if p not in gone]:
            if rec.get("driveId") is not None:   # (a shared drive's item has exactly one)
                raise EmulatorApiError(403, "teamDrivesParentLimit",
                                       "A shared drive item must have exactly one parent.")
            # Drive (v2 parents.delete): an item of My Drive whose last parent is removed
            # "is placed under its owner's root".
            add = [self.store.root_id if rec.get("owner") is None
                   else self.store.owner_root(rec["owner"])]
        rec = self.store.update_meta(rec["id"], meta, add_parents=add, remove_parents=remove,
                                     set_modified=self._flag("setModifiedDate"))
        self._send_resource(200, self._render(rec))

    def _files_touch(self, file_id: str) -> None:
        self.body.drain()
        rec, acc = visible(self.store, file_id, self.caller)
        require_app(rec, acc)
        require(can_write(acc))
        self._send_resource(200, self._render(self.store.update_meta(rec["id"], {})))

    def _files_delete(self, file_id: str) -> None:
        self.body.drain()
        rec, acc = visible(self.store, file_id, self.caller)
        require_app(rec, acc)
        require(can_delete(acc))
        check_if_match(self.headers.get("If-Match"), rec, self.emu.ignores_if_match)
        self.store.delete(rec["id"])
        self._send_bytes(204, b"", None)

    def _files_empty_trash(self) -> None:
        self.body.drain()
        drive_id = self.query.get("driveId") or None
        if drive_id is not None:
            drive = self.store.drives.get(drive_id)
            if drive is None:
                raise EmulatorApiError(404, "notFound", f"Shared drive not found: {drive_id}",
                                       location="driveId")
            if drive.get("role", "organizer") != "organizer":
                raise no_file_permission()
        self.store.empty_trash(drive_id)
        self._send_bytes(204, b"", None)

    def _files_trash(self, file_id: str, trashed: bool = True) -> None:
        self.body.drain()
        rec, acc = visible(self.store, file_id, self.caller)
        require_app(rec, acc)
        require(can_trash(acc))
        self._send_resource(200, self._render(self.store.set_trashed(rec["id"], trashed)))

    def _files_untrash(self, file_id: str) -> None:
        self._files_trash(file_id, trashed=False)

    def _files_copy(self, file_id: str) -> None:
        meta = self._read_json()
        src, _ = visible(self.store, file_id, self.caller)
        if src["mimeType"] == FOLDER_MIME:
            raise EmulatorApiError(400, "badRequest", "Folders cannot be copied.")
        parents = parent_ids(meta) or [p for p in src["parents"] if p not in self.store.owner_roots.values()]
        _, drive_id = self._new_item_parents(parents)
        title = meta.get("title") or src["title"]
        # The copy carries the original's custom properties, the body's merged over them:
        # "Entries with null values are cleared in update and copy requests" (the v3 File's
        # properties and appProperties), so a copy has them unless its request clears them.
        props = properties.merged(src.get("properties") or [], meta.get("properties"),
                                  self.caller.app)
        extra = {k: v for k, v in meta.items() if k not in ("parents", "properties")}
        if meta.get("id") is not None:
            self.store.check_new_id(meta["id"])  # before its bytes are copied
        if src["mimeType"] == SHORTCUT_MIME:
            rec = self.store.create(title, SHORTCUT_MIME, parents, meta=extra, shortcut=src.get("shortcut"),
                                    app_created=True, file_id=meta.get("id"))
        else:
            self._check_can_store(drive_id, src["size"] or 0)
            # (bytes removed by hand: the 500 a download of them answers, not a traceback)
            with self._open_content(src, self.store.blob_path(src["id"])) as f:
                tmp = self.store.copy_blob_to_temp(f)
            rec = self.store.create(title, meta.get("mimeType") or src["mimeType"], parents, blob=tmp,
                                    size=src["size"], md5=src["md5"], meta=extra, app_created=True,
                                    file_id=meta.get("id"))
        if props:
            rec = self.store.set_properties(rec["id"], props)
        self._send_resource(200, self._render(rec))

    # ------------------------------------------------------------------ revisions
    def _revisions_of(self, file_id: str) -> dict:
        rec, acc = visible(self.store, file_id, self.caller)
        require(can_write(acc))     # "Access historical revisions": writers and up
        return rec

    def _revisions_list(self, file_id: str) -> None:
        rec = self._revisions_of(file_id)
        items = revisions.all_revisions(rec)
        offset, max_results = listing.page_bounds(self.query, default_max=200)
        base = self._base()
        link = f"{base}drive/v2/files/{rec['id']}/revisions"
        out = {"kind": "drive#revisionList", "etag": f'"{rec["id"]}/{rec["version"]}"', "selfLink": link,
               "items": [render_revision(rec, v, base) for v in items[offset: offset + max_results]]}
        self._send_resource(200, listing.next_page(out, len(items), offset, max_results, link))

    def _revisions_get(self, file_id: str, revision_id: str) -> None:
        rec = self._revisions_of(file_id)
        rev, _ = revisions.find(self.store, rec, revision_id)
        self._send_resource(200, render_revision(rec, rev, self._base()))

    def _revisions_update(self, file_id: str, revision_id: str) -> None:
        meta = self._read_json()
        rec = self._revisions_of(file_id)
        rev, _ = revisions.find(self.store, rec, revision_id)
        if "pinned" in meta:
            rev = revisions.set_pinned(self.store, rec["id"], rev["id"], bool(meta["pinned"]))
        self._send_resource(200, render_revision(self.store.get(rec["id"]), rev, self._base()))

    def _revisions_delete(self, file_id: str, revision_id: str) -> None:
        self.body.drain()
        rec = self._revisions_of(file_id)
        revisions.delete(self.store, rec["id"], revision_id)
        self._send_bytes(204, b"", None)

    # ------------------------------------------------------------------ properties (v2)
    def _on_any_drive(self, file_id: str) -> tuple[dict, Any]:
        """The file as ``visible`` gives it, a shared drive's item too: ``properties.*`` take
        no ``supportsAllDrives`` (Drive's enable-shareddrives guide lists no such method
        among those that need it), so none could ever reach one (attackra30)."""
        return visible(self.store, file_id, dataclasses.replace(self.caller, all_drives=True))

    def _properties_list(self, file_id: str) -> None:
        rec, _ = self._on_any_drive(file_id)
        base = self._base()
        self._send_resource(200, {"kind": "drive#propertyList", "etag": f'"{rec["id"]}/{rec["version"]}"',
                                  "selfLink": f"{base}drive/v2/files/{rec['id']}/properties",
                                  "items": [properties.render(rec, p, base) for p in
                                            properties.seen_by(rec, self.caller.app)]})

    def _properties_insert(self, file_id: str) -> None:
        """Adds the property the body gives, or updates the one of its key and visibility
        (the v2 reference's words): the others stay."""
        body = self._read_json()
        rec, acc = self._on_any_drive(file_id)
        require_app(rec, acc)
        require(can_write(acc))
        self._property_write_fits(rec)
        with self.store.lock:
            rec = self.store.get(rec["id"])
            props = properties.merged(rec.get("properties") or [], [body], self.caller.app)
            rec = self.store.set_properties(rec["id"], props, touch=self.emu.property_writes_modify)
        key, vis = body.get("key"), body.get("visibility") or properties.PRIVATE
        [made] = [p for p in properties.seen_by(rec, self.caller.app)
                  if p["key"] == key and p["visibility"] == vis] or [None]
        if made is None:   # a null value: nothing to answer with
            raise properties.not_found(str(key), vis)
        self._send_resource(200, properties.render(rec, made, self._base()))

    def _property_write_fits(self, rec: dict) -> None:
        """A full Drive's refusal of a property's write, where the emulator is told to
        (:attr:`Emulator.full_refuses_property_writes`: no reference says which Drive does)."""
        if self.emu.full_refuses_property_writes:
            self.store.check_not_full(rec.get("driveId"))

    def _properties_get(self, file_id: str, key: str) -> None:
        rec, _ = self._on_any_drive(file_id)
        vis = properties.visibility_of(self.query)
        for p in properties.seen_by(rec, self.caller.app):
            if p["key"] == key and p["visibility"] == vis:
                self._send_resource(200, properties.render(rec, p, self._base()))
                return
        raise properties.not_found(key, vis)

    def _properties_delete(self, file_id: str, key: str) -> None:
        self.body.drain()
        rec, acc = self._on_any_drive(file_id)
        require_app(rec, acc)
        require(can_write(acc))
        self._property_write_fits(rec)
        with self.store.lock:
            rec = self.store.get(rec["id"])
            kept = properties.without(rec, key, properties.visibility_of(self.query), self.caller.app)
            self.store.set_properties(rec["id"], kept, touch=self.emu.property_writes_modify)
        self._send_bytes(204, b"", None)
