"""Drive v2 metadata endpoints: about, shared drives, files (list, get, insert, update,
trash, delete, copy). A mixin of the request handler (see :mod:`handler`)."""
from __future__ import annotations

from drivestage.emulator.errors import EmulatorApiError
from drivestage.emulator.query import QueryError, compile_query, parent_hint
from drivestage.emulator.store import FOLDER_MIME
from drivestage.emulator.wire import b36


class MetadataRoutes:
    """files.*, about.get and drives.* (the handler provides query, body and sending)."""

    # ------------------------------------------------------------------ about / drives
    def _about(self) -> None:
        self._send_resource(200, self.emu.about(self._base()))

    def _drives_list(self) -> None:
        items = [self.emu._render_drive(d) for d in sorted(self.store.drives.values(),
                                                           key=lambda d: d["created"])]
        self._send_resource(200, {"kind": "drive#driveList", "items": items})

    def _drives_get(self, drive_id: str) -> None:
        d = self.store.drives.get(drive_id)
        if d is None:
            raise EmulatorApiError(404, "notFound", f"Shared drive not found: {drive_id}",
                                   location="driveId")
        self._send_resource(200, self.emu._render_drive(d))

    # ------------------------------------------------------------------ files metadata
    def _files_list(self) -> None:
        q = self.query
        try:
            pred = compile_query(q.get("q"), self.store.resolve)
        except QueryError as exc:
            raise EmulatorApiError(400, "invalid", str(exc), location="q")
        try:
            max_results = int(q.get("maxResults", "100"))
            offset = int(q.get("pageToken") or "0", 36) if q.get("pageToken") else 0
        except ValueError:
            raise EmulatorApiError(400, "invalid", "Invalid value for maxResults or pageToken.",
                                   location="pageToken")
        max_results = min(max(max_results, 1), 1000)
        corpora = (q.get("corpora") or "default").lower()
        drive_id = q.get("driveId") or q.get("teamDriveId")
        if corpora == "drive" and not drive_id:
            raise EmulatorApiError(400, "invalid", "The driveId parameter is required with corpora=drive.",
                                   location="driveId")
        if drive_id and drive_id not in self.store.drives:
            raise EmulatorApiError(404, "notFound", f"Shared drive not found: {drive_id}",
                                   location="driveId")
        all_drives = self._flag("includeItemsFromAllDrives") or self._flag("includeTeamDriveItems")
        hint = parent_hint(pred)
        with self.store.lock:
            recs = []
            if hint is None:
                candidates = self.store.all_files()
            else:
                candidates = {r["id"]: r for p in hint for r in self.store.children(p)}.values()
            for r in candidates:
                if drive_id:
                    if r.get("driveId") != drive_id:
                        continue
                elif r.get("driveId") is not None and not (all_drives or corpora == "alldrives"):
                    continue
                if pred(r):
                    recs.append(r)
        recs.sort(key=self._order_key())
        page = recs[offset: offset + max_results]
        base = self._base()
        out = {"kind": "drive#fileList", "etag": '"emulator"', "selfLink": f"{base}drive/v2/files",
               "incompleteSearch": False, "items": [self.emu.render(r, base) for r in page]}
        if offset + max_results < len(recs):
            token = b36(offset + max_results)
            out["nextPageToken"] = token
            out["nextLink"] = f"{base}drive/v2/files?pageToken={token}"
        self._send_resource(200, out)

    def _order_key(self):
        spec = (self.query.get("orderBy") or "").strip()
        if not spec:
            return lambda r: (r["created"], r["id"])
        keys = []
        for part in spec.split(","):
            words = part.split()
            if not words:
                continue
            name, desc = words[0], len(words) > 1 and words[1].lower() == "desc"
            getter = {"title": lambda r: r["title"].casefold(), "modifiedDate": lambda r: r["modified"],
                      "createdDate": lambda r: r["created"],
                      "folder": lambda r: r["mimeType"] != FOLDER_MIME,
                      "quotaBytesUsed": lambda r: r["size"] or 0}.get(name)
            if getter is None:
                raise EmulatorApiError(400, "invalid", f"Invalid orderBy key {name!r}.", location="orderBy")
            keys.append((getter, desc))

        class _Key:
            __slots__ = ("r",)

            def __init__(self, r):
                self.r = r

            def __lt__(self, other):
                for getter, desc in keys:
                    a, b = getter(self.r), getter(other.r)
                    if a != b:
                        return (a > b) if desc else (a < b)
                return self.r["id"] < other.r["id"]

        return _Key

    def _files_get(self, file_id: str) -> None:
        rec = self.store.get(file_id)
        if self.query.get("alt") == "media":
            self._download(rec)
            return
        self._send_resource(200, self.emu.render(rec, self._base()))

    def _files_insert(self) -> None:
        meta = self._read_json()
        parents = [p["id"] if isinstance(p, dict) else p for p in meta.get("parents") or []]
        mime = meta.get("mimeType") or "application/octet-stream"
        rec = self.store.create(meta.get("title") or "Untitled", mime, parents, meta=meta)
        self._send_resource(200, self.emu.render(rec, self._base()))

    def _files_update(self, file_id: str) -> None:
        meta = self._read_json()
        add = [p for p in (self.query.get("addParents") or "").split(",") if p]
        remove = [p for p in (self.query.get("removeParents") or "").split(",") if p]
        rec = self.store.update_meta(file_id, meta, add_parents=add, remove_parents=remove,
                                     set_modified=self._flag("setModifiedDate"))
        self._send_resource(200, self.emu.render(rec, self._base()))

    def _files_touch(self, file_id: str) -> None:
        self.body.drain()
        rec = self.store.update_meta(file_id, {})
        self._send_resource(200, self.emu.render(rec, self._base()))

    def _files_delete(self, file_id: str) -> None:
        self.body.drain()
        self.store.delete(file_id)
        self._send_bytes(204, b"", None)

    def _files_empty_trash(self) -> None:
        self.body.drain()
        self.store.empty_trash()
        self._send_bytes(204, b"", None)

    def _files_trash(self, file_id: str) -> None:
        self.body.drain()
        rec = self.store.set_trashed(file_id, True)
        self._send_resource(200, self.emu.render(rec, self._base()))

    def _files_untrash(self, file_id: str) -> None:
        self.body.drain()
        rec = self.store.set_trashed(file_id, False)
        self._send_resource(200, self.emu.render(rec, self._base()))

    def _files_copy(self, file_id: str) -> None:
        meta = self._read_json()
        src = self.store.get(file_id)
        if src["mimeType"] == FOLDER_MIME:
            raise EmulatorApiError(400, "badRequest", "Folders cannot be copied.")
        parents = [p["id"] if isinstance(p, dict) else p for p in meta.get("parents") or []] \
            or list(src["parents"])
        _, drive_id = self.store.check_parents(parents)
        self._check_can_store(drive_id, src["size"] or 0)
        tmp = self.store.copy_blob_to_temp(src["id"])
        rec = self.store.create(meta.get("title") or src["title"], meta.get("mimeType") or src["mimeType"],
                                parents, blob=tmp, size=src["size"], md5=src["md5"],
                                meta={k: v for k, v in meta.items() if k not in ("parents",)})
        self._send_resource(200, self.emu.render(rec, self._base()))
