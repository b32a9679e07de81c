"""More attacks on the temporary folders in DEST: a folder of the user's put at their names.

Whoever can write DEST (a shared ``/content``, a team's data disk) cannot delete what is
inside a folder of the user's there, but can rename that folder. Put at the name of a
temporary folder - a new one, one about to be removed, a stale one - it must be neither
written into nor removed: drivestage removes only what it reaches through the descriptor of
the folder it made (or judged stale), and a name only while it leads to that folder, empty.
Tests run as one user: the other program's moves are made from hooks at chosen moments.
"""
from __future__ import annotations

import os

import pytest

from _archives import a_zip, tree
from drivestage.errors import DestChangedError
from drivestage.extract import extract
from drivestage.extract import tempdir
from drivestage.extract.tempdir import OLD_PREFIX, OWNER_LOCK, TEMP_PREFIX

DATA = {"set/a.txt": b"alpha", "set/b/c.txt": b"gamma", "top.txt": b"top"}
STALE = f"{TEMP_PREFIX}4194999-deadbeef"  # above any Linux pid_max: no process has it


def users_folder(dest, mode: int = 0o700) -> str:
    """A folder of the user's in DEST, private (nobody else may delete what it holds)."""
    mine = os.path.join(dest, "mine")
    os.makedirs(os.path.join(mine, "sub"))
    with open(os.path.join(mine, "sub", "notes.txt"), "wb") as fh:
        fh.write(b"the user's notes")
    os.chmod(mine, mode)
    return mine


def notes_found(dest) -> list[str]:
    """Where the user's notes are now, anywhere below DEST (the attacker moved them)."""
    return sorted(k for k, v in tree(dest).items()
                  if k.endswith("sub/notes.txt") and v == b"the user's notes")


def visible(dest) -> dict[str, bytes]:
    """DEST outside hidden top-level names (drivestage's, and where the attacker put
    things)."""
    return {k: v for k, v in tree(dest).items()
            if not k.startswith(".") and not k.startswith("mine/")}


def archive_in(tmp_path) -> str:
    path = tmp_path / "a.zip"
    path.write_bytes(a_zip(DATA))
    return str(path)


def test_a_users_folder_put_at_a_new_temp_folders_name_is_neither_written_into_nor_removed(
        tmp_path, monkeypatch):
    """Between ``mkdir`` and ``open`` the new folder is moved away and the user's own
    folder (private, this user's: it passes the owner and mode checks) renamed to its name.
    It is not empty: not the folder just made, so another name is taken; the user's files
    stay (before: the members were written into it, and the folder went with the
    temporary folder)."""
    dest = tmp_path / "dest"
    dest.mkdir()
    mine = users_folder(dest)
    real_mkdir, swapped = os.mkdir, []

    def mkdir_then_swapped(path, mode=0o777, *args, **kwargs):
        real_mkdir(path, mode, *args, **kwargs)
        if not swapped and os.path.basename(str(path)).startswith(TEMP_PREFIX):
            os.rename(path, dest / ".ours-moved")
            os.rename(mine, path)
            swapped.append(str(path))

    monkeypatch.setattr(tempdir.os, "mkdir", mkdir_then_swapped)
    extract(archive_in(tmp_path), dest)
    monkeypatch.undo()
    assert swapped
    assert notes_found(dest) == [os.path.relpath(swapped[0], dest) + "/sub/notes.txt"]
    assert sorted(os.listdir(swapped[0])) == ["sub"]  # nothing of drivestage's written in
    assert visible(dest) == DATA


def test_a_users_folder_put_at_the_temp_folders_name_while_it_is_removed_stays(
        tmp_path, monkeypatch):
    """The extraction is done; as its temporary folder is removed, right after drivestage
    looked at its name, the folder is moved away and the user's own folder renamed to
    that name. The user's folder stays whole (before: removed by name, ``rmtree``); the
    moved temporary folder is emptied through its descriptor."""
    dest = tmp_path / "dest"
    dest.mkdir()
    mine = users_folder(dest)
    real_lstat, swapped = os.lstat, []

    def lstat_then_swapped(path, *args, **kwargs):
        st = real_lstat(path, *args, **kwargs)
        name = os.path.basename(os.fsdecode(path)) if isinstance(path, (str, bytes)) else ""
        if not swapped and name.startswith(TEMP_PREFIX) and not kwargs.get("dir_fd"):
            os.rename(path, dest / ".ours-moved")
            os.rename(mine, path)
            swapped.append(os.fsdecode(path))
        return st

    monkeypatch.setattr(tempdir.os, "lstat", lstat_then_swapped)
    extract(archive_in(tmp_path), dest)
    monkeypatch.undo()
    assert swapped
    assert notes_found(dest) == [os.path.relpath(swapped[0], dest) + "/sub/notes.txt"]
    assert os.listdir(dest / ".ours-moved") == []
    assert visible(dest) == DATA


def test_a_users_folder_put_at_a_stale_folders_name_once_its_lock_was_taken_stays(
        tmp_path, monkeypatch):
    """A stale temporary folder (its owner lock free) is being swept; right after its lock
    was taken, it is moved away and the user's own folder renamed to its name. The user's
    folder stays whole (before: removed by name); the stale one is emptied."""
    dest = tmp_path / "dest"
    dest.mkdir()
    mine = users_folder(dest)
    stale = dest / STALE
    (stale / "half").mkdir(parents=True, mode=0o700)
    (stale / OWNER_LOCK).write_bytes(b"")
    real_flock, swapped = tempdir.fcntl.flock, []

    def flock_then_swapped(fd, op):
        real_flock(fd, op)
        if not swapped and os.readlink(f"/proc/self/fd/{fd}").endswith(
                f"{STALE}/{OWNER_LOCK}"):
            os.rename(stale, dest / ".stale-moved")
            os.rename(mine, stale)
            swapped.append(True)

    monkeypatch.setattr(tempdir.fcntl, "flock", flock_then_swapped)
    extract(archive_in(tmp_path), dest)
    monkeypatch.undo()
    assert swapped
    assert notes_found(dest) == [f"{STALE}/sub/notes.txt"]
    assert os.listdir(dest / ".stale-moved") == []
    assert visible(dest) == DATA


@pytest.mark.parametrize("name", [STALE, f"{OLD_PREFIX}4194999-deadbeef"])
def test_a_users_folder_renamed_like_an_old_drivestages_temp_folder_in_a_shared_dest_stays(
        tmp_path, name):
    """An older drivestage's temporary folders had no owner lock: the process id in the
    name was all that said "stale". In a DEST others can write, anyone can give a folder of
    the user's such a name, so those are left alone there (before: removed whole)."""
    dest = tmp_path / "dest"
    dest.mkdir()
    os.chmod(dest, 0o777)
    os.rename(users_folder(dest), dest / name)
    extract(archive_in(tmp_path), dest)
    assert notes_found(dest) == [f"{name}/sub/notes.txt"]
    assert visible(dest) == DATA


def test_an_old_drivestages_temp_folder_in_a_dest_only_the_user_writes_still_goes(tmp_path):
    """Where nobody else can write DEST, the older drivestage's folder of a dead process is
    what it looks like: it goes, as it did."""
    dest = tmp_path / "dest"
    dest.mkdir()
    os.chmod(dest, 0o755)
    (dest / STALE / "half").mkdir(parents=True)
    (dest / STALE / "half" / "x.bin").write_bytes(b"x")
    extract(archive_in(tmp_path), dest)
    assert sorted(os.listdir(dest)) == [".drivestage", "set", "top.txt"]


def test_a_state_folder_swapped_for_a_link_gets_no_lock_file_and_the_extraction_stops(
        tmp_path):
    """``DEST/.drivestage`` (where the merge lock is) replaced by a link to a folder
    elsewhere: no lock file is made there (before: ``merge.flock`` was created through the
    link, and a lock file someone else holds there would hold the merge forever); the
    extraction stops with one clear line, and DEST is as it was."""
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    os.symlink(outside, dest / ".drivestage")
    with pytest.raises(DestChangedError) as info:
        extract(archive_in(tmp_path), dest)
    assert str(info.value) == (
        f"{dest}/.drivestage, where drivestage keeps its locks and stamps, is a link, a file "
        "or another user's folder; is another program writing there? Move it away and "
        "run the command again")
    assert os.listdir(outside) == []
    assert sorted(os.listdir(dest)) == [".drivestage"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="gives a folder to another user")
def test_a_state_folder_of_another_user_is_not_used_for_the_merge_lock(tmp_path):
    """Someone else's ``.drivestage`` at its name, with a lock file of theirs that they
    could hold forever (the merge would wait for it without end): refused at once."""
    dest = tmp_path / "dest"
    (dest / ".drivestage").mkdir(parents=True)
    (dest / ".drivestage" / "merge.flock").write_bytes(b"")
    for path in (dest / ".drivestage", dest / ".drivestage" / "merge.flock"):
        os.chown(path, 65534, 65534)
    with pytest.raises(DestChangedError, match="is a link, a file or another user's folder"):
        extract(archive_in(tmp_path), dest)
    assert sorted(os.listdir(dest)) == [".drivestage"]


@pytest.mark.parametrize("how", ["moved", "linked"])
def test_a_file_of_the_users_given_the_lock_files_name_does_not_make_a_folder_stale(
        tmp_path, how):
    """In a DEST others can write, the user's 0777 folder (whose private subfolder they
    cannot empty) gets a file of the user's they can write - moved, or hard-linked, in as
    ``.drivestage-owner`` - and a stale temporary folder's name. A free lock of the user's
    would say "stale": the sweep would remove the folder, private subfolder and all. An
    owner lock is an empty file with one name; this one is neither, so the folder stays."""
    dest = tmp_path / "dest"
    dest.mkdir()
    os.chmod(dest, 0o777)
    mine = users_folder(dest, mode=0o777)
    os.chmod(os.path.join(mine, "sub"), 0o700)
    shared = dest / "shared.txt"
    shared.write_bytes(b"a file of the user's that others may write")
    os.chmod(shared, 0o666)
    (os.link if how == "linked" else os.rename)(shared, os.path.join(mine, OWNER_LOCK))
    os.rename(mine, dest / STALE)
    extract(archive_in(tmp_path), dest)
    assert notes_found(dest) == [f"{STALE}/sub/notes.txt"]
    assert {k: v for k, v in visible(dest).items() if k != "shared.txt"} == DATA
