"""docs/troubleshooting.md: fidelity34's message, made to happen against the emulator.

* A shortcut whose target is in the trash. Drive answers a ``files.get`` of a trashed item
  (labels.trashed true, ``capabilities.canUntrash`` for the caller): it is not gone, and no
  share was lost. The line said "gone or no longer shared with you … ask the owner to share
  the item with you again", advice that does nothing; it now says who can take it out.
See tests/_messages.py.
"""
from __future__ import annotations

import pytest

from _messages import command_error as error
from _messages import renders, shown

TEACHER = "teacher@school.edu"


@pytest.fixture
def env(local_state, drive_env, fast_retries):
    return local_state


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

    # Someone else's, trashed by its owner: only they can take it out (Drive's canUntrash).
    theirs = emulator.add_file("x/data.zip", b"z" * 10, owner=TEACHER, shared_with_me=True)
    emulator.add_shortcut("course/data.zip", theirs)
    emulator.store.set_trashed(theirs, True)
    line = error("pull", "-q", "drive:course", str(tmp_path / "d"))
    assert line == (f"Error: drive:course/data.zip is a shortcut to an item in the trash "
                    f"(target id {theirs}); only its owner ({TEACHER}) can take it out: ask "
                    "them to restore it, or remove the shortcut on Drive"), line

    # ls says which of the two it is, beside the name.
    from _cli import run

    code, out, err = run("ls", "drive:course")
    assert code == 0, err
    shown_lines = out.splitlines()
    assert [line.split("  ")[-2].split()[-1] for line in shown_lines] == \
        ["data.zip", "model.pt"], out
    assert all(line.endswith("  (a shortcut to an item in the trash)")
               for line in shown_lines), out
