"""The shared contract every :class:`~drivestage.store.RemoteStore` must pass.

Usage (fsspec/gcsfs style): subclass :class:`StoreContract` in a ``test_*.py``
file under a ``Test...`` name and provide a ``store`` fixture returning a
fresh store; every test then runs against it::

    class TestLocalDirContract(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            return LocalDirStore(tmp_path / "root")

Each test works inside its own new folder (the ``folder`` fixture), so a store
that is shared between tests (one emulator) also works. Class attributes let a
backend say what it cannot do. Inputs are tiny except :attr:`big_size`, which
only has to cross the backend's chunk boundaries.
"""
from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from drivestage.errors import NotFoundError
from drivestage.store import Quota, RemoteEntry, RemoteStore

MiB = 1 << 20


class StoreContract:
    """Backend-independent behaviour of RemoteStore implementations."""

    #: Bytes of the large round-trip file (crosses 1 MiB read chunks).
    big_size = 3 * MiB + 17
    #: Does ``quota().trash`` grow when something is moved to the trash?
    trash_in_quota = True

    # ------------------------------------------------------------------ fixtures

    @pytest.fixture
    def store(self) -> RemoteStore:  # pragma: no cover - subclasses override it
        raise NotImplementedError("subclass StoreContract and provide a `store` fixture")

    @pytest.fixture
    def folder(self, store) -> RemoteEntry:
        """A new, empty folder for this test."""
        return store.make_folders(f"contract-{uuid.uuid4().hex[:10]}")

    @pytest.fixture
    def make_local(self, tmp_path):
        """Write a local file and return its path."""
        def make(data: bytes, name: str = "") -> str:
            path = tmp_path / (name or f"local-{uuid.uuid4().hex[:8]}")
            path.write_bytes(data)
            return str(path)
        return make

    @staticmethod
    def read_all(store, entry: RemoteEntry) -> bytes:
        return b"".join(store.read_range(entry, 0, entry.size))

    # ------------------------------------------------------------------ folders

    def test_is_a_remote_store(self, store):
        assert isinstance(store, RemoteStore)

    def test_make_folders_nested_and_idempotent(self, store, folder):
        base = self._path_of(store, folder)
        deep = store.make_folders(f"{base}/a/b/c")
        assert deep.is_dir and deep.name == "c" and deep.size == 0 and deep.md5 is None
        again = store.make_folders(f"{base}/a/b/c")
        assert again.id == deep.id
        assert store.resolve(f"{base}/a/b/c").id == deep.id
        assert [e.name for e in store.list(folder)] == ["a"]

    def test_list_empty_folder(self, store, folder):
        assert store.list(folder) == []

    def test_resolve_missing_names_the_path(self, store, folder):
        base = self._path_of(store, folder)
        with pytest.raises(NotFoundError) as err:
            store.resolve(f"{base}/no-such-file.bin")
        assert "no-such-file.bin" in str(err.value)

    # ------------------------------------------------------------------ upload / read

    def test_upload_new_file(self, store, folder, make_local):
        data = os.urandom(1000)
        entry = store.upload(make_local(data), folder, "epoch_001.pt")
        assert (entry.name, entry.is_dir, entry.size) == ("epoch_001.pt", False, 1000)
        assert entry.md5 == hashlib.md5(data).hexdigest()
        assert entry.parent_id == folder.id
        assert entry.modified > 0
        base = self._path_of(store, folder)
        assert store.resolve(f"{base}/epoch_001.pt").id == entry.id
        assert store.resolve(f"id:{entry.id}").id == entry.id
        fresh = store.stat(entry)
        assert (fresh.id, fresh.size, fresh.md5) == (entry.id, 1000, entry.md5)
        where = store.describe(entry)  # a path, or an id form when the path is unknown
        assert isinstance(where, str) and where

    def test_large_file_round_trip_and_ranges(self, store, folder, make_local):
        data = os.urandom(self.big_size)
        entry = store.upload(make_local(data), folder, "big.bin")
        assert entry.size == len(data) and entry.md5 == hashlib.md5(data).hexdigest()
        assert self.read_all(store, entry) == data
        n = len(data)
        for start, end in [(0, 1), (5, MiB + 3), (MiB - 1, MiB + 1), (n - 10, n), (7, 7)]:
            assert b"".join(store.read_range(entry, start, end)) == data[start:end]

    def test_empty_file(self, store, folder, make_local):
        entry = store.upload(make_local(b""), folder, "empty.txt")
        assert entry.size == 0 and entry.md5 == hashlib.md5(b"").hexdigest()
        assert self.read_all(store, entry) == b""

    def test_upload_progress_counts_every_byte(self, store, folder, make_local):
        data = os.urandom(MiB + 123)
        seen: list[int] = []
        store.upload(make_local(data), folder, "p.bin", progress=seen.append)
        assert sum(seen) == len(data)

    def test_replace_keeps_the_id_and_updates_content(self, store, folder, make_local):
        first = store.upload(make_local(b"old content"), folder, "last.pt")
        second = store.upload(make_local(b"new, longer content"), folder, "last.pt", replace=first)
        assert second.id == first.id
        assert second.md5 == hashlib.md5(b"new, longer content").hexdigest()
        assert self.read_all(store, second) == b"new, longer content"
        assert [e.name for e in store.list(folder)] == ["last.pt"]
        assert store.stat(first).size == len(b"new, longer content")

    def test_unicode_and_spaces_in_names(self, store, folder, make_local):
        name = "été 2024 ✓ (1).json"
        entry = store.upload(make_local(b"{}"), folder, name)
        base = self._path_of(store, folder)
        assert store.resolve(f"{base}/{name}").id == entry.id
        assert [e.name for e in store.list(folder)] == [name]

    # ------------------------------------------------------------------ listing

    def test_list_exact_children(self, store, folder, make_local):
        base = self._path_of(store, folder)
        store.upload(make_local(b"a" * 10), folder, "a.pt")
        store.upload(make_local(b"b" * 20), folder, "b.pt.json")
        sub = store.make_folders(f"{base}/sub")
        store.upload(make_local(b"deeper"), sub, "inner.txt")
        got = sorted((e.name, e.is_dir, e.size, e.md5, e.parent_id) for e in store.list(folder))
        assert got == [
            ("a.pt", False, 10, hashlib.md5(b"a" * 10).hexdigest(), folder.id),
            ("b.pt.json", False, 20, hashlib.md5(b"b" * 20).hexdigest(), folder.id),
            ("sub", True, 0, None, folder.id),
        ]
        assert [e.name for e in store.list(sub)] == ["inner.txt"]

    # ------------------------------------------------------------------ delete / quota

    def test_delete_permanently(self, store, folder, make_local):
        entry = store.upload(make_local(b"x" * 100), folder, "gone.pt")
        keep = store.upload(make_local(b"y"), folder, "kept.pt")
        store.delete(entry)
        assert [e.name for e in store.list(folder)] == ["kept.pt"]
        with pytest.raises(NotFoundError):
            store.stat(entry)
        assert store.stat(keep).size == 1

    def test_delete_to_trash_hides_it(self, store, folder, make_local):
        before = store.quota().trash
        entry = store.upload(make_local(b"t" * 5000), folder, "trashed.pt")
        store.delete(entry, trash=True)
        assert store.list(folder) == []
        base = self._path_of(store, folder)
        with pytest.raises(NotFoundError):
            store.resolve(f"{base}/trashed.pt")
        if self.trash_in_quota:
            assert store.quota().trash >= before + 5000

    def test_take_out_of_its_only_folder_deletes_it(self, store, folder, make_local):
        """``take_out`` of an item in one folder is a deletion (parents39: only an item also
        in another folder, on Drive, loses just this folder)."""
        entry = store.upload(make_local(b"o" * 10), folder, "old.pt")
        keep = store.upload(make_local(b"k"), folder, "kept.pt")
        assert store.take_out(entry, trash=True) == "deleted"
        assert [e.name for e in store.list(folder)] == ["kept.pt"]
        with pytest.raises(NotFoundError):
            store.stat(entry)
        assert store.stat(keep).size == 1

    def test_delete_folder_removes_its_children(self, store, folder, make_local):
        base = self._path_of(store, folder)
        sub = store.make_folders(f"{base}/sub")
        store.upload(make_local(b"c"), sub, "child.txt")
        store.delete(sub)
        assert store.list(folder) == []
        with pytest.raises(NotFoundError):
            store.resolve(f"{base}/sub/child.txt")

    def test_quota_is_consistent(self, store):
        q = store.quota()
        assert isinstance(q, Quota)
        assert q.used >= 0 and q.trash >= 0
        if q.total is not None:
            assert q.total >= 0 and q.free == max(q.total - q.used, 0)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _path_of(store, folder: RemoteEntry) -> str:
        """The store path of a folder made by the ``folder`` fixture (``id:`` form)."""
        return f"id:{folder.id}"
