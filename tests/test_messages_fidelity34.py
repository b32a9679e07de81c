"""docs/troubleshooting.md: fidelity34's message, made to happen against the emulator.

* A shortcut whose target is in the trash. Drive answers a ``files.get`` of a trashed item to
  those who may see it (``labels.trashed``, ``capabilities.canUntrash`` for the caller): its
  owner, and in a shared drive its members. The line said "gone or no longer shared with you
  … ask the owner to share the item with you again", advice that does nothing; it now says
  who can take it out. Someone else's item in the trash is hidden from the user (the v2
  ``labels.trashed``: "only owners are allowed to see and untrash files";
  ``emulator.trashed_hidden_from_others``): Drive answers 404, and the line stays "gone".
See tests/_messages.py.
"""
from __future__ import annotations

import pytest

from _cli import run
from _messages import command_error as error
from _messages import renders, shown

TEACHER = "teacher@school.edu"


@pytest.fixture
def env(local_state, drive_env, fast_retries):
    return local_state


@renders("is a shortcut to an item in the trash")
def test_a_shortcut_to_a_trashed_file_says_who_can_restore_it(emulator, env, tmp_path):
    emulator.trashed_hidden_from_others = True
    mine = emulator.add_file("old/model.pt", b"m" * 10)
    emulator.add_shortcut("course/model.pt", mine)
    emulator.store.set_trashed(mine, True)
    line = error("pull", "-q", "drive:course/model.pt", str(tmp_path / "d"))
    shown("is a shortcut to an item in the trash", line)
    assert line == (f"Error: drive:course/model.pt is a shortcut to an item in the trash "
                    f"(target id {mine}); restore it from the trash, or remove the shortcut "
                    "on Drive"), line
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())

    # In a shared drive where the user is a Contributor: only a Manager can take it out.
    team = emulator.add_shared_drive("Team", role="writer")
    ours = emulator.add_file("data.zip", b"z" * 10, drive_id=team)
    emulator.add_shortcut("course/data.zip", ours)
    emulator.store.set_trashed(ours, True)
    line = error("pull", "-q", "drive:course", str(tmp_path / "d"))
    assert line == (f"Error: drive:course/data.zip is a shortcut to an item in the trash "
                    f"(target id {ours}); only a Content manager or Manager of its shared "
                    "drive can take it out: ask them to restore it, or remove the shortcut on "
                    "Drive"), line

    # Someone else's, in its owner's trash: hidden from the user (404), so "gone".
    theirs = emulator.add_file("x/notes.pdf", b"n" * 10, owner=TEACHER, shared_with_me=True)
    emulator.add_shortcut("course/notes.pdf", theirs)
    emulator.store.set_trashed(theirs, True)
    line = error("pull", "-q", "drive:course/notes.pdf", str(tmp_path / "d"))
    assert line == (f"Error: drive:course/notes.pdf is a shortcut to an item that is gone or "
                    f"no longer shared with you (target id {theirs}). Remove the shortcut on "
                    "Drive, or ask the owner to share the item with you again."), line

    # ls says which it is, beside the name.
    code, out, err = run("ls", "drive:course")
    assert code == 0, err
    marks = {line.split("  ")[-2].split()[-1]: line.split("  ")[-1] for line in out.splitlines()}
    assert marks == {"data.zip": "(a shortcut to an item in the trash)",
                     "model.pt": "(a shortcut to an item in the trash)",
                     "notes.pdf": "(a shortcut to an item that is gone or no longer shared "
                                  "with you)"}, out


@renders("is gone while this push wrote into it")
def test_a_shared_folder_its_owner_trashed_while_a_push_writes_into_it(
        emulator, env, tmp_path, monkeypatch):
    """The teacher's folder, shared with the user as editor, goes to its owner's trash after
    the push's first upload. Drive hides it from the user now (404): the push cannot tell a
    deletion from the trash, and said "deleted for good" (its docs: what was sent "went with
    it"); it now says what a 404 on someone else's folder means. One line, exit 1."""
    from _proxy import Proxy, Reply

    emulator.trashed_hidden_from_others = True
    folder = emulator.add_folder("Class", owner=TEACHER, shared_with_me="writer")
    emulator.add_shortcut("Class", folder)
    src = tmp_path / "run"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}.txt").write_bytes(b"new %d" % i)

    def trash(status: int, headers: dict, body: bytes) -> Reply:
        if status in (200, 201):
            emulator.store.set_trashed(folder, True)
        return Reply(status, headers, [body])

    with Proxy(emulator.url) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        proxy.on("PUT", r"^/upload/", trash, times=1)
        proxy.on("POST", r"^/upload/", trash, times=1)
        code, _, err = run("push", str(src), "drive:Class", "--jobs", "1")
    assert code == 1, err
    shown("is gone while this push wrote into it", err)
    assert ("drive:Class is gone while this push wrote into it: its owner deleted it or put "
            "it in the trash (Drive then hides it from you), or stopped sharing it with you; "
            "pushing again into the folder the path leads to now") in err, err
    assert "deleted for good" not in err, err
    assert err.strip().splitlines()[-1].startswith(
        "Error: drive:Class is a shortcut to an item that is gone"), err
