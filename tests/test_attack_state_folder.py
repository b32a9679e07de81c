"""Attacks on ``DEST/.drivestage``, where ``pull`` keeps its stamps and locks.

Someone who can write DEST (a shared folder, another user) can put a link or a folder of
their own at ``.drivestage``, or - where the state folder others can write (an old one made
under a umask of 0) - a stamp of their own or a link at a stamp's name. Stamps decide what
an update removes (``stale``, ``members``: the records of what an extraction wrote, which
anyone can read off the user's files with ``stat``), so a stamp drivestage did not write
must never be read, and nothing may be written where a link at ``.drivestage`` leads.

Each test drives ``drivestage pull`` in this process against the emulator; the adversary
acts through the file system, at a chosen moment where it matters (a hook on the merge
lock: "just before the merge").
"""
from __future__ import annotations

import json
import os
import shutil
import stat

import pytest

from _archives import a_fixed_zip as a_zip
from _cli import run
from drivestage.extract import MemberRecord
from drivestage.extract import job as job_module
from drivestage.extract import records as records_module
from test_pull_stamps import replace_on_drive, tree

V1 = {"ds/keep.txt": b"kept", "ds/gone.txt": b"only in v1"}
V2 = {"ds/keep.txt": b"kept, v2", "ds/new.txt": b"new in v2"}
MINE = b"the user's own notes"
as_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                             reason="gives files to another user")
NOBODY = 65534


@pytest.fixture(autouse=True)
def _world(env, drive_env, fast_retries):
    """Local state in tmp_path, the CLI and the library on the emulator, fast retries."""


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "data"


def message(dest) -> str:
    return (f"Error: {dest}/.drivestage, where drivestage keeps its locks and stamps, is a "
            "link, a file or another user's folder; is another program writing there? Move "
            "it away and run the command again")


def everything(root) -> dict:
    """Every entry under ``root``, the state folder included: bytes, ('->', t) or 'dir'."""
    out: dict = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = ("->", os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = "dir"
            else:
                out[rel] = open(path, "rb").read()
    return out


def staged_v1_with_a_private_file(emulator, dest):
    """v.zip v1 pulled and extracted; the user's file in a folder only they can write."""
    emulator.add_file("d/v.zip", a_zip(V1))
    code, _out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    assert code == 0, err
    private = dest / "private"
    private.mkdir(mode=0o700)
    (private / "mine.txt").write_bytes(MINE)
    return private / "mine.txt"


def the_stamp(dest):
    """The one stamp of v.zip in ``dest``: its path and its contents."""
    [path] = (dest / ".drivestage").glob("v.zip@*.json")
    return path, json.loads(path.read_bytes())


def forged_from(stamp: dict, victim, dest) -> dict:
    """A stamp of v.zip as an attacker writes it: another id, the same SRC, and a ``stale``
    record that is the victim file exactly as ``stat`` shows it to anyone."""
    st = os.lstat(victim)
    record = MemberRecord(os.path.relpath(victim, dest), "file", st.st_size, st.st_mtime_ns,
                          st.st_ino)
    return dict(stamp, id="forged", stale=[record.to_json()])


FORGED_NAME = "v.zip@0000000000000000.json"


def swap_back_before_the_merge(monkeypatch, undo) -> None:
    """The adversary's hook: ``undo()`` runs once, just before the first merge lock is
    taken (so the lock's own check of the state folder sees the user's folder again)."""
    done = []
    for module in (job_module, records_module):
        original = module.merge_lock

        def hooked(folder, _original=original):
            if not done:
                done.append(True)
                undo()
            return _original(folder)

        monkeypatch.setattr(module, "merge_lock", hooked)


# ------------------------------------------------------------------ (1) a link: no writes


@pytest.mark.parametrize("when", ["first pull", "rerun", "forced rerun"])
def test_a_state_folder_that_is_a_link_gets_nothing_written_through_it_and_the_pull_stops(
        emulator, dest, tmp_path, when):
    """``DEST/.drivestage`` is a link to a folder elsewhere (one the attacker cannot write,
    e.g. through a link into the user's home): no lock and no stamp is written there (before:
    the per-file lock and the stamp were made through the link); the pull stops with the
    merge lock's line, exit 1, and DEST is as it was."""
    outside = tmp_path / "outside"
    outside.mkdir()
    emulator.add_file("d/v.zip", a_zip(V1))
    if when != "first pull":
        assert run("pull", "drive:d/v.zip", str(dest), "-x", "-q")[0] == 0
        shutil.rmtree(dest / ".drivestage")  # moved away by the attacker
    else:
        dest.mkdir()
    os.symlink(outside, dest / ".drivestage")
    before = everything(dest)
    force = ["--force"] if when == "forced rerun" else []  # no stamp is looked up first
    code, _out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q", *force)
    assert code == 1
    assert err.strip().splitlines()[-1] == message(dest)
    assert os.listdir(outside) == []
    assert everything(dest) == before


def test_a_state_folder_swapped_for_a_link_during_the_download_gets_no_stamp(
        emulator, dest, tmp_path, monkeypatch):
    """The link is put at ``.drivestage`` while the archive downloads (after the stamps were
    read): the stamp is not written through it (before: it landed where the link leads); the
    pull stops with the merge lock's line before anything is extracted."""
    from drivestage.unpack import Unpacking

    outside = tmp_path / "outside"
    outside.mkdir()
    emulator.add_file("d/v.zip", a_zip(V1))
    original = Unpacking.download

    def download(self):
        os.rename(dest / ".drivestage", tmp_path / "moved-away")
        os.symlink(outside, dest / ".drivestage")
        return original(self)

    monkeypatch.setattr(Unpacking, "download", download)
    code, _out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    assert code == 1
    assert err.strip().splitlines()[-1] == message(dest)
    assert os.listdir(outside) == []
    assert tree(dest) == {"v.zip": a_zip(V1)}  # downloaded; nothing extracted


# ------------------------------------------------------------------ (2) forged stamps


@pytest.mark.parametrize("owner", ["a link", pytest.param("another user", marks=as_root)])
def test_a_forged_state_folder_swapped_back_before_the_merge_removes_nothing_of_the_users(
        emulator, dest, tmp_path, monkeypatch, owner):
    """The attacker puts their own state folder at ``.drivestage`` (a link to it, or a
    folder that is theirs) holding the user's stamps and a forged one whose ``stale`` is a
    file of the user's in a folder the attacker cannot write; they put the user's folder
    back just before the merge lock checks it. Before: the update read the forged stamp and
    removed the user's file. Now the pull stops at once with the merge lock's line, exit 1,
    and nothing of the user's goes."""
    victim = staged_v1_with_a_private_file(emulator, dest)
    path, stamp = the_stamp(dest)
    real = tmp_path / "real-state"
    os.rename(dest / ".drivestage", real)
    forged = tmp_path / "forged" if owner == "a link" else dest / ".drivestage"
    shutil.copytree(real, forged)
    (forged / FORGED_NAME).write_text(json.dumps(forged_from(stamp, victim, dest)))
    if owner == "a link":
        os.symlink(forged, dest / ".drivestage")
    else:
        for p in [forged, *forged.iterdir()]:
            os.chown(p, NOBODY, NOBODY)

    def undo():
        if owner == "a link":
            os.unlink(dest / ".drivestage")
        else:
            os.rename(dest / ".drivestage", tmp_path / "forged-gone")
        os.rename(real, dest / ".drivestage")

    swap_back_before_the_merge(monkeypatch, undo)
    replace_on_drive("d/v.zip", a_zip(V2), tmp_path)
    code, _out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    assert victim.read_bytes() == MINE
    assert code == 1
    assert err.strip().splitlines()[-1] == message(dest)
    assert tree(dest) == {"v.zip": a_zip(V1), **V1, "private/mine.txt": MINE}


@pytest.mark.parametrize("planted", ["a link", pytest.param("another user's file",
                                                             marks=as_root)])
def test_a_stamp_planted_in_a_state_folder_others_can_write_removes_nothing_of_the_users(
        emulator, dest, tmp_path, planted):
    """The user's state folder is one others can write (made under a umask of 0 by an older
    drivestage). The attacker plants a stamp of v.zip whose ``stale`` is a file of the
    user's: as a link to a file of theirs elsewhere, or as a file of theirs. Before: the
    update followed the link (or read their file) and removed the user's file. Now such a
    stamp is never read: the update goes as it would without it."""
    victim = staged_v1_with_a_private_file(emulator, dest)
    _path, stamp = the_stamp(dest)
    os.chmod(dest / ".drivestage", 0o777)
    body = json.dumps(forged_from(stamp, victim, dest)).encode()
    if planted == "a link":
        elsewhere = tmp_path / "theirs.json"
        elsewhere.write_bytes(body)
        os.symlink(elsewhere, dest / ".drivestage" / FORGED_NAME)
    else:
        (dest / ".drivestage" / FORGED_NAME).write_bytes(body)
        os.chown(dest / ".drivestage" / FORGED_NAME, NOBODY, NOBODY)
    replace_on_drive("d/v.zip", a_zip(V2), tmp_path)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "--json")
    assert victim.read_bytes() == MINE
    assert code == 0, err
    assert json.loads(out)["action"] == "update"
    assert tree(dest) == {"v.zip": a_zip(V2), **V2, "private/mine.txt": MINE}
    if planted == "a link":
        assert elsewhere.read_bytes() == body


# ------------------------------------------------------------------ (3) a link at a stamp


def test_a_stamp_that_is_a_link_is_neither_followed_nor_removed_through(
        emulator, dest, tmp_path):
    """A stamp's file replaced by a link to a copy of it elsewhere, and a second link at
    another stamp name of v.zip: neither is followed. The rerun does not take the linked
    stamp's word that the copy is staged (before: "cached" on it): it checks the copy's md5
    and extracts again, then writes its stamp as a file of its own at that name. The files
    the links lead to keep their bytes."""
    emulator.add_file("d/v.zip", a_zip(V1))
    assert run("pull", "drive:d/v.zip", str(dest), "-x", "-q")[0] == 0
    path, stamp = the_stamp(dest)
    copy, other = tmp_path / "copy.json", tmp_path / "other.json"
    shutil.move(path, copy)
    os.symlink(copy, path)
    other.write_text(json.dumps(dict(stamp, id="other")))
    os.symlink(other, dest / ".drivestage" / FORGED_NAME)
    kept = copy.read_bytes(), other.read_bytes()
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "--json")
    assert code == 0, err
    assert json.loads(out)["action"] == "verified"
    assert stat.S_ISREG(os.lstat(path).st_mode)
    assert json.loads(path.read_bytes())["extracted"] is True
    assert (copy.read_bytes(), other.read_bytes()) == kept
    assert tree(dest) == {"v.zip": a_zip(V1), **V1}


def test_a_new_state_folder_is_the_users_alone_whatever_the_umask(emulator, dest):
    """Made under a umask of 0 (a shared machine's setting for a team folder), the state
    folder still lets nobody else in: nobody else can plant a stamp or a link there, nor
    remove the lock files (before: 0777, as the umask said)."""
    emulator.add_file("d/v.zip", a_zip(V1))
    old = os.umask(0)
    try:
        code, _out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "-q")
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE(os.lstat(dest / ".drivestage").st_mode) == 0o700
    assert tree(dest) == {"v.zip": a_zip(V1), **V1}


def test_a_state_folder_an_older_drivestage_left_open_to_others_is_made_private(
        emulator, dest):
    """A state folder made 0777 (an older drivestage, under a umask of 0): others could
    delete its lock files, and two pulls then ran into DEST at once. The next pull makes it
    the user's alone; its stamps stay and the rerun is still a no-op."""
    emulator.add_file("d/v.zip", a_zip(V1))
    assert run("pull", "drive:d/v.zip", str(dest), "-x", "-q")[0] == 0
    os.chmod(dest / ".drivestage", 0o777)
    code, out, err = run("pull", "drive:d/v.zip", str(dest), "-x", "--json")
    assert code == 0, err
    assert json.loads(out)["action"] == "cached"
    assert stat.S_IMODE(os.lstat(dest / ".drivestage").st_mode) == 0o700
