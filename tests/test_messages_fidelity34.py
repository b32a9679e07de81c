"""docs/troubleshooting.md: fidelity34's messages, made to happen against the emulator.

* A shortcut whose target is in the trash. Drive answers a ``files.get`` of a trashed item
  with ``labels.trashed`` and the caller's ``capabilities.canUntrash``: to its owner, to a
  shared drive's members, and to the others it was shared with ("other users can still
  access the file in the owner's trash until it's permanently deleted": the v3 File's
  ``trashed``). The line said "gone or no longer shared with you … ask the owner to share
  the item with you again", advice that does nothing; it now says who can take it out.
* Someone else's folder deleted for good while a push writes into it. The push said "was
  deleted for good" and its page that what it sent "went with it"; a folder's deletion takes
  only its owner's items (v2 ``files.delete``), and the user's go to the user's My Drive
  ("placed under its owner's root"), as the emulator now does.
See tests/_messages.py.
"""
from __future__ import annotations

from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _messages import command_error as error
from _messages import renders, shown

TEACHER = "teacher@school.edu"


@renders("is a shortcut to an item in the trash")
def test_a_shortcut_to_a_trashed_file_says_who_can_restore_it(emulator, env, tmp_path):
    mine = emulator.add_file("old/model.pt", b"m" * 10)
    emulator.add_shortcut("course/model.pt", mine)
    emulator.store.set_trashed(mine, True)
    line = error("pull", "-q", "drive:course/model.pt", str(tmp_path / "d"))
    shown("is a shortcut to an item in the trash", line)
    assert line == (f"Error: drive:course/model.pt is a shortcut to an item in the trash "
                    f"(target id {mine}); restore it from the trash, or remove the shortcut "
                    "on Drive"), line
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())

    # Someone else's, in its owner's trash: only they can take it out (Drive's canUntrash).
    theirs = emulator.add_file("x/data.zip", b"z" * 10, owner=TEACHER, shared_with_me=True)
    emulator.add_shortcut("course/data.zip", theirs)
    emulator.store.set_trashed(theirs, True)
    line = error("pull", "-q", "drive:course/data.zip", str(tmp_path / "d"))
    assert line == (f"Error: drive:course/data.zip is a shortcut to an item in the trash "
                    f"(target id {theirs}); only its owner ({TEACHER}) can take it out: ask "
                    "them to restore it, or remove the shortcut on Drive"), line

    # A shared drive's, where the user is a Contributor: only a Manager can.
    team = emulator.add_shared_drive("Team", role="writer")
    ours = emulator.add_file("notes.pdf", b"n" * 10, drive_id=team)
    emulator.add_shortcut("course/notes.pdf", ours)
    emulator.store.set_trashed(ours, True)
    line = error("pull", "-q", "drive:course/notes.pdf", str(tmp_path / "d"))
    assert line.endswith(f"(target id {ours}); only a Content manager or Manager of its "
                         "shared drive can take it out: ask them to restore it, or remove "
                         "the shortcut on Drive"), line

    # ls says so beside each name.
    code, out, err = run("ls", "drive:course")
    assert code == 0, err
    marks = {line.split("  ")[-2].split()[-1]: line.split("  ")[-1] for line in out.splitlines()}
    assert marks == dict.fromkeys(["data.zip", "model.pt", "notes.pdf"],
                                  "(a shortcut to an item in the trash)"), out


@renders("is gone while this push wrote into it")
def test_a_shared_folder_its_owner_deleted_while_a_push_writes_into_it(
        emulator, env, tmp_path, monkeypatch):
    """The teacher's folder, shared with the user as editor, is deleted for good by its
    owner right after the push's first upload. The push said "was deleted for good" (its
    page: what it sent "went with it"); what it sent is the user's, now in the user's My
    Drive, and the line says so. One line, exit 1; the bytes sent are there."""
    from _proxy import Proxy, Reply

    folder = emulator.add_folder("Class", owner=TEACHER, shared_with_me="writer")
    emulator.add_shortcut("Class", folder)
    src = tmp_path / "run"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}.txt").write_bytes(b"new %d" % i)

    def delete(status: int, headers: dict, body: bytes) -> Reply:
        if status in (200, 201):     # the first file complete (its session's one PUT)
            emulator.store.delete(folder)
        return Reply(status, headers, [body])

    with Proxy(emulator.url) as proxy:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        proxy.on("PUT", r"^/upload/", delete, times=1)
        code, _, err = run("push", str(src), "drive:Class", "--jobs", "1")
    assert code == 1, err
    shown("is gone while this push wrote into it", err)
    assert ("drive:Class is gone while this push wrote into it: its owner deleted it or "
            "stopped sharing it with you. The files this push sent there stay yours (in My "
            "Drive, if the folder was deleted); pushing again into the folder the path leads "
            "to now") in err, err
    assert "deleted for good" not in err, err
    assert err.strip().splitlines()[-1].startswith(
        "Error: drive:Class is a shortcut to an item that is gone"), err
    sent = [f for f in emulator.files() if f["title"].startswith("f")]
    assert [(f["title"], [p["id"] for p in f["parents"]]) for f in sent] == \
        [("f0.txt", [emulator.store.root_id])], sent
    assert emulator.read_bytes(sent[0]["id"]) == b"new 0"
