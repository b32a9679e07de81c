"""attackout38: a *shortcut* inside a folder ``push --delete`` removes is no second parent:
the trash of the folder takes the shortcut, never what it leads to. ``runs/old/Photos`` is a
shortcut to ``drive:Photos``: ``old`` goes whole (no "--delete kept" line, no "not deleted"),
``drive:Photos`` and its photo stay.

Through the real stack (the CLI in-process, PyDrive2, the emulator over HTTP). No sleeps."""
from __future__ import annotations

from _cli import run
from test_outside38_delete import _ids, _src, _trashed


def test_a_shortcut_to_a_folder_outside_dest_goes_with_its_folder(emulator, local_state,
                                                                  drive_env, tmp_path):
    emulator.add_file("runs/old/notes.txt", b"old\n")
    emulator.add_file("Photos/pic.jpg", b"\xff\xd8 a photo\n")
    emulator.add_shortcut("runs/old/Photos", emulator.find("Photos")["id"])
    ids = _ids(emulator, "Photos", "Photos/pic.jpg", "runs/old", "runs/old/notes.txt")
    emulator.clear_requests()

    code, _, err = run("push", str(_src(tmp_path)), "drive:runs", "--delete")

    assert code == 0, err
    assert "--delete kept" not in err and "not deleted" not in err, err
    assert _trashed(emulator, ids) == {"Photos": False, "Photos/pic.jpg": False,
                                       "runs/old": True, "runs/old/notes.txt": True}, err
