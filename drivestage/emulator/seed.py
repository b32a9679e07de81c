"""The emulator's Python API for seeding and inspecting Drive: files, folders, shortcuts,
shared drives and roles, items other users share with you (directly or by link, with a
resource key), flags Drive sets on files, revisions, and reading back what clients stored.
A mixin of :class:`~drivestage.emulator.Emulator`; the same Drive is seen by every client."""
from __future__ import annotations

import os
from typing import Callable, Optional, Union

from drivestage.emulator import properties, revisions
from drivestage.emulator.access import DRIVE_ROLES, SHARE_ROLES, check_role
from drivestage.emulator.render import render_revision
from drivestage.emulator.store import FOLDER_MIME, SHORTCUT_MIME, EmulatorStore
from drivestage.emulator.wire import IO_CHUNK, Sink

#: Who owns items seeded as shared with you when no ``owner`` is named.
OTHER_USER = "owner@example.com"


class SeedingApi:
    """``add_file``, ``add_folder``, ``add_shortcut``, ``share`` ... (needs ``self.store``)."""

    store: EmulatorStore

    # ------------------------------------------------------------------ shared drives
    def add_shared_drive(self, name: str, *, role: str = "organizer", item_limit: Optional[int] = None) -> str:
        """Create a shared drive the user is a member of with ``role`` (organizer,
        fileOrganizer, writer, commenter, reader); returns its id (also its root folder's).
        ``item_limit`` replaces Drive's 500,000 items (403 teamDriveFileLimitExceeded)."""
        doc = self.store.add_drive(name, check_role(role))
        if item_limit is not None:
            doc = dict(doc, item_limit=int(item_limit))
            self.store.save_drive(doc)
        return doc["id"]

    def restrict_drive_downloads(self, drive_id: str, restricted: bool = True) -> None:
        """Turn off "Allow viewers and commenters to download, print, and copy files" for a
        shared drive (its ``restrictions.copyRequiresWriterPermission``, which "will override
        the similarly named field to true for any file inside this shared drive": the v2
        Drive reference): its readers and commenters get ``canDownload`` false and 403
        cannotDownloadFile for every file in it; ``restricted=False`` lifts it."""
        if drive_id not in self.store.drives:
            raise ValueError(f"unknown shared drive id {drive_id!r}")
        self.store.save_drive(dict(self.store.drives[drive_id],
                                   copy_restricted=True if restricted else None))

    def set_drive_role(self, drive_id: str, role: str) -> None:
        """Change the user's role on a shared drive (what Drive's "Manage members" does)."""
        if drive_id not in self.store.drives:
            raise ValueError(f"unknown shared drive id {drive_id!r}")
        self.store.save_drive(dict(self.store.drives[drive_id], role=check_role(role, DRIVE_ROLES)))

    # ------------------------------------------------------------------ paths
    def _top(self, drive_id: Optional[str], owner: Optional[str]) -> str:
        if drive_id is not None:
            if drive_id not in self.store.drives:
                raise ValueError(f"unknown shared drive id {drive_id!r}; create it with add_shared_drive()")
            return drive_id
        return self.store.owner_root(owner) if owner else self.store.root_id

    def _walk(self, parts: list[str], drive_id: Optional[str], create: bool,
              owner: Optional[str] = None) -> Optional[str]:
        parent = self._top(drive_id, owner)
        for name in parts:
            with self.store.lock:
                hits = sorted((r for r in self.store.children(parent)
                               if r["title"] == name and not r["trashed"] and r["mimeType"] == FOLDER_MIME),
                              key=lambda r: (r["created"], r["id"]))
                if hits:
                    parent = hits[0]["id"]
                elif create:
                    parent = self.store.create(name, FOLDER_MIME, [parent], owner=owner)["id"]
                else:
                    return None
        return parent

    @staticmethod
    def _split(path: str) -> list[str]:
        parts = [p for p in path.strip("/").split("/") if p]
        if not parts:
            raise ValueError(f"empty Drive path {path!r}")
        return parts

    @staticmethod
    def _owner(owner: Optional[str], shared_with_me, resource_key) -> Optional[str]:
        """Items shared with you or reached by a resource key belong to someone else."""
        return owner or (OTHER_USER if shared_with_me or resource_key else None)

    def _sharing(self, file_id: str, shared_with_me, resource_key: Optional[str]) -> None:
        if shared_with_me:
            self.share(file_id, "reader" if shared_with_me is True else shared_with_me)
        if resource_key:
            self.share_link(file_id, resource_key=resource_key)

    # ------------------------------------------------------------------ files and folders
    def add_folder(self, path: str, drive_id: Optional[str] = None, *, owner: Optional[str] = None,
                   shared_with_me: Union[bool, str, None] = None, resource_key: Optional[str] = None) -> str:
        """``mkdir -p`` under My Drive, a shared drive, or ``owner``'s My Drive; returns the
        deepest folder's id. ``shared_with_me`` (True or a role) and ``resource_key`` share
        that folder with you as :meth:`share` and :meth:`share_link` do; either one without
        ``owner`` makes ``owner@example.com`` its owner."""
        owner = self._owner(owner, shared_with_me, resource_key)
        folder_id = self._walk(self._split(path), drive_id, create=True, owner=owner)
        self._sharing(folder_id, shared_with_me, resource_key)
        return folder_id

    def add_file(self, path: str, data: Union[bytes, str, os.PathLike], *, drive_id: Optional[str] = None,
                 mime_type: Optional[str] = None, owner: Optional[str] = None,
                 shared_with_me: Union[bool, str, None] = None, resource_key: Optional[str] = None,
                 abusive: bool = False) -> str:
        """Create ``path`` (folders included) with ``data`` (bytes, or a local file path); returns its id.

        A new file is always created: Drive allows duplicate names in a folder. ``owner``,
        ``shared_with_me`` and ``resource_key`` as for :meth:`add_folder`; ``abusive`` flags it
        as malware (see :meth:`set_abusive`)."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            view = memoryview(bytes(data))
            pos = 0

            def read(n: int = IO_CHUNK) -> bytes:
                nonlocal pos
                out = bytes(view[pos: pos + n])
                pos += len(out)
                return out
            file_id = self._add_stream(path, read, drive_id=drive_id, mime_type=mime_type,
                                       owner=self._owner(owner, shared_with_me, resource_key))
        else:
            with open(os.fspath(data), "rb") as f:
                file_id = self._add_stream(path, lambda n=IO_CHUNK: f.read(n), drive_id=drive_id,
                                           mime_type=mime_type,
                                           owner=self._owner(owner, shared_with_me, resource_key))
        self._sharing(file_id, shared_with_me, resource_key)
        if abusive:
            self.set_abusive(file_id)
        return file_id

    def _add_stream(self, path: str, read: Callable[..., bytes], *, drive_id: Optional[str] = None,
                    mime_type: Optional[str] = None, owner: Optional[str] = None) -> str:
        parts = self._split(path)
        self._top(drive_id, owner)      # validates drive_id before any byte is read
        tmp = self.store.upload_path("seed-" + os.urandom(8).hex())
        sink = Sink(tmp)
        try:
            while True:
                data = read(IO_CHUNK)
                if not data:
                    break
                sink.write(data)
        finally:
            sink.close()
        parent = self._walk(parts[:-1], drive_id, create=True, owner=owner)
        rec = self.store.create(parts[-1], mime_type or "application/octet-stream", [parent], blob=tmp,
                                size=sink.offset, md5=sink.md5.hexdigest(), owner=owner)
        return rec["id"]

    def add_shortcut(self, path: str, target_id: str, *, drive_id: Optional[str] = None,
                     target_mime_type: Optional[str] = None) -> str:
        """Create a shortcut at ``path`` pointing at ``target_id`` ("Add shortcut to Drive");
        returns its id. Like Drive it copies the target's mimeType and resource key into
        ``shortcutDetails``; the target may be missing or invisible to you (a dangling
        shortcut), then ``target_mime_type`` (default ``application/octet-stream``) is used."""
        parts = self._split(path)
        target = self.store.files.get(target_id)
        if target_id in self.store.drives or target_id == self.store.root_id:
            target_mime = FOLDER_MIME
        else:
            target_mime = target["mimeType"] if target else None
        details = {"targetId": target_id,
                   "targetMimeType": target_mime_type or target_mime or "application/octet-stream",
                   "targetResourceKey": (target or {}).get("resource_key")}
        parent = self._walk(parts[:-1], drive_id, create=True)
        return self.store.create(parts[-1], SHORTCUT_MIME, [parent], shortcut=details)["id"]

    # ------------------------------------------------------------------ sharing and flags
    def share(self, file_id: str, role: str = "reader") -> None:
        """Share an item (and so everything below it) with you directly: it appears in
        "Shared with me" (``sharedWithMe``), never under ``'root' in parents``."""
        self.store.update(file_id, shared_role=check_role(role, SHARE_ROLES),
                          shared_date=self.store.now())

    def unshare(self, file_id: str) -> None:
        """Take back every way you had to reach an item (direct share and link): you get 404
        for it from now on, and your shortcuts to it dangle."""
        self.store.update(file_id, shared_role=None, shared_date=None, link_role=None, resource_key=None)

    def share_link(self, file_id: str, role: str = "reader", resource_key: Optional[str] = None) -> None:
        """Share an item with "anyone with the link". With a ``resource_key`` (an item shared
        before Drive's 2021 security update) a user without direct access must send
        ``X-Goog-Drive-Resource-Keys: <id>/<key>``, or Drive answers 404."""
        self.store.update(file_id, link_role=check_role(role, SHARE_ROLES), resource_key=resource_key)

    def set_resource_key(self, file_id: str, resource_key: Optional[str]) -> None:
        """Link-share an item with this resource key (None: the link needs no key)."""
        self.share_link(file_id, self.store.get(file_id).get("link_role") or "reader", resource_key)

    def set_properties(self, file_id: str, props: list, *, app: Optional[str] = None) -> None:
        """Set custom properties on a file as ``app`` would by a files.patch (``[{"key",
        "value", "visibility"}]``, merged; a null value clears one): a forged PUBLIC mark, or
        another app's PRIVATE one. Drive's limits apply (403 as Drive answers)."""
        self.store.update_meta(file_id, {"properties": props, properties.APP_FIELD: app})

    def properties_of(self, file_id: str) -> list[dict]:
        """Every property of a file, whichever app set it (``app``: None for PUBLIC ones)."""
        return [dict(p) for p in self.store.get(file_id).get("properties") or ()]

    def set_abusive(self, file_id: str, abusive: bool = True) -> None:
        """Flag a file as malware or spam: downloads answer 403 cannotDownloadAbusiveFile
        unless ``acknowledgeAbuse=true`` comes from its owner or a shared drive's organizer."""
        self.store.update(file_id, abusive=True if abusive else None)

    def restrict_download(self, file_id: str, restricted: bool = True, *,
                          writers: bool = False) -> None:
        """Turn downloading and copying off for readers and commenters, as a file's owner
        can ("Viewers and commenters can see the option to download": off): they still see
        the file, its ``capabilities.canDownload`` is false and ``alt=media`` answers them
        403 cannotDownloadFile; its owner and editors download it as before. ``writers``:
        off for editors too (Drive's ``restrictedForWriters``, or an organisation's rule):
        only the owner (a shared drive's organizers) still downloads it."""
        self.store.update(file_id, copy_restricted=("writers" if writers else True)
                          if restricted else None)

    def set_checksums(self, file_id: str, **checksums: Optional[str]) -> None:
        """Replace the ``sha1`` / ``sha256`` Drive reports for a file: None drops it (as for
        files stored before Drive kept them), a wrong value makes the server lie. ``md5``
        likewise: None leaves ``md5Checksum`` out, as Drive did for binary files stored
        before about 2014 (rclone issue 980: such PDFs and .docx files were "unknown
        objects" to it) and for some files viewers may not download (waterbutler's 2017
        fix); a new version of the file reports its md5 again."""
        unknown = set(checksums) - {"sha1", "sha256", "md5"}
        if unknown:
            raise ValueError(f"unknown checksums {sorted(unknown)}: use md5, sha1 and sha256")
        if self.store.get(file_id)["size"] is None:  # a folder or a shortcut: nothing shown
            raise ValueError(f"{file_id} has no content, so no checksums")
        if "md5" in checksums:   # the stored md5 stays the bytes' own (revisions, copies)
            md5 = checksums.pop("md5")
            checksums["md5_shown"] = "" if md5 is None else md5
        self.store.update(file_id, **checksums)

    def hide_size(self, file_id: str, hidden: bool = True) -> None:
        """Leave ``fileSize`` out of the file's resource (its bytes are still served). Drive
        v2 listed Google Docs Editors files without one (google-api-java-client issue 716:
        ``getFileSize()`` null for Docs, 2013); today's reference gives a size to "blobs and
        first party editor files" and none to "files that have no size, like shortcuts and
        folders". On a binary file it is a lie no real Drive tells (a proxy's)."""
        if self.store.get(file_id)["size"] is None:  # a folder or a shortcut: none shown
            raise ValueError(f"{file_id} has no content, so no size to hide")
        self.store.update(file_id, size_hidden=True if hidden else None)

    def limit_downloads(self, file_id: str, downloads: Optional[int]) -> None:
        """Let ``downloads`` more media requests of the file succeed, then answer 403
        downloadQuotaExceeded (Drive's per-file download quota); None lifts the limit."""
        self.store.update(file_id, download_limit=None if downloads is None else int(downloads))

    def set_child_limit(self, folder_id: str, children: Optional[int]) -> None:
        """Replace Drive's 500,000 children per folder for one folder (403
        numChildrenInNonRootLimitExceeded); None restores Drive's limit."""
        self.store.update(folder_id, child_limit=None if children is None else int(children))

    def set_item_creation_limit(self, items: Optional[int]) -> None:
        """Replace Drive's 500 million items one account may have created (wherever they
        are, trashed ones included) with ``items``: creating more answers 403
        activeItemCreationLimitExceeded until some are deleted for good; None restores
        Drive's limit."""
        self.store.item_creation_limit = None if items is None else int(items)

    def set_other_usage(self, gmail: int = 0, photos: int = 0) -> None:
        """Bytes Gmail and Google Photos take of the account's storage: Drive's quota is
        shared with them, so they count toward ``quota_bytes`` (uploads beyond it get 403
        storageQuotaExceeded) and show in ``about``'s ``quotaBytesUsedAggregate`` and
        ``quotaBytesByService``, never in ``quotaBytesUsed`` (Drive's own share)."""
        if int(gmail) < 0 or int(photos) < 0:
            raise ValueError("usage cannot be negative")
        self.store.other_usage = {"GMAIL": int(gmail), "PHOTOS": int(photos)}

    # ------------------------------------------------------------------ revisions
    def revisions(self, file_id: str) -> list[dict]:
        """The file's revisions as Drive v2 Revision resources, oldest first, head last."""
        rec = self.store.get(file_id)
        return [render_revision(rec, v, self.url) for v in revisions.all_revisions(rec)]

    def expire_revisions(self, file_id: Optional[str] = None, older_than: float = 0.0) -> int:
        """Purge unpinned old revisions (of one file, or all) superseded more than
        ``older_than`` seconds ago, as Drive does after 30 days; returns how many went."""
        return revisions.expire(self.store, file_id, older_than)

    # ------------------------------------------------------------------ inspection
    def find(self, path: str, drive_id: Optional[str] = None, *, owner: Optional[str] = None) -> Optional[dict]:
        """The File resource at ``path`` (exact titles, trashed items skipped), or None."""
        parts = self._split(path)
        parent = self._walk(parts[:-1], drive_id, create=False, owner=owner)
        if parent is None:
            return None
        with self.store.lock:
            hits = sorted((r for r in self.store.children(parent)
                           if r["title"] == parts[-1] and not r["trashed"]),
                          key=lambda r: (r["created"], r["id"]))
        return self.render(hits[0]) if hits else None

    def files(self) -> list[dict]:
        """Every File resource (folders and trashed items too), oldest first."""
        recs = sorted(self.store.all_files(), key=lambda r: (r["created"], r["id"]))
        return [self.render(r) for r in recs]

    def read_bytes(self, file_id: str) -> bytes:
        """The stored content of a file (what a client should have received)."""
        rec = self.store.get(file_id)
        with open(self.store.blob_path(rec["id"]), "rb") as f:
            return f.read()

    def root_id(self) -> str:
        """The real id behind the ``root`` alias."""
        return self.store.root_id
