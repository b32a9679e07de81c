"""docs/troubleshooting.md, "… is inside itself here (one of its subfolders is also its
parent, which Drive refuses to make)", as a folder pull meets it (walk37; see tests/_messages.py): two
folders each inside the other, ``runs/old/a/b`` with ``b`` a parent of ``a`` too. Before:
"… listed inside itself …: Drive never lists so: check --api-root", a server's fault, for a
tree Drive itself holds; now a line that says what the folders are and what to do, each
folder listed once, nothing downloaded."""
from __future__ import annotations

from _messages import command_error as error
from _messages import renders, shown
from test_walk37_delete import _cycle, _folder_lists

HEADING = ("the folder … is inside itself here (one of its subfolders is also its parent, "
           "which Drive refuses to make)")


@renders(HEADING)
def test_a_pull_of_two_folders_each_inside_the_other_ends_in_one_line(
        emulator, local_state, drive_env, tmp_path):
    a, b = _cycle(emulator)
    emulator.clear_requests()

    line = error("pull", "drive:runs/old", str(tmp_path / "dest"))

    shown(HEADING, line)
    assert line == ("Error: drive:runs/old/a/b/a: the folder 'a' is inside itself here "
                    "(one of its subfolders is also its parent, which Drive refuses to make): "
                    "a walk through it would never end; stopped. Leave it out (pull --exclude "
                    "'a') or move it out of its subfolder on Drive.")
    listed = _folder_lists(emulator)
    assert listed[a] == 1 and listed[b] == 1, listed
    assert not (tmp_path / "dest" / "a" / "b" / "x.txt").exists()
    assert not [r for r in emulator.requests if r.kind == "media.download"]
