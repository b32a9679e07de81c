"""``push ./runs drive:runs --delete`` removes ``runs/old`` (its SRC lacks it; ``old`` and
``old/exp1`` were no run folders when listed). While the push sent its files, a run on
another machine began in ``runs/old/exp1`` through a Drive mount (its mark file
``.drivestage/run-folder`` and first checkpoint synced in). The check just before the
removal reads ``old`` alone (its properties, its own mark file), not the folders below it:
``old`` went to the trash with the run's checkpoint (``--delete-permanently``: deleted).
Found by attack36 (mountmark35 named the gap, left it)."""
from __future__ import annotations

import os

import pytest

from _cli import run
from _drive_state import live_md5s
from _liar import liar_env  # noqa: F401  (fixtures)
from _proxy import Reply


def _runs(tmp_path):
    runs = tmp_path / "runs"
    (runs / "exp2").mkdir(parents=True)
    for i in range(12):   # (enough that --delete's guard lets a folder go)
        (runs / "exp2" / f"log{i}.txt").write_text(f"{i}\n")
    return runs


@pytest.mark.parametrize("flag", ["--delete", "--delete-permanently"])
def test_a_run_a_mount_began_below_a_folder_being_removed_is_not_removed(
        emulator, proxy, liar_env, tmp_path, flag):
    emulator.add_file("runs/old/notes.txt", b"n\n")
    emulator.add_file("runs/old/exp1/notes.txt", b"m\n")
    checkpoint = os.urandom(3000)
    started: list[int] = []

    def meanwhile(status, headers, body):
        if not started:   # machine A's run in runs/old/exp1, synced by its mount
            started.append(status)
            emulator.add_file("runs/old/exp1/.drivestage/run-folder", b"")
            emulator.add_file("runs/old/exp1/epoch_001.pt", checkpoint)
            emulator.add_file("runs/old/exp1/epoch_001.json", b'{"epoch": 1}\n')
        return Reply(status, headers, [body])
    proxy.on("POST", r"uploadType=resumable", meanwhile)

    code, _, err = run("push", str(_runs(tmp_path)), "drive:runs", flag)

    assert started
    assert code == 0, err
    # The run's checkpoint pair is still on Drive, not in the trash, nor gone.
    held = live_md5s(emulator, "runs/old/exp1") or {}   # (None: trashed or deleted)
    assert {"epoch_001.pt", "epoch_001.json"} <= set(held), err
