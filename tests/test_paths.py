"""Parsing of drive: paths."""
from __future__ import annotations

import os

import pytest

from drivestage import paths
from drivestage.errors import UsageError


def test_my_drive_paths():
    p = paths.parse("drive:VOC_datasets/VOC07+12+test.zip")
    assert (p.anchor, p.parts, p.name) == ("root", ("VOC_datasets", "VOC07+12+test.zip"),
                                           "VOC07+12+test.zip")
    assert str(p.store_path) == "VOC_datasets/VOC07+12+test.zip"
    assert str(p) == "drive:VOC_datasets/VOC07+12+test.zip"
    assert paths.parse("drive:").parts == ()
    assert paths.parse("drive:/a//b/").parts == ("a", "b")
    assert paths.parse("drive:a/b/").trailing_slash
    # Exact names: case and inner spaces are kept.
    assert paths.parse("drive:My Data/Set A.ZIP").parts == ("My Data", "Set A.ZIP")


def test_id_paths():
    p = paths.parse("drive:id:1AbC_d-9")
    assert (p.anchor, p.file_id, p.parts, str(p.store_path)) == ("id", "1AbC_d-9", (), "id:1AbC_d-9")
    assert p.store_path == paths.StorePath("1AbC_d-9", ())
    q = paths.parse("drive:id:root/shared/x.zip")
    assert q.parts == ("shared", "x.zip") and str(q.store_path) == "id:root/shared/x.zip"
    assert str(q) == "drive:id:root/shared/x.zip"


def test_shared_drive_paths():
    p = paths.parse("drive:shared/Team Data/VOC/x.zip")
    assert (p.anchor, p.shared_drive, p.parts) == ("shared", "Team Data", ("VOC", "x.zip"))
    assert p.store_path == paths.StorePath(None, ("VOC", "x.zip"))
    assert str(p) == "drive:shared/Team Data/VOC/x.zip"
    assert paths.parse("drive:shared/Team").parts == ()
    assert str(paths.parse("drive:shared/Team").child("a")) == "drive:shared/Team/a"


@pytest.mark.parametrize("spec,needle", [
    ("drive:id:", "missing file id"),
    ("drive:id:a b", "not a Drive file id"),
    ("drive:shared/", "missing shared drive name"),
    ("drive:shared", "missing shared drive name"),
    ("drive:a/../b", "'..' is not allowed"),
    ("drive:./a", "'.' is not allowed"),
    ("./local/dir", "not a Drive path"),
])
def test_bad_paths_name_the_spec_and_the_fix(spec, needle):
    with pytest.raises(UsageError) as info:
        paths.parse(spec)
    assert needle in str(info.value) and repr(spec) in str(info.value)
    assert info.value.exit_code == 2


def test_split_store_path():
    assert paths.split_store_path("a/b") == (None, ("a", "b"))
    assert paths.split_store_path("id:XYZ") == ("XYZ", ())
    assert paths.split_store_path("id:XYZ/c") == ("XYZ", ("c",))
    assert paths.split_store_path("") == (None, ())
    with pytest.raises(UsageError):
        paths.split_store_path("id:/x")
    assert paths.is_drive("drive:x") and not paths.is_drive("/tmp/x")


# --- the Google Drive mount (pull and trainer warn when data or logs would live on it) ------

def test_drive_mount_finds_a_drive_fuse_mount_and_only_that(tmp_path):
    from drivestage.localfs import drive_mount

    mnt = tmp_path / "My Drive mnt"
    (mnt / "MyDrive" / "data").mkdir(parents=True)
    other = tmp_path / "sshfs"
    other.mkdir()
    escaped = str(mnt).replace(" ", "\\040")
    table = (f"drive {escaped} fuse.drive rw,nosuid,nodev 0 0\n"
             f"host:/x {other} fuse.sshfs rw 0 0\n"
             "/dev/vda / ext4 rw 0 0\n")
    assert drive_mount(str(mnt / "MyDrive" / "data"), table) == str(mnt)
    assert drive_mount(str(mnt / "MyDrive" / "not-yet-created"), table) == str(mnt)
    assert drive_mount(str(mnt), table) == str(mnt)
    assert drive_mount(str(other), table) is None
    assert drive_mount(str(tmp_path / "My Drive mntx"), table) is None  # a prefix, not inside
    # rclone and google-drive-ocamlfuse name Drive in the source or the type.
    assert drive_mount(str(other), f"gdrive: {other} fuse.rclone rw 0 0\n") == str(other)
    assert drive_mount(str(other), f"gdfuse {other} fuse.google-drive-ocamlfuse rw 0 0\n") \
        == str(other)


def test_colabs_drive_folder_counts_only_when_the_table_cannot_be_read(monkeypatch):
    """A plain folder at /content/drive is local disk (mount31; tests/test_mount31_drive_mount.py
    mounts one); only an unreadable mount table leaves the name to decide."""
    import builtins

    from drivestage.localfs import COLAB_DRIVE_MOUNT, drive_mount

    assert drive_mount(COLAB_DRIVE_MOUNT + "/MyDrive/logs", "") is None
    real_open = builtins.open

    def no_table(file, *args, **kwargs):
        if file == "/proc/mounts":
            raise PermissionError(13, "Permission denied", file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_table)
    assert drive_mount(COLAB_DRIVE_MOUNT + "/MyDrive/logs") == COLAB_DRIVE_MOUNT
    assert drive_mount("/content/drive-backup/x", "") is None
    assert drive_mount("/content/data", "") is None


def test_atomic_file_replaces_only_when_complete(tmp_path):
    import stat

    from drivestage.localfs import atomic_file, atomic_write

    target = tmp_path / "state.json"
    atomic_write(str(target), b"old", mode=0o644)
    with pytest.raises(RuntimeError):
        with atomic_file(str(target), durable=True) as fh:
            fh.write(b"half of the new con")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.json"]       # no temporary file left behind
    with atomic_file(str(target), durable=True, mode=0o600) as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


@pytest.mark.parametrize("link,file_id,key", [
    ("https://drive.google.com/file/d/1AbC_d-9/view?usp=sharing", "1AbC_d-9", None),
    ("https://drive.google.com/file/d/1AbC_d-9/view?usp=sharing&resourcekey=0-xY_z",
     "1AbC_d-9", "0-xY_z"),
    ("https://drive.google.com/file/d/1AbC/view", "1AbC", None),
    ("https://drive.google.com/file/d/1AbC", "1AbC", None),
    ("https://drive.google.com/open?id=1AbC", "1AbC", None),
    ("https://drive.google.com/open?id=1AbC&resourcekey=0-k", "1AbC", "0-k"),
    ("https://drive.google.com/uc?id=1AbC&export=download", "1AbC", None),
    ("https://drive.google.com/drive/folders/1Fold?usp=sharing", "1Fold", None),
    ("https://drive.google.com/drive/folders/1Fold?resourcekey=0-k&usp=drive_link", "1Fold", "0-k"),
    ("https://drive.google.com/drive/u/0/folders/1Fold", "1Fold", None),
    ("http://drive.google.com/drive/folders/1Fold", "1Fold", None),
    ("https://docs.google.com/document/d/1Doc/edit", "1Doc", None),
])
def test_sharing_links_are_ids_with_their_resource_keys(link, file_id, key):
    assert paths.is_drive(link)
    p = paths.parse(link)
    assert (p.anchor, p.file_id, p.resource_key, p.parts) == ("id", file_id, key, ())
    assert p.store_path == paths.StorePath(file_id, (), key)
    assert str(p) == f"drive:id:{file_id}" + (f":{key}" if key else "")


def test_id_with_a_resource_key():
    p = paths.parse("drive:id:1AbC:0-k_Y/sub/x.zip")
    assert (p.file_id, p.resource_key, p.parts) == ("1AbC", "0-k_Y", ("sub", "x.zip"))
    assert str(p.store_path) == "id:1AbC:0-k_Y/sub/x.zip"
    assert paths.StorePath.parse("id:1AbC:0-k_Y/sub") == paths.StorePath("1AbC", ("sub",), "0-k_Y")
    assert paths.StorePath.parse("id:1AbC:0-k_Y/sub").child("x").key == "0-k_Y"


@pytest.mark.parametrize("spec,needle", [
    ("drive:id:1AbC:bad key", "is not a Drive resource key"),
    ("drive:id:1AbC:", "is not a Drive resource key"),
    ("https://drive.google.com/drive/my-drive", "not a link to a Drive file or folder"),
    ("https://drive.google.com/file/d/1AbC/view?resourcekey=a%20b",
     "is not a Drive resource key"),
])
def test_bad_keys_and_links(spec, needle):
    with pytest.raises(UsageError) as info:
        paths.parse(spec)
    assert needle in str(info.value) and info.value.exit_code == 2


def test_shared_with_me_paths():
    p = paths.parse("drive:shared-with-me/Course/VOC/x.zip")
    assert (p.anchor, p.parts) == ("shared-with-me", ("Course", "VOC", "x.zip"))
    assert p.store_path == paths.StorePath(None, ("Course", "VOC", "x.zip"))
    assert str(p) == "drive:shared-with-me/Course/VOC/x.zip"
    assert paths.parse("drive:shared-with-me").parts == ()
    assert str(paths.parse("drive:shared-with-me/")) == "drive:shared-with-me/"
    # A My Drive folder of that name stays reachable from the root's id.
    assert paths.parse("drive:id:root/shared-with-me/a").parts == ("shared-with-me", "a")
    assert not paths.is_drive("https://example.com/file/d/1AbC")


def test_printable_escapes_what_would_drive_a_terminal():
    assert paths.printable("VOC07+12 test.zip") == "VOC07+12 test.zip"
    assert paths.printable("état 🙂.zip") == "état 🙂.zip"
    assert paths.printable("\x1b[2J\x1b]0;pwned\x07x") == "\\x1b[2J\\x1b]0;pwned\\x07x"
    assert paths.printable("a\nb\rc\x7f\x9b") == "a\\x0ab\\x0dc\\x7f\\x9b"
    assert paths.printable("evil\u202egpj.exe\u2028") == "evil\\u202egpj.exe\\u2028"
