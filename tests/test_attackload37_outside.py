"""attackload37: walk37 leaves whole a folder ``push --delete`` removes where it also holds
(a second parent, kept from before 2020) an item SRC has or the push keeps: the trash takes
everything a folder holds. Its rule knows only the ids the push listed in DEST; an item of
the user's *outside* DEST given the same second parent (``drive:Photos``, also inside
``drive:runs/old``) is trashed with ``runs/old``: a push into ``drive:runs`` that exits 0
takes a folder it was never pointed at.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP, whose trash
takes a folder's descendants as Drive's does); the second parent seeded on the emulator's
store, as tests/test_attacksync36_walk.py does. No sleeps."""
from __future__ import annotations

from _cli import run
from test_attacksync36_walk import _parents


def test_a_folder_outside_dest_inside_a_removed_one_too_is_left(
        emulator, local_state, drive_env, tmp_path):
    src = tmp_path / "runs"
    (src / "exp2").mkdir(parents=True)
    (src / "exp2" / "log.txt").write_text("1\n")
    emulator.add_folder("runs/old")
    emulator.add_file("runs/old/notes.txt", b"old\n")
    emulator.add_file("Photos/pic.jpg", b"\xff\xd8 a photo\n")
    _parents(emulator, "Photos", "runs/old")
    photos, pic = emulator.find("Photos")["id"], emulator.find("Photos/pic.jpg")["id"]

    code, _, err = run("push", str(src), "drive:runs", "--delete")

    assert code == 0, err
    assert [emulator.store.get(i)["trashed"] for i in (photos, pic)] == [False, False], err
