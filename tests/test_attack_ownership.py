"""Attacks on the ownership rule of drivestage's own folders in DEST (the temporary folder
``.drivestage-extract-…``, the state folder ``.drivestage``): a folder is drivestage's own
when it has the owner a file just made there gets (:func:`~drivestage.extract.tempdir.
new_file_owner`, a probe file), and a group/other-writable one only where a fresh 0600 file
shows such bits too (the file system sets the modes).

Two adversaries: another user who can write DEST on an ordinary file system (modelled as
root giving files to ``nobody``), and anyone on a mount that sets every owner and mode
(``bindfs``, as in ``test_forced_owner_fs.py``), where the rule must still let drivestage
find its own folders and leave nothing behind - after a success, a failure, a kill.
"""
from __future__ import annotations

import io
import os
import signal
import stat
import struct
import subprocess
import sys
import zipfile

import pytest

import drivestage
from _archives import a_fixed_zip, tree
from _cli import run
from drivestage.errors import ArchiveError
from drivestage.extract import extract
from drivestage.extract import tempdir
from drivestage.extract.tempdir import OWNER_LOCK, PROBE_PREFIX, TEMP_PREFIX, new_file_owner
from test_forced_owner_fs import forced  # noqa: F401 - the fixture
from test_pull_stamps import replace_on_drive

DATA = {"ds/a.txt": b"alpha", "ds/sub/b.txt": b"beta"}
V1 = {"ds/keep.txt": b"kept", "ds/gone.txt": b"only in v1"}
V2 = {"ds/keep.txt": b"kept, v2", "ds/new.txt": b"new in v2"}
NOBODY = 65534
as_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                             reason="gives files to another user")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(drivestage.__file__)))




def leftovers(dest) -> list[str]:
    """drivestage's passing names left in DEST (and FUSE's hidden files of open removed
    ones), anywhere below it."""
    out = []
    for folder, dirs, files in os.walk(dest):
        for name in dirs + files:
            if name.startswith((TEMP_PREFIX, PROBE_PREFIX, ".fuse_hidden")):
                out.append(os.path.relpath(os.path.join(folder, name), dest))
    return sorted(out)


# ------------------------------------------------------------------ a forced-owner mount

_KILLED = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from drivestage.extract.tempdir import make_temp
temp, lock = make_temp(sys.argv[2])
with open(os.path.join(temp.path, "part.bin"), "wb") as fh:
    fh.write(b"half a member")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_extractions_folder_there_is_removed_by_the_next_run(forced, tmp_path):
    """An extraction killed while its temporary folder holds a member; the next one sweeps
    it. Before: the sweep removed the owner lock's file while it held the lock open, FUSE
    kept that file as a hidden one, the folder was not empty and stayed - empty once the
    lock closed, without a lock, in a DEST everyone can write (a 0777 mount): never judged
    stale again, there for good."""
    dest = forced / "dest"
    dest.mkdir()
    killed = subprocess.run([sys.executable, "-c", _KILLED, ROOT, str(dest)])
    assert killed.returncode == -signal.SIGKILL
    [temp] = [n for n in os.listdir(dest) if n.startswith(TEMP_PREFIX)]
    assert sorted(os.listdir(dest / temp)) == [OWNER_LOCK, "part.bin"]
    archive = tmp_path / "a.zip"
    archive.write_bytes(a_fixed_zip(DATA))
    for _ in range(2):
        extract(archive, dest)
        assert leftovers(dest) == []
    assert tree(dest) == DATA


def corrupt_zip(count: int) -> bytes:
    """A zip of ``count`` stored members whose last one fails its CRC."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(count):
            zf.writestr(zipfile.ZipInfo(f"set/m{i:04d}.bin", (2024, 1, 2, 3, 4, 6)),
                        os.urandom(64 + i % 2000))
    blob = bytearray(buf.getvalue())
    name = f"set/m{count - 1:04d}.bin".encode()
    at = blob.index(name) + len(name)
    blob[at + 10] ^= 0xFF
    return bytes(blob)


@pytest.mark.parametrize("jobs,count", [(1, 3), (2, 600)])
def test_a_corrupt_archive_there_leaves_dest_as_it_was(forced, tmp_path, jobs, count):
    """One thread, and workers (each holds the temporary folder's lock by an inherited
    descriptor): the failure leaves the user's file and nothing else."""
    dest = forced / "dest"
    dest.mkdir()
    (dest / "mine.txt").write_bytes(b"kept")
    archive = tmp_path / "bad.zip"
    archive.write_bytes(corrupt_zip(count))
    with pytest.raises(ArchiveError):
        extract(archive, dest, jobs=jobs)
    assert sorted(os.listdir(dest)) == ["mine.txt"]
    assert leftovers(tmp_path / "src") == []


def test_a_pull_there_stages_reruns_and_updates(forced, tmp_path, emulator, drive_env, env,
                                                fast_retries):
    """First pull, its rerun ('already staged') and a new version that drops a member:
    the old member goes, nothing of drivestage's passing names is left."""
    emulator.add_file("d/v.zip", a_fixed_zip(V1))
    dest = forced / "data"
    code, _out, err = run("pull", "drive:d/v.zip", str(dest), "-x")
    assert code == 0, err
    code, _out, err = run("pull", "drive:d/v.zip", str(dest), "-x")
    assert code == 0 and "already staged" in err, err
    assert tree(dest) == {"v.zip": a_fixed_zip(V1), **V1}
    replace_on_drive("d/v.zip", a_fixed_zip(V2), tmp_path)
    code, _out, err = run("pull", "drive:d/v.zip", str(dest), "-x")
    assert code == 0, err
    assert tree(dest) == {"v.zip": a_fixed_zip(V2), **V2}
    assert sorted(os.listdir(dest)) == [".drivestage", "ds", "v.zip"]
    assert leftovers(tmp_path / "src") == []


# ------------------------------------------------------------------ the probe file


@as_root
@pytest.mark.parametrize("kind", ["link", "fifo", "file"])
def test_a_thing_put_at_the_probes_name_is_neither_followed_nor_waited_on_nor_removed(
        tmp_path, monkeypatch, kind):
    """DEST is another user's (0777): the probe is made there. Whoever guessed its name puts
    a link (to a file of the user's elsewhere), a FIFO or a file of their own at it just
    before: the probe is not made, the owner assumed is this user (whom only this user's
    own folders match), and what was put there stays as it was."""
    dest = tmp_path / "dest"
    dest.mkdir()
    os.chown(dest, NOBODY, NOBODY)
    os.chmod(dest, 0o777)
    target = tmp_path / "users.txt"
    target.write_bytes(b"the user's file")
    real_open, put = os.open, []

    def open_after_the_adversary(path, flags, *args, **kwargs):
        name = os.fsdecode(path)
        if name.startswith(PROBE_PREFIX) and not put:
            at = dest / name
            if kind == "link":
                os.symlink(target, at)
            elif kind == "fifo":
                os.mkfifo(at)
            else:
                at.write_bytes(b"theirs")
                os.chown(at, NOBODY, NOBODY)
            put.append(at)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(tempdir.os, "open", open_after_the_adversary)
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert new_file_owner(fd) == os.geteuid()
    finally:
        os.close(fd)
    monkeypatch.undo()
    [at] = put
    assert os.path.lexists(at)
    assert target.read_bytes() == b"the user's file"
    if kind == "file":
        assert at.read_bytes() == b"theirs"


@as_root
def test_the_probe_on_an_ordinary_file_system_finds_this_user_and_leaves_nothing(tmp_path):
    """Another user's DEST, 0777 and setgid: a new file there is still this user's."""
    dest = tmp_path / "dest"
    dest.mkdir()
    os.chown(dest, NOBODY, NOBODY)
    os.chmod(dest, 0o2777)
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert new_file_owner(fd) == os.geteuid()
    finally:
        os.close(fd)
    assert os.listdir(dest) == []


# ------------------------------------------------------------------ ordinary file system:
# a folder others can write, put at the new temporary folder's name

ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER = 0x01, 0x04, 0x10, 0x20


def default_acl_everyone_rwx(path) -> None:
    """``setfacl -d -m u::rwx,g::rwx,o::rwx,m::rwx PATH`` (by its xattr: no setfacl here)."""
    entries = [(ACL_USER_OBJ, 7, 0xFFFFFFFF), (ACL_GROUP_OBJ, 7, 0xFFFFFFFF),
               (ACL_MASK, 7, 0xFFFFFFFF), (ACL_OTHER, 7, 0xFFFFFFFF)]
    blob = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)
    try:
        os.setxattr(path, "system.posix_acl_default", blob)
    except OSError as exc:
        pytest.skip(f"no POSIX ACLs here: {exc}")


@as_root
@pytest.mark.parametrize("how", ["acl", "setgid"])
def test_an_empty_folder_others_can_write_put_at_the_temp_folders_name_is_not_used(
        tmp_path, monkeypatch, how):
    """The user's own empty folder, mode 0777 (a default ACL giving everyone rwx, or setgid),
    is renamed by the other user to the name of the temporary folder just made. A fresh
    0600 lock file inside shows no group/other bits (a default ACL only narrows the mode
    asked for), so the folder is not taken for one whose modes the file system sets:
    nothing is written into it, another name is used."""
    dest = tmp_path / "dest"
    dest.mkdir()
    os.chown(dest, NOBODY, NOBODY)
    os.chmod(dest, 0o777)
    open_folder = dest / "shared-empty"
    open_folder.mkdir()
    if how == "acl":
        default_acl_everyone_rwx(open_folder)
        os.chmod(open_folder, 0o777)
    else:
        os.chmod(open_folder, 0o2777)
    real_mkdir, swapped = os.mkdir, []

    def mkdir_then_swapped(path, mode=0o777, *args, **kwargs):
        real_mkdir(path, mode, *args, **kwargs)
        if not swapped and os.path.basename(str(path)).startswith(TEMP_PREFIX):
            os.rename(path, dest / ".ours-moved")
            os.rename(open_folder, path)
            swapped.append(str(path))

    monkeypatch.setattr(tempdir.os, "mkdir", mkdir_then_swapped)
    archive = tmp_path / "a.zip"
    archive.write_bytes(a_fixed_zip(DATA))
    extract(archive, dest)
    monkeypatch.undo()
    [at] = swapped
    assert os.listdir(at) == []  # neither a lock nor a member written into it
    assert stat.S_IMODE(os.stat(at).st_mode) & 0o777 == 0o777
    assert {k: v for k, v in tree(dest).items() if not k.startswith(".")} == DATA
