"""The emulator's Python API for seeding and inspecting Drive: files, folders, shared
drives, and reading back what clients stored. A mixin of :class:`~drivestage.emulator.Emulator`."""
from __future__ import annotations

import os
from typing import Callable, Optional, Union

from drivestage.emulator.store import FOLDER_MIME, EmulatorStore
from drivestage.emulator.wire import IO_CHUNK, Sink


class SeedingApi:
    """``add_file``, ``add_folder``, ``find``, ``files``, ``read_bytes`` ... (needs ``self.store``)."""

    store: EmulatorStore

    def add_shared_drive(self, name: str) -> str:
        """Create a shared drive and return its id (also the id of its root folder)."""
        return self.store.add_drive(name)["id"]

    def _walk(self, parts: list[str], drive_id: Optional[str], create: bool) -> Optional[str]:
        parent = drive_id or self.store.root_id
        for name in parts:
            with self.store.lock:
                hits = sorted((r for r in self.store.children(parent)
                               if r["title"] == name and not r["trashed"] and r["mimeType"] == FOLDER_MIME),
                              key=lambda r: (r["created"], r["id"]))
                if hits:
                    parent = hits[0]["id"]
                elif create:
                    parent = self.store.create(name, FOLDER_MIME, [parent])["id"]
                else:
                    return None
        return parent

    @staticmethod
    def _split(path: str) -> list[str]:
        parts = [p for p in path.strip("/").split("/") if p]
        if not parts:
            raise ValueError(f"empty Drive path {path!r}")
        return parts

    def add_folder(self, path: str, drive_id: Optional[str] = None) -> str:
        """``mkdir -p`` under My Drive (or a shared drive); returns the deepest folder's id."""
        return self._walk(self._split(path), drive_id, create=True)

    def add_file(self, path: str, data: Union[bytes, str, os.PathLike], *, drive_id: Optional[str] = None,
                 mime_type: Optional[str] = None) -> str:
        """Create ``path`` (folders included) with ``data`` (bytes, or a local file path); returns its id.

        A new file is always created: Drive allows duplicate names in a folder."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            view = memoryview(bytes(data))
            pos = 0

            def read(n: int = IO_CHUNK) -> bytes:
                nonlocal pos
                out = bytes(view[pos: pos + n])
                pos += len(out)
                return out
            return self._add_stream(path, read, drive_id=drive_id, mime_type=mime_type)
        with open(os.fspath(data), "rb") as f:
            return self._add_stream(path, lambda n=IO_CHUNK: f.read(n), drive_id=drive_id,
                                    mime_type=mime_type)

    def _add_stream(self, path: str, read: Callable[..., bytes], *, drive_id: Optional[str] = None,
                    mime_type: Optional[str] = None) -> str:
        parts = self._split(path)
        if drive_id is not None and drive_id not in self.store.drives:
            raise ValueError(f"unknown shared drive id {drive_id!r}; create it with add_shared_drive()")
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
        parent = self._walk(parts[:-1], drive_id, create=True)
        rec = self.store.create(parts[-1], mime_type or "application/octet-stream", [parent], blob=tmp,
                                size=sink.offset, md5=sink.md5.hexdigest())
        return rec["id"]

    def find(self, path: str, drive_id: Optional[str] = None) -> Optional[dict]:
        """The File resource at ``path`` (exact titles, trashed items skipped), or None."""
        parts = self._split(path)
        parent = self._walk(parts[:-1], drive_id, create=False)
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
