"""``push --delete`` where ``--delete`` itself keeps the folder at a local file's name
(``--protect`` names it; a run folder, filtered out, also in a folder outside DEST): before,
the push stopped before a byte was sent, exit 2 (attack46, pushshared48 "Left"). Now that
name waits like any name a folder holds (name_blocked): everything else is sent, the rest of
``--delete`` is done, one line names the file and the folder, exit 1. The plan is made again
without the waiting file: ``--delete`` never removes the verified checkpoint the waiting one
was to replace. Real CLI against the emulator."""
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


def test_the_delete_keeps_the_verified_checkpoint_the_waiting_one_was_to_replace(
        emulator, drive_env, local_state, tmp_path):
    """Drive holds epoch_001's verified pair (SRC no longer has it) and a protected folder
    at epoch_002.pt; SRC holds epoch_002's pair. Planned as sent, epoch_002 made epoch_001
    removable by ``--delete``: Drive would hold no verified checkpoint."""
    src = tmp_path / "run"
    first = save(str(src), "epoch_001", 1, T0)
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    for name in ("epoch_001.pt", "epoch_001.json"):
        (src / name).unlink()
    save(str(src), "epoch_002", 2, T0 + 60)
    emulator.add_file("runs/a/epoch_002.pt/notes.txt", b"kept")
    code, _, err = run("push", str(src), "drive:runs/a", "--delete", "--protect",
                       "epoch_002.pt")
    assert code == 1, err
    # The waiting checkpoint's sidecar waits with it; the verified pair before it stays.
    assert live_md5s(emulator, "runs/a") == {**first, "epoch_002.pt": [None]}, err
    assert "1 file of SRC not sent" in err.strip().splitlines()[-1], err
