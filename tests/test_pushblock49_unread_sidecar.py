"""A local sidecar push cannot read (EACCES) waits, and so does the checkpoint it vouches
for (a checkpoint goes only with its sidecar, lead48). Before, the checkpoint went first and
the sidecar failed at its own send: beside another run's checkpoint of the name (whose it
was never asked: other_runs.left_on_store took the failed read for "gone meanwhile") two
files of one name were left; with no copy there, it went alone, a checkpoint no sidecar
vouched for (``--delete``: the verified pair before it stayed, by the re-plan of what was
not sent). Real CLI against the emulator, the push run without the capabilities that
read everything (tests/test_pushread48_unread.py's way)."""
from __future__ import annotations

import os

from _checkpoints import save
from _drive_state import live_md5s
from _envs import env  # noqa: F401  (a fixture)
from test_pushread48_unread import lines, push_unprivileged

T0 = 1764600000.0


def _unreadable_pair(tmp_path, run: str = "run-a"):
    src = tmp_path / "run"
    save(str(src), "epoch_002", 2, T0 + 60, run=run)
    os.chmod(src / "epoch_002.json", 0)
    os.chmod(tmp_path, 0o755)
    return src


def test_an_unreadable_sidecar_never_lets_its_checkpoint_go_beside_another_runs(
        emulator, drive_env, local_state, tmp_path):
    theirs = tmp_path / "theirs"
    pair = save(str(theirs), "epoch_002", 2, T0, run="run-b")
    for name in ("epoch_002.pt", "epoch_002.json"):
        emulator.add_file(f"runs/a/{name}", (theirs / name).read_bytes())
    src = _unreadable_pair(tmp_path)
    code, err = push_unprivileged(emulator, str(src), "drive:runs/a")
    assert code == 1, err
    assert live_md5s(emulator, "runs/a") == pair, err   # run-b's pair alone, as it was
    said = lines(err)
    assert len(said) == 2, err
    assert said[0].startswith(f"ERROR drivestage.upload_tree: could not read "
                              f"{src}/epoch_002.json (Permission denied): not sent"), err
    assert said[1] == (f"ERROR drivestage.upload_tree: {src}/epoch_002.pt is not sent "
                       f"either: a checkpoint goes only with its sidecar, which could not be "
                       f"read"), err
    # (two lines above it: "the line above" was said, pull50)
    assert err.strip().splitlines()[-1] == (
        "Error: 1 path of SRC could not be read (the lines above name it): everything else "
        "was pushed, and nothing on Drive at or under it was removed or replaced; push again "
        "once it can be read"), err


def test_delete_keeps_the_verified_pair_an_unreadable_sidecars_pair_was_to_replace(
        emulator, drive_env, local_state, tmp_path):
    old = tmp_path / "old"
    first = save(str(old), "epoch_001", 1, T0)
    for name in ("epoch_001.pt", "epoch_001.json"):
        emulator.add_file(f"runs/a/{name}", (old / name).read_bytes())
    src = _unreadable_pair(tmp_path)
    code, err = push_unprivileged(emulator, str(src), "drive:runs/a", "--delete")
    assert code == 1, err
    assert live_md5s(emulator, "runs/a") == first, err   # (before: epoch_002.pt alone too)
