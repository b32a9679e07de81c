"""Drive v2 resumable uploads: a session is started with the file's metadata, takes the
bytes in chunks (each answered 308 with what is kept, in 256 KiB units) and, once complete,
makes the file. The storage checks and the file's making are :mod:`routes_media`'s.
A mixin of the request handler (see :mod:`handler`)."""
from __future__ import annotations

import json
import os
from typing import Optional
from urllib.parse import urlencode

from drivestage.emulator.errors import EmulatorApiError, not_found
from drivestage.emulator.store_sessions import held_bytes, session_meta
from drivestage.emulator.wire import IO_CHUNK, Sink, blob_checksums, hash_file, parse_content_range

CHUNK_GRANULARITY = 256 * 1024      # Drive keeps resumable bytes in multiples of this


class ResumableRoutes:
    """``uploadType=resumable``: sessions, their chunks and status queries (the handler
    provides body and sending; :class:`routes_media.MediaRoutes` the checks and the file)."""

    def _resumable_start(self, file_id: Optional[str]) -> None:
        meta = self._read_json()
        existing, drive_id, replacing = self._target(file_id, meta)
        if existing is None and meta.get("id") is not None:
            # Refused at once when it cannot be used; taken only when the session completes
            # (a session that never completes leaves the id free).
            self.store.check_new_id(meta["id"])
        total = self.headers.get("X-Upload-Content-Length")
        try:
            total_i = int(total) if total not in (None, "") else None
        except ValueError:
            raise EmulatorApiError(400, "badRequest", f"Invalid X-Upload-Content-Length: {total!r}",
                                   location="X-Upload-Content-Length", location_type="header")
        self._check_can_store(drive_id, total_i or 0, replacing, pending=total_i or 0)
        new_revision, pinned = self._revision_options()
        self.store.expire_sessions(self.emu.upload_session_ttl)   # (a few of the oldest)
        # Kept as its JSON text (a parsed dict of many small items took ten times its size).
        meta_json = json.dumps(meta, separators=(",", ":"))
        content_type = self.headers.get("X-Upload-Content-Type")
        self.store.limit_sessions(self.emu.max_upload_sessions, self.emu.max_upload_session_bytes,
                                  held_bytes(meta_json, content_type))
        sess = self.store.new_session(
            file_id=existing["id"] if existing else None, meta_json=meta_json, total=total_i,
            drive_id=drive_id, content_type=content_type,
            corrupt=self.emu.faults.take_corrupt_upload(), new_revision=new_revision, pinned=pinned)
        where = f"upload/drive/v2/files{'/' + existing['id'] if existing else ''}"
        base = self.emu.faults.take_session_origin() or self._base()
        # Drive's session address repeats the start's parameters (supportsAllDrives...),
        # which its chunks are then answered under; never a credential.
        kept = {k: v for k, v in self.query.items()
                if k not in ("uploadType", "upload_id", "access_token", "oauth_token", "key")}
        location = f"{base}{where}?{urlencode({'uploadType': 'resumable', **kept})}" \
                   f"&upload_id={sess['id']}"
        self._send_bytes(200, b"", None, {"Location": location, "X-GUploader-UploadID": sess["id"]})

    def _range_header(self, received: int) -> dict:
        return {"Range": f"bytes=0-{received - 1}"} if received else {}

    def _resumable_chunk(self, session_id: str) -> None:
        ttl = self.emu.upload_session_ttl
        self.store.expire_sessions(ttl)
        sess = self.store.get_session(session_id, ttl)
        gone = EmulatorApiError(404, "notFound", f"Upload session not found: {session_id}",
                                location="upload_id")
        if sess is None:
            raise gone   # (unknown, or expired: Drive's 404, upon which clients start over)
        with sess["_lock"]:
            if sess.get("_expired"):
                raise gone   # (expired between the lookup and now)
            if sess.get("done_file_id"):
                self.body.drain()
                rec = self.store.get(sess["done_file_id"])
                self._send_resource(self._done_status(sess), self._render(rec))
                return
            cr = self.headers.get("Content-Range")
            if cr is None:
                # No Content-Range: the body is the whole content.
                if self.body.length is None:
                    raise EmulatorApiError(400, "badRequest", "Content-Range or Content-Length required.",
                                           location="Content-Range", location_type="header")
                a, b, total = 0, self.body.length - 1, self.body.length
                if self.body.length == 0:
                    a = b = None
            else:
                a, b, total = parse_content_range(cr)
            if total is not None and sess["total"] is not None and total != sess["total"]:
                raise EmulatorApiError(400, "badRequest",
                                       f"Content-Range total {total} does not match the declared "
                                       f"upload size {sess['total']}.", location="Content-Range",
                                       location_type="header")
            if total is not None and sess["total"] is None:
                sess["total"] = total
            received = sess["received"]
            if a is None:
                # A status query, or the empty final request of an empty upload.
                self.body.drain()
                if sess["total"] is not None and received == sess["total"]:
                    self._resumable_done(sess)
                else:
                    self._send_bytes(308, b"", None, self._range_header(received))
                return
            length = b - a + 1
            if self.body.length is not None and self.body.length != length:
                raise EmulatorApiError(400, "badRequest",
                                       f"Content-Range {cr} says {length} bytes, Content-Length says "
                                       f"{self.body.length}.", location="Content-Range", location_type="header")
            if a > received:
                raise EmulatorApiError(400, "badRequest",
                                       f"Invalid request. According to the Content-Range header, the upload "
                                       f"offset is {a} byte(s), which exceeds already uploaded size of "
                                       f"{received} byte(s).", location="Content-Range", location_type="header")
            if sess["total"] is not None and b >= sess["total"]:
                raise EmulatorApiError(400, "badRequest", f"Content-Range {cr} goes past the upload size.",
                                       location="Content-Range", location_type="header")
            existing = self.store.files.get(sess["file_id"]) if sess["file_id"] else None
            if sess["file_id"] and existing is None:
                raise not_found(sess["file_id"])
            freed = 0 if sess.get("new_revision", True) else (existing or {}).get("size") or 0
            size = max(b + 1, sess["total"] or 0)
            self._check_can_store(sess["drive_id"], size, freed, pending=size - received)
            self._receive(sess, a, length)
            if sess["total"] is not None and sess["received"] == sess["total"]:
                self._resumable_done(sess)
            else:
                self._send_bytes(308, b"", None, self._range_header(sess["received"]))

    def _receive(self, sess: dict, a: int, length: int) -> None:
        """Append the chunk's new bytes to the session; keep 256 KiB multiples if it breaks off."""
        path = self.store.upload_path(sess["id"])
        received = sess["received"]
        md5 = sess.get("_md5")
        if md5 is None or sess.get("_hashed") != received:
            md5 = hash_file(path, received)  # after a restart or a truncation
        sink = Sink(path, offset=received, md5=md5, corrupt=sess.get("corrupt", False))
        skip = received - a
        ok = False
        try:
            got = 0
            while got < length:
                data = self.body.read(min(IO_CHUNK, length - got))
                if not data:
                    break
                got += len(data)
                if skip >= len(data):
                    skip -= len(data)
                    continue
                sink.write(data[skip:] if skip else data)
                skip = 0
            ok = got == length
        finally:
            sink.close()
            end = written = sink.offset
            less = self.emu.faults.take_keep_less() if ok else 0
            if less:
                end = max(received, end - less)   # Faults.keep_less: kept less than sent
            final = ok and not less and sess["total"] is not None and end == sess["total"]
            keep = end if final else end - end % CHUNK_GRANULARITY
            keep = max(keep, received)   # what was committed before stays committed
            if keep != written:
                with open(path, "r+b") as f:
                    f.truncate(keep)
                sess["_md5"], sess["_hashed"] = None, None
            else:
                sess["_md5"], sess["_hashed"] = sink.md5, end
            sess["received"] = keep
            self.store.save_session(sess)

    def _resumable_done(self, sess: dict) -> None:
        path = self.store.upload_path(sess["id"])
        md5 = sess.get("_md5") if sess.get("_hashed") == sess["received"] else None
        md5 = md5 or hash_file(path, sess["received"])
        existing = None
        if sess["file_id"]:
            existing = self.store.files.get(sess["file_id"])
            if existing is None:
                raise not_found(sess["file_id"])
        # The file is made from a second name of the session's bytes, and it and the
        # session's mark of it reach disk as one: a SIGKILL between them left a file no
        # answer named and a session whose bytes were gone, every retry of it a 500 (and a
        # client starting over made the file twice: attackemu45).
        staged = path + ".final"
        if os.path.exists(staged):
            os.unlink(staged)
        os.link(path, staged)
        sums = blob_checksums(staged)   # (not under the store's lock: a big file takes a while)
        with self.store.transaction():
            rec = self._finish(existing, session_meta(sess), staged, sess["received"], md5.hexdigest(),
                               sess.get("content_type"), sess["drive_id"],
                               new_revision=sess.get("new_revision", True),
                               pinned=sess.get("pinned", False), sums=sums)
            sess["done_file_id"] = rec["id"]
            sess["_md5"] = None
            sess.pop("meta_json", None)   # (its file is made: what it held is free again)
            sess.pop("meta", None)
            self.store.save_session(sess)
        os.unlink(path)
        self._send_resource(self._done_status(sess), self._render(rec))

    def _done_status(self, sess: dict) -> int:
        """A complete session's status: its last chunk's and every status query's after
        (Drive's upload guide: "200 OK or 201 Created" with the file; 201 only for a session
        that created the file, with :attr:`Emulator.upload_created_status`)."""
        return 200 if sess["file_id"] else self.emu.upload_created_status
