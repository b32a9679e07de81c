"""Issue 12's Drive-as-users-have-it features attacked again (attack12): links that are not
Drive's, shortcuts in a shared drive that lead out of it, and a shared drive where the account
may add files but remove none. Each through the real CLI and stack against the emulator."""
from __future__ import annotations

import os

import pytest

from _cli import run
from _envs import env_user_lines  # noqa: F401 (a fixture: env, the lines a user sees)


def error_line(code, err, expected_code=1):
    assert code == expected_code, err
    lines = [line for line in err.split("\n") if line.strip()]
    assert lines[-1].startswith("Error: ") and \
        sum(line.startswith("Error:") for line in lines) == 1, err
    assert "Traceback" not in err
    return lines[-1]


def _live(emulator, title):
    return [f for f in emulator.files() if f["title"] == title and not f["labels"]["trashed"]]


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".drivestage" not in p.parts}


# --------------------------------------------------------------------------- web addresses

def test_drives_download_link_is_a_sharing_link(emulator, env, tmp_path):
    """Drive's Download button leads to drive.usercontent.google.com/download?id=<ID>: the
    link users copy from their browser's downloads. It was taken for a local path ("no such
    file or folder: ./https:/drive.usercontent.google.com/...")."""
    fid = emulator.add_file("x/VOC07.zip", b"voc bytes")
    link = f"https://drive.usercontent.google.com/download?id={fid}&export=download&authuser=0"
    code, out, err = run("pull", "-q", link, str(tmp_path / "d"))
    assert code == 0, err
    assert (tmp_path / "d" / "VOC07.zip").read_bytes() == b"voc bytes"


@pytest.mark.parametrize("spec", ["https://www.dropbox.com/scl/fo/abc/run?dl=0",
                                  "https://storage.googleapis.com/bucket/run",
                                  "http://example.com/logs"])
@pytest.mark.parametrize("command", ["push", "pull", "pull-ack", "ls", "prune"])
def test_a_web_address_that_is_not_a_drive_link_is_refused_not_taken_for_a_folder(
        emulator, env, tmp_path, monkeypatch, spec, command):
    """`push logs https://...` with a link drivestage does not know as Drive's wrote the run
    into ./https:/<host>/... on local disk and said "1 uploaded": the user believes the
    checkpoints are safe on a server."""
    monkeypatch.chdir(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "epoch_001.pt").write_bytes(b"weights")
    args = {"push": ("push", str(logs), spec), "pull": ("pull", "-q", spec, str(tmp_path / "d")),
            "pull-ack": ("pull", "-q", "--acknowledge-abuse", spec, str(tmp_path / "d")),
            "ls": ("ls", spec), "prune": ("prune", spec, "--keep-last", "1")}[command]
    code, out, err = run(*args)
    line = error_line(code, err, expected_code=2)
    assert line == (f"Error: {spec!r} is a web address but not a Google Drive link; use "
                    "drive:a/b/c.zip, drive:id:<ID>[:<RESOURCE_KEY>], drive:shared/<shared "
                    "drive>/a/b, drive:shared-with-me/<name>/a or a Drive sharing link, or a "
                    "local path")
    assert not (tmp_path / "https:").exists() and not (tmp_path / "http:").exists()
    assert emulator.requests == []


# --------------------------------------------------------------------------- shared drives

def test_a_folder_shortcut_in_a_shared_drive_to_a_folder_elsewhere_is_followed(
        emulator, env, tmp_path):
    """A shortcut in a shared drive to a folder in My Drive (or in another shared drive):
    listing its target restricted to the shared drive (corpora=drive) finds nothing, so `ls`
    showed it empty, a folder pull left its files out with exit 0, and every push into it
    made one more folder of the same name and sent every file again."""
    team = emulator.add_shared_drive("Team")
    other = emulator.add_shared_drive("Other")
    mine = emulator.add_folder("MyData")
    emulator.add_file("MyData/a.txt", b"a")
    emulator.add_shortcut("course/mine", mine, drive_id=team)
    theirs = emulator.add_folder("odata", drive_id=other)
    emulator.add_file("odata/b.txt", b"b", drive_id=other)
    emulator.add_shortcut("course/other", theirs, drive_id=team)
    emulator.add_file("course/c.txt", b"c", drive_id=team)
    code, out, err = run("ls", "drive:shared/Team/course/mine")
    assert code == 0 and out.split()[-1:] == ["a.txt"], (out, err)
    code, _, err = run("pull", "-q", "drive:shared/Team/course", str(tmp_path / "d"))
    assert code == 0, err
    assert _tree(tmp_path / "d" / "course") == {"mine/a.txt": b"a", "other/b.txt": b"b",
                                                "c.txt": b"c"}
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "x.txt").write_bytes(b"x")
    for _ in range(3):
        code, _, err = run("push", str(logs), "drive:shared/Team/course/mine/run")
        assert code == 0, err
    assert len(_live(emulator, "run")) == 1
    assert len(_live(emulator, "x.txt")) == 1
    assert emulator.find("MyData/run/x.txt") is not None


def test_a_contributor_replacing_a_checkpoint_in_a_shared_drive_leaves_one_copy(
        emulator, env, tmp_path):
    """A Contributor (writer) of a shared drive may add files but neither trash nor delete
    them. Every push of a changed checkpoint uploaded a new copy, then failed to remove the
    old one: one more full checkpoint on the shared drive per push, without end."""
    team = emulator.add_shared_drive("Team", role="writer")
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(3):
        (logs / "last.pt").write_bytes(bytes([i]) * (10 + i))
        code, _, err = run("push", str(logs), "drive:shared/Team/run")
        assert code == 0, err
    copies = _live(emulator, "last.pt")
    assert len(copies) == 1 and copies[0]["driveId"] == team
    assert emulator.read_bytes(copies[0]["id"]) == bytes([2]) * 12


def test_a_contributor_pruning_a_shared_drive_is_told_which_role_removes(emulator, env,
                                                                         tmp_path):
    """Neither delete nor trash is allowed to a Contributor: the error said "check that this
    account can access the file (sharing settings, shared drive membership)", which it can;
    what it lacks is a role. Nothing is removed."""
    team = emulator.add_shared_drive("Team", role="writer")
    for i in range(1, 4):
        emulator.add_file(f"run/epoch_{i:03d}.pt", bytes([i]) * 10, drive_id=team)
    code, _, err = run("prune", "drive:shared/Team/run", "--keep-last", "1")
    line = error_line(code, err)
    assert line == ("Error: drive:shared/Team/run/epoch_001.pt cannot be removed: in a shared "
                    "drive, moving an item to the trash needs the Content manager role "
                    "(fileOrganizer) and deleting it the Manager role (organizer), and this "
                    "account has neither. Ask a Manager of the shared drive for one, or keep "
                    "retention (--keep-last, --max-bytes...) off for this folder.")
    assert len([f for f in emulator.files() if f["title"].endswith(".pt")
                and not f["labels"]["trashed"]]) == 3
