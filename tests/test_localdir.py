"""LocalDirStore: the shared store contract, plus what only a directory store does."""
from __future__ import annotations

import errno
import hashlib
import os

import pytest

from drivestage.errors import NotFoundError, QuotaExceededError, RemoteError, UsageError
from drivestage.localdir import TRASH, UPLOAD_PREFIX, LocalDirStore
from drivestage.store import RemoteEntry
from store_contract import StoreContract


class TestLocalDirContract(StoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        root = tmp_path / "root"
        root.mkdir()
        return LocalDirStore(root)


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    return r


@pytest.fixture
def dirstore(root):
    """A LocalDirStore on ``root`` (conftest's ``store`` is a DriveStore)."""
    return LocalDirStore(root)


def _local(tmp_path, data: bytes, name: str = "src.bin") -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_ids_are_root_relative_paths(dirstore, root, tmp_path):
    folder = dirstore.make_folders("Models/yolo/logs")
    assert (folder.id, folder.name, folder.parent_id) == ("Models/yolo/logs", "logs", "Models/yolo")
    entry = dirstore.upload(_local(tmp_path, b"w"), folder, "epoch_001.pt")
    assert entry.id == "Models/yolo/logs/epoch_001.pt"
    assert dirstore.describe(entry) == str(root / "Models/yolo/logs/epoch_001.pt")
    assert dirstore.resolve("/Models//yolo/./logs/").id == "Models/yolo/logs"
    assert dirstore.resolve("Models/yolo/../yolo/logs").id == "Models/yolo/logs"
    top = dirstore.resolve("")
    assert top.id == "" and top.is_dir and top.parent_id is None


@pytest.mark.parametrize("path", ["..", "../x", "a/../../x", "id:../../etc"])
def test_paths_leaving_the_root_are_refused(dirstore, path):
    with pytest.raises(UsageError, match="leads outside the store root"):
        dirstore.resolve(path)
    with pytest.raises(UsageError):
        dirstore.make_folders(path)


def test_symlinks_leading_outside_are_refused_and_not_listed(dirstore, root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"s")
    os.symlink(outside, root / "escape")
    os.symlink(root / "inner.txt", root / "inside-link")
    (root / "inner.txt").write_bytes(b"i")
    with pytest.raises(UsageError, match="outside the store root"):
        dirstore.resolve("escape/secret.txt")
    assert [e.name for e in dirstore.list(dirstore.resolve(""))] == ["inner.txt", "inside-link"]


def test_upload_is_atomic_and_keeps_mtime(dirstore, root, tmp_path):
    src = _local(tmp_path, b"checkpoint bytes")
    os.utime(src, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    folder = dirstore.make_folders("logs")
    (root / "logs" / "epoch_001.pt").write_bytes(b"previous")
    entry = dirstore.upload(src, folder, "epoch_001.pt")
    assert (root / "logs" / "epoch_001.pt").read_bytes() == b"checkpoint bytes"
    assert entry.modified == 1_600_000_000.0
    # The old copy is kept aside, listed as a same-named copy (as Drive keeps one) until
    # the caller removes it (attacksync35: local_held); no temporary file is left.
    listed = dirstore.list(folder)
    assert sorted((e.name, e.size) for e in listed) == [("epoch_001.pt", 8), ("epoch_001.pt", 16)]
    (old,) = dirstore.aside(entry)
    assert (old.name, old.parent_id) == ("epoch_001.pt", "logs")
    dirstore.delete(old)
    assert os.listdir(root / "logs") == ["epoch_001.pt"]
    assert dirstore.aside(entry) == []


def test_temporary_uploads_and_trash_are_not_listed(dirstore, root):
    (root / f"{UPLOAD_PREFIX}123-abc").write_bytes(b"partial")
    (root / TRASH).mkdir()
    (root / "real.txt").write_bytes(b"r")
    assert [e.name for e in dirstore.list(dirstore.resolve(""))] == ["real.txt"]


def test_upload_under_a_renamed_replace_drops_the_old_file(dirstore, root, tmp_path):
    folder = dirstore.make_folders("d")
    old = dirstore.upload(_local(tmp_path, b"1"), folder, "old.pt")
    new = dirstore.upload(_local(tmp_path, b"2"), folder, "new.pt", replace=old)
    assert new.id == "d/new.pt"
    assert sorted(os.listdir(root / "d")) == ["new.pt"]


def test_upload_errors(dirstore, root, tmp_path):
    folder = dirstore.make_folders("d")
    dirstore.make_folders("d/sub")
    with pytest.raises(UsageError, match="is a folder"):
        dirstore.upload(_local(tmp_path, b"x"), folder, "sub")
    for bad in ["", ".", "..", "a/b"]:
        with pytest.raises(UsageError, match="bad file name"):
            dirstore.upload(_local(tmp_path, b"x"), folder, bad)
    with pytest.raises(NotFoundError, match="does not exist"):
        dirstore.upload(str(tmp_path / "missing.bin"), folder, "m")
    assert sorted(os.listdir(root / "d")) == ["sub"]


def test_make_folders_through_a_file_is_refused(dirstore, root):
    (root / "file").write_bytes(b"f")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        dirstore.make_folders("file/sub")


def test_trash_keeps_paths_and_numbers_collisions(dirstore, root, tmp_path):
    folder = dirstore.make_folders("logs")
    for content in (b"first", b"second"):
        e = dirstore.upload(_local(tmp_path, content), folder, "epoch_001.pt")
        dirstore.delete(e, trash=True)
    assert (root / TRASH / "logs" / "epoch_001.pt").read_bytes() == b"first"
    assert (root / TRASH / "logs" / "epoch_001.pt.~1~").read_bytes() == b"second"
    assert dirstore.quota().trash == len(b"first") + len(b"second")
    trashed = dirstore.resolve(f"{TRASH}/logs/epoch_001.pt")
    dirstore.delete(trashed, trash=True)  # inside the trash: permanent
    assert sorted(os.listdir(root / TRASH / "logs")) == ["epoch_001.pt.~1~"]


def test_delete_root_and_missing(dirstore):
    with pytest.raises(UsageError, match="refusing to delete the store root"):
        dirstore.delete(dirstore.resolve(""))
    with pytest.raises(NotFoundError):
        dirstore.delete(RemoteEntry(id="nope.pt", name="nope.pt", is_dir=False))


def test_quota_is_the_filesystems(dirstore, root):
    import shutil

    q, du = dirstore.quota(), shutil.disk_usage(root)
    assert q.total == du.total
    assert abs(q.free - du.free) < 64 * 1024 * 1024  # other writers on the disk


def test_md5_cache_is_used_and_invalidated_by_changes(root, tmp_path):
    class Cache:
        def __init__(self):
            self.data = {}

        def get(self, path, st=None):
            st = st or os.stat(path)
            rec = self.data.get(path)
            return rec[1] if rec and rec[0] == (st.st_size, st.st_mtime_ns) else None

        def put(self, path, st, md5):
            self.data[path] = ((st.st_size, st.st_mtime_ns), md5)

    f = root / "a.pt"
    f.write_bytes(b"aaaa")
    st = os.stat(f)
    cache = Cache()
    cache.put(str(f), st, "cached-md5")
    dirstore = LocalDirStore(root, md5_cache=cache)
    assert dirstore.resolve("a.pt").md5 == "cached-md5"  # not re-read
    f.write_bytes(b"bbbb")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert dirstore.resolve("a.pt").md5 == hashlib.md5(b"bbbb").hexdigest()
    assert cache.data[str(f)][1] == hashlib.md5(b"bbbb").hexdigest()
    # an upload seeds the cache with the md5 computed while copying
    up = dirstore.upload(_local(tmp_path, b"cc"), dirstore.resolve(""), "c.pt")
    assert cache.data[str(root / "c.pt")][1] == up.md5 == hashlib.md5(b"cc").hexdigest()


def test_read_range_errors(dirstore, root):
    dirstore.make_folders("d")
    with pytest.raises(UsageError, match="is a folder"):
        dirstore.read_range(dirstore.resolve("d"), 0, 1)
    (root / "f").write_bytes(b"0123456789")
    with pytest.raises(UsageError, match="bad byte range"):
        dirstore.read_range(dirstore.resolve("f"), 5, 2)
    assert b"".join(dirstore.read_range(dirstore.resolve("f"), 8, 100)) == b"89"


@pytest.mark.parametrize("code, cls, fragment", [
    (errno.ENOSPC, QuotaExceededError, "no space left"),
    (errno.EDQUOT, QuotaExceededError, "no space left"),
    (errno.EIO, RemoteError, "Drive storage quota is full"),
])
def test_write_errors_are_explained(dirstore, code, cls, fragment):
    # The mapping itself; filling a real disk in a test is not an option.
    from drivestage.lost_mounts import write_error   # (split from localdir.py)

    err = write_error(OSError(code, os.strerror(code)), dirstore.root, "/src.pt", "/dst.pt", 10)
    assert isinstance(err, cls) and fragment in str(err)


def test_special_files_are_skipped_not_read(dirstore, root):
    os.mkfifo(root / "pipe")
    (root / "f.txt").write_bytes(b"f")
    assert [e.name for e in dirstore.list(dirstore.resolve(""))] == ["f.txt"]  # would hang if read
    with pytest.raises(UsageError, match="not a regular file"):
        dirstore.resolve("pipe")
