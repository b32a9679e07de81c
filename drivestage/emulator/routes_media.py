"""Drive v2 byte transfers: ranged downloads and simple and multipart uploads, with the
storage checks every upload goes through (resumable sessions: :mod:`routes_resumable`).
A mixin of the request handler (see :mod:`handler`)."""
from __future__ import annotations

import logging
import os
import re
from typing import Optional
from urllib.parse import quote, urlencode

from drivestage.emulator import properties, revisions
from drivestage.emulator.access import Access, can_write, may_acknowledge_abuse, may_download, \
    require, require_app, visible
from drivestage.emulator.disk_room import check_disk_room, check_step
from drivestage.emulator.errors import EmulatorApiError, drive_error, error_envelope, not_found
from drivestage.emulator.json_body import parse_json
from drivestage.emulator.preconditions import check_if_match
from drivestage.emulator.render import GOOGLE_APPS
from drivestage.emulator.store import FOLDER_MIME, SERVICE_ACCOUNT_MESSAGE, SHORTCUT_MIME
from drivestage.emulator.wire import MAX_JSON_BODY, ClientGone, Multipart, Sink, b64_md5, \
    header_safe, iter_file, parse_range

QUOTA_CHECK_STEP = 16 << 20         # a single-request upload's bytes between quota checks

log = logging.getLogger(__name__)


class MediaRoutes:
    """alt=media downloads and /upload/ endpoints (the handler provides body and sending)."""

    # ------------------------------------------------------------------ download
    def _download(self, rec: dict, acc: Access, signed: bool = False) -> None:
        """``alt=media``: the bytes of a file with content (or of one of its revisions).

        Shortcuts and folders have none (403 fileNotDownloadable, as Drive answers for a
        shortcut); a file flagged as malware answers 403 cannotDownloadAbusiveFile unless
        ``acknowledgeAbuse=true`` comes from its owner or a shared drive's organizer (Drive
        ignores the flag from anyone else); a file whose download quota is spent answers
        403 downloadQuotaExceeded; one whose owner turned downloads off for readers and
        commenters (``copyRequiresWriterPermission``) answers them 403 cannotDownloadFile.
        Under ``faults.redirect_media`` a download allowed is answered with a redirect to a
        signed link (``signed``: this is that link being served)."""
        require_app(rec, acc, "read")   # (a drive.file token's, under a metadata scope)
        if rec["mimeType"].startswith(GOOGLE_APPS) or rec["size"] is None:
            raise drive_error("fileNotDownloadable")   # Docs, Sheets...: files.export only
        if not may_download(rec, acc):
            raise drive_error("cannotDownloadFile")
        if rec.get("abusive") and not (self._flag("acknowledgeAbuse") and may_acknowledge_abuse(acc)):
            raise drive_error("cannotDownloadAbusiveFile")
        redirect = None if signed else self.emu.faults.take_media_redirect()
        if redirect is not None:
            self._redirect_download(rec["id"], *redirect)
            return
        path = self.store.blob_path(rec["id"])
        md5 = rec["md5"]
        if self.query.get("revisionId"):
            rev, path = revisions.find(self.store, rec, self.query["revisionId"])
            md5 = rev["md5"]
        self.store.take_download(rec["id"])
        self.body.drain()
        f = self._open_content(rec, path)
        with f:
            size = os.fstat(f.fileno()).st_size
            headers = {"Accept-Ranges": "bytes",
                       "Content-Disposition": f'attachment; filename="{header_safe(rec["title"])}"'}
            goog = b64_md5(md5)
            if goog is not None:
                headers["X-Goog-Hash"] = "md5=" + goog
            rng = parse_range(self.headers.get("Range"), size) if self.headers.get("Range") else None
            if rng is not None and self.emu.faults.take_range_ignored():
                rng = None  # a proxy that strips Range: the whole file, 200
            if rng == (-1, -1):
                body = error_envelope(416, "requestedRangeNotSatisfiable", "Request range not satisfiable")
                self._send_json(416, body, {"Content-Range": f"bytes */{size}"})
                return
            if rng is None:
                start, count, status = 0, size, 200
            else:
                start, count, status = rng[0], rng[1] - rng[0] + 1, 206
                headers["Content-Range"] = f"bytes {rng[0]}-{rng[1]}/{size}"
            # The user's daily download cap (api_quota): every file refused once it is spent.
            self.emu.api_quota.charge_download(self._token or "", count)
            self._start(status, headers, count, rec["mimeType"])
            if self.command == "HEAD" or count == 0:
                return
            flip = self.emu.faults.corrupt_offset(rec["id"], size, start, count)
            hold = self.emu.faults.hold_at(rec["id"], start, count)
            if flip is None and hold is None and self._drop_response_after is None and \
                    not self.emu.faults.throttled:
                sent = self.connection.sendfile(f, start, count)
                self._bytes_out += sent
                if sent < count:
                    raise ClientGone()
                return
            pos = start
            for data in iter_file(path, start, count, 256 * 1024):
                if flip is not None and pos <= flip < pos + len(data):
                    data = bytearray(data)
                    data[flip - pos] ^= 0xFF
                    data = bytes(data)
                if hold is not None and pos <= hold.offset < pos + len(data):
                    cut = hold.offset - pos
                    self._write(data[:cut])
                    self.wfile.flush()
                    if not hold.wait(self.connection):  # every byte before it is out
                        raise ClientGone()   # (it hung up: hold.hung_up)
                    data, pos, hold = data[cut:], hold.offset, None
                self._write(data)
                pos += len(data)

    def _open_content(self, rec: dict, path: str):
        """The file of ``rec``'s bytes at ``path``, opened now (a concurrent replace keeps
        this inode). Not there: a 404 if the file was deleted meanwhile, else its bytes were
        removed by hand (a 500, which clients retry a bounded number of times, as Drive's
        own failure would be to them), said once in the log with the path."""
        try:
            return open(path, "rb")
        except FileNotFoundError:
            pass
        with self.store.lock:   # (a replace renames the bytes under it: settled now)
            if self.store.files.get(rec["id"]) is None:
                raise not_found(rec["id"])
            try:
                return open(path, "rb")
            except FileNotFoundError:
                pass
        if (rec["id"], path) not in self.emu.missing_content:
            self.emu.missing_content.add((rec["id"], path))
            log.error("the bytes of file %s (%r) are missing: %s was removed from the data "
                      "folder; its downloads answer 500 (restore the file, or delete it)",
                      rec["id"], rec["title"], path)
        raise EmulatorApiError(500, "backendError",
                               f"The bytes of file {rec['id']} are missing from the emulator's "
                               f"data folder ({os.path.basename(path)} was removed).")

    def _redirect_download(self, file_id: str, status: int, origin: Optional[str]) -> None:
        """Answer ``status`` with a signed link to the bytes (:mod:`signed`)."""
        kept = {k: v for k, v in self.query.items() if k in ("revisionId", "acknowledgeAbuse")}
        qk = self.emu.signed.sign(file_id, self.caller, kept)
        location = f"{origin or self._base()}download/drive/v2/files/{quote(file_id, safe='')}" \
                   f"?{urlencode({'qk': qk})}"
        self.body.drain()
        self._start(status, {"Location": location}, 0, "text/html; charset=UTF-8")

    def _signed_download(self, file_id: str) -> None:
        """A signed link (:mod:`signed`): the bytes for whoever has it, no token needed, as
        its API request was allowed (checked again now: a file trashed since is not found)."""
        link = self.emu.signed.find(self.query.get("qk", ""), file_id)
        if link is None:
            raise EmulatorApiError(403, "forbidden", "The download link is not valid or has "
                                                     "expired; ask the API for the file again.")
        self.caller = link.caller
        self.query = {**link.query, "alt": "media"}
        rec, acc = visible(self.store, file_id, self.caller)
        self._download(rec, acc, signed=True)

    # ------------------------------------------------------------------ uploads
    def _check_can_store(self, drive_id: Optional[str], size: int, replacing: int = 0,
                         pending: Optional[int] = None) -> None:
        """The storage checks of an upload of ``size`` bytes, ``pending`` of them still to
        be written (to the emulator's disk: :mod:`disk_room`; None: all written)."""
        if drive_id is None and self.caller.service_account:
            raise EmulatorApiError(403, "storageQuotaExceeded", SERVICE_ACCOUNT_MESSAGE)
        if pending is not None:   # (a shared drive's upload too: the disk is the emulator's)
            check_disk_room(self.store.upload_dir, pending, self.emu.min_free_bytes)
        self.store.check_quota(size, drive_id, replacing=replacing)
        self.emu.api_quota.check_upload(self._token or "", size)

    def _revision_options(self) -> tuple[bool, bool]:
        """(newRevision, pinned) of a files.update with media (Drive's defaults: true, false)."""
        return self._flag("newRevision", True), self._flag("pinned", False)

    def _upload(self, file_id: Optional[str] = None) -> None:
        upload_id = self.query.get("upload_id")
        if upload_id:
            self._resumable_chunk(upload_id)
            return
        if (file_id is None) != (self.command == "POST"):
            raise EmulatorApiError(404, "notFound", f"Not Found: {self.command} {self.path}")
        kind = self.query.get("uploadType") or "media"
        if kind == "resumable":
            self._resumable_start(file_id)
        elif kind == "multipart":
            self._simple_upload(file_id, multipart=True)
        elif kind == "media":
            self._simple_upload(file_id, multipart=False)
        else:
            raise EmulatorApiError(400, "invalid", f"Invalid value for uploadType: {kind}",
                                   location="uploadType")

    def _target(self, file_id: Optional[str], meta: dict) -> tuple[Optional[dict], Optional[str], int]:
        """(existing record or None, shared drive id, bytes the upload frees), after checking
        that the caller may write there."""
        if file_id is not None:
            rec, acc = visible(self.store, file_id, self.caller)
            require_app(rec, acc)
            require(can_write(acc))
            check_if_match(self.headers.get("If-Match"), rec, self.emu.ignores_if_match)
            if rec["mimeType"] in (FOLDER_MIME, SHORTCUT_MIME):
                raise EmulatorApiError(400, "badRequest", "A folder or shortcut cannot have content.")
            if meta.get("parents"):
                self.store.check_parents([p["id"] if isinstance(p, dict) else p for p in meta["parents"]])
            new_revision, _ = self._revision_options()
            # A new revision keeps the old one (and its quota) until Drive purges it.
            return rec, rec.get("driveId"), 0 if new_revision else rec["size"] or 0
        if meta.get("mimeType") == FOLDER_MIME:
            raise EmulatorApiError(400, "badRequest", "A folder cannot have content.")
        _, drive_id = self._new_item_parents([p["id"] if isinstance(p, dict) else p
                                              for p in meta.get("parents") or []])
        return None, drive_id, 0

    def _finish(self, existing: Optional[dict], meta: dict, blob: str, size: int, md5: str,
                content_type: Optional[str], drive_id: Optional[str], *,
                new_revision: bool = True, pinned: bool = False,
                sums: Optional[dict] = None) -> dict:
        """Turn a complete temp file into a Drive file (new, or new content for ``existing``);
        ``blob`` is gone after, whatever happened (a resumable session passes a second name
        of its bytes, kept for a retry when refused, e.g. by the quota). ``sums``: its SHA
        checksums, when known already."""
        meta = properties.stamped(meta, self.caller.app)
        try:
            replacing = (existing["size"] or 0) if existing and not new_revision else 0
            self._check_can_store(drive_id, size, replacing=replacing)
            if existing is not None:
                rec = revisions.replace_content(self.store, existing["id"], blob, size, md5, meta,
                                                new_revision=new_revision, pinned=pinned,
                                                sums=sums)
            else:
                parents = [p["id"] if isinstance(p, dict) else p for p in meta.get("parents") or []]
                mime = meta.get("mimeType") or content_type or "application/octet-stream"
                rec = self.store.create(meta.get("title") or "Untitled", mime, parents, blob=blob,
                                        size=size, md5=md5, meta=meta, app_created=True,
                                        file_id=meta.get("id"), sums=sums)
            self.emu.api_quota.charge_upload(self._token or "", size)
            return rec
        finally:
            if os.path.exists(blob):
                os.unlink(blob)

    def _quota_checked(self, sink: Sink, drive_id: Optional[str], replacing: int):
        """``sink.write``, refusing the upload (the quota's 403) before its bytes pass the
        room left, checked every :data:`QUOTA_CHECK_STEP` (a chunked body, of no declared
        length, was stored whole, however large, before it was refused: emulefts45), and
        more often on a disk whose reserve is small (:func:`disk_room.check_step`)."""
        step = min(QUOTA_CHECK_STEP, check_step(self.emu.min_free_bytes, self.store.upload_dir))
        due = [step]

        def write(data: bytes) -> None:
            # (checked before the piece is written: a piece is up to 1 MiB, more than a
            # small disk's reserve)
            end = sink.offset + len(data)
            if end >= due[0]:
                due[0] = end + step
                self._check_can_store(drive_id, end, replacing, pending=len(data))
            sink.write(data)
        return write

    def _simple_upload(self, file_id: Optional[str], multipart: bool) -> None:
        ctype = self.headers.get("Content-Type") or ""
        meta: dict = {}
        media_type = None if multipart else (ctype.split(";")[0].strip() or None)
        # Content-Length is (about) the content's size: refuse before reading it.
        check_disk_room(self.store.upload_dir, self.body.length or 0, self.emu.min_free_bytes)
        if not multipart:
            existing, drive_id, replacing = self._target(file_id, meta)
            self._check_can_store(drive_id, self.body.length or 0, replacing)
        tmp = self.store.upload_path("simple-" + os.urandom(8).hex())
        sink = Sink(tmp, corrupt=self.emu.faults.take_corrupt_upload())
        try:
            if multipart:
                m = re.search(r'boundary="?([^";]+)"?', ctype)
                if not ctype.lower().startswith("multipart/") or not m:
                    raise EmulatorApiError(400, "badContent",
                                           "Multipart upload needs Content-Type multipart/related with a boundary.")
                mp = Multipart(self.body, m.group(1).encode("latin-1"))
                mp.preamble()
                mp.line()
                mp.headers()
                parts: list[bytes] = []

                def keep(data: bytes) -> None:
                    # Refused as it grows: a metadata part whose closing boundary never came
                    # was held whole in memory, gigabytes of it (attackemu45).
                    parts.append(data)
                    if sum(map(len, parts)) > MAX_JSON_BODY:   # (Drive's words, ShareX #404)
                        raise EmulatorApiError(400, "badContent", "Metadata part is too large.")

                mp.until_boundary(keep)
                raw = b"".join(parts)
                meta = parse_json(raw, "Parse Error in the metadata part.") if raw.strip() else {}
                if mp.line().startswith(b"--"):
                    raise EmulatorApiError(400, "badContent", "Multipart upload has no media part.")
                media_type = mp.headers().get("content-type")
                existing, drive_id, replacing = self._target(file_id, meta)
                mp.until_boundary(self._quota_checked(sink, drive_id, replacing))
                mp.line()
                self.body.drain()
            else:
                write = self._quota_checked(sink, drive_id, replacing)
                while True:
                    data = self.body.read()
                    if not data:
                        break
                    write(data)
        except BaseException:
            sink.close()
            os.unlink(tmp)
            raise
        sink.close()
        new_revision, pinned = self._revision_options()
        rec = self._finish(existing, meta, tmp, sink.offset, sink.md5.hexdigest(), media_type, drive_id,
                           new_revision=new_revision, pinned=pinned)
        self._send_resource(200, self._render(rec))
