"""walk37: a folder pull (and ``dedupe``) through folders Drive kept from before 2020's
single-parent rule ends, each folder listed once: a chain of folders with two parents is
refused at the first folder reached twice, before any download, and ``dedupe`` walks two
folders each inside the other once each (a pull of them: tests/test_messages_walk37_cycle.py).

Through the real stack (the CLI in-process, PyDrive2, googleapiclient, the emulator over
HTTP); the multi-parent folders are seeded on the emulator's store. Requests are counted
from the emulator's log. No sleeps."""
from __future__ import annotations

from _cli import run
from _liar import one_error_line
from test_walk37_delete import _cycle, _diamonds, _folder_lists


def test_a_pull_of_a_chain_of_folders_with_two_parents_lists_a_few_folders(
        emulator, local_state, drive_env, tmp_path):
    """13 levels (4,096 paths to the deepest): refused at the first folder reached twice,
    after a listing of each folder on the way to it, nothing downloaded."""
    _diamonds(emulator, 13)
    emulator.clear_requests()

    code, _, err = run("pull", "drive:runs/old", str(tmp_path / "dest"))

    line = one_error_line(code, err)
    assert "(a shortcut to it, or a folder with two parents)" in line, line
    listed = _folder_lists(emulator)
    assert max(listed.values()) == 1 and sum(listed.values()) <= 4, listed


def test_dedupe_walks_two_folders_each_inside_the_other_once(emulator, local_state, drive_env):
    a, b = _cycle(emulator)
    emulator.clear_requests()

    code, _, err = run("dedupe", "drive:runs/old")

    assert code == 0, err
    listed = _folder_lists(emulator)
    assert listed[a] <= 2 and listed[b] <= 2, listed
