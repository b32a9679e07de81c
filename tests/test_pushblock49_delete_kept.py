"""``push --delete`` where ``--delete`` itself keeps the folder at a local file's name
(``--protect`` names it; a run folder, filtered out, also in a folder outside DEST): before,
the push stopped before a byte was sent, exit 2 (attack46, pushshared48 "Left"). Now that
name waits like any name a folder holds (name_blocked): everything else is sent, the rest of
``--delete`` is done, one line names the file and the folder, exit 1. The plan is made again
without the waiting file: what the policy skipped for it is sent (a verified pair on Drive
before it stays even without that: checked). Real CLI against the emulator."""
from __future__ import annotations

import hashlib

from _checkpoints import save
from _cli import run
from _drive_state import live_md5s
from _envs import env  # noqa: F401  (a fixture)

T0 = 1764600000.0
KEPT = ("rename one of them (--delete keeps that folder: it is protected, a run folder, "
        "filtered out, or also in a folder outside DEST)")


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_a_folder_the_delete_keeps_holds_only_that_name(emulator, env, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    (src / "x").write_bytes(b"now a file")
    (src / "y.txt").write_bytes(b"y")
    emulator.add_file("runs/a/x/inner.txt", b"inner")
    emulator.add_file("runs/a/gone.txt", b"not in SRC")
    code, _, err = run("push", str(src), "drive:runs/a", "--delete", "--protect", "x")
    lines = err.strip().splitlines()
    assert code == 1, err
    assert lines[-1] == (
        "Error: 1 file of SRC not sent: a folder on Drive has its name (the line above names "
        "it); everything else was pushed, and nothing at that name on Drive was removed; push "
        "again once the folder is renamed"), err
    said = [ln for ln in lines if "exists and is a folder" in ln]
    assert len(said) == 1 and said[0].endswith(
        f"drive:runs/a/x exists and is a folder, not a file; {src}/x cannot be sent there: "
        f"{KEPT}"), err
    # y.txt sent, gone.txt removed by --delete, the folder and what it holds kept whole.
    assert live_md5s(emulator, "runs/a") == {"x": [None], "y.txt": [_md5(b"y")]}, err
    assert live_md5s(emulator, "runs/a/x") == {"inner.txt": [_md5(b"inner")]}, err


def test_keep_last_sends_the_checkpoint_before_the_waiting_one(
        emulator, drive_env, local_state, tmp_path):
    """``--keep-last 1`` with SRC's newest checkpoint at a protected folder's name: planned
    as sent, that one was kept and epoch_001 skipped by the policy, so nothing reached Drive
    (found with the re-plan taken out); planned again without it, epoch_001's pair is sent."""
    src = tmp_path / "run"
    first = save(str(src), "epoch_001", 1, T0)
    save(str(src), "epoch_002", 2, T0 + 60)
    emulator.add_file("runs/a/epoch_002.pt/notes.txt", b"kept")
    code, _, err = run("push", str(src), "drive:runs/a", "--delete", "--protect",
                       "epoch_002.pt", "--keep-last", "1")
    assert code == 1, err
    # epoch_002.json waits with its checkpoint; the folder is kept whole.
    assert live_md5s(emulator, "runs/a") == {**first, "epoch_002.pt": [None]}, err
    assert live_md5s(emulator, "runs/a/epoch_002.pt") == {"notes.txt": [_md5(b"kept")]}, err
