"""trainatk47: the hidden copies of rank 0's checkpoint another machine fetches under
multi-machine DDP (``.<name>.<md5>.resume.tmp``, beside its own file of that name of other
bytes: ``trainer.chosen.ensure_local_checkpoint``) are removed once every rank has loaded.
Killed before that (a SIGKILL, a preempted VM, a rank's crash while loading), the copy stayed;
the next start, rank 0 choosing other bytes (the run went on) or this machine holding them
now, never looked at it again: a checkpoint's size left hidden in the run folder at every
such kill, never mirrored, counted by no room check. Now each fetch of rank 0's bytes removes
the copies of that name of other bytes (and what their downloads left): they are copies of
Drive's bytes, never the only one. The emulator and the real DriveStore; no torch run."""
from __future__ import annotations

import os

from test_attack_ddp19 import LOGS, _chosen_on_drive, _sidecar, _state


def _stale(folder, name: str, md5: str) -> list[str]:
    """What kills left of copies of other bytes: one fetched whole (``md5``'s), one cut
    while it was fetched (its partial download and its record)."""
    (folder / f".{name}.{md5}.resume.tmp").write_bytes(b"x" * 4096)
    side = f".{name}.{'e' * 32}.resume.tmp"   # (one killed while it was fetched)
    (folder / f".{side}.0123456789abcdef.partial").write_bytes(b"z" * 1024)
    (folder / f".{side}.0123456789abcdef.ranges").write_bytes(b"[[0, 1024]]")
    return sorted(os.listdir(folder))


def test_a_copy_left_by_a_kill_goes_at_the_next_fetch_of_other_bytes(
        emulator, drive_env, local_state, tmp_path):
    from trainer.resume import drop_side_copy, ensure_local_checkpoint

    v2, mine = _state(5, 2), _state(3, 7)
    emulator.add_file(f"{LOGS}/epoch_004.pt", v2)
    chosen = _chosen_on_drive(emulator, v2)
    folder = tmp_path / "machine-b" / "logs"
    folder.mkdir(parents=True)
    (folder / "epoch_004.pt").write_bytes(mine)
    (folder / "epoch_004.json").write_bytes(_sidecar(mine, 3))
    left = _stale(folder, "epoch_004.pt", "a" * 32)
    assert len(left) == 5
    got = ensure_local_checkpoint(str(folder / "epoch_004.pt"), chosen)
    assert open(got, "rb").read() == v2
    assert sorted(os.listdir(folder)) == sorted(
        ["epoch_004.json", "epoch_004.pt", os.path.basename(got)])   # (before: the 2 kept)
    assert (folder / "epoch_004.pt").read_bytes() == mine   # this machine's own: untouched
    drop_side_copy(got)
    assert sorted(os.listdir(folder)) == ["epoch_004.json", "epoch_004.pt"]


def test_a_copy_left_by_a_kill_goes_where_this_machine_holds_the_bytes_now(
        emulator, drive_env, local_state, tmp_path):
    """This machine's file of that name holds rank 0's bytes now (no fetch at all)."""
    from trainer.resume import ensure_local_checkpoint

    v2 = _state(5, 2)
    emulator.add_file(f"{LOGS}/epoch_004.pt", v2)
    chosen = _chosen_on_drive(emulator, v2)
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "epoch_004.pt").write_bytes(v2)
    (folder / ".best.pt.{}.resume.tmp".format("b" * 32)).write_bytes(b"y")   # (another name's)
    _stale(folder, "epoch_004.pt", "a" * 32)
    emulator.clear_requests()
    assert ensure_local_checkpoint(str(folder / "epoch_004.pt"), chosen) == \
        str(folder / "epoch_004.pt")
    assert emulator.requests == []
    assert sorted(os.listdir(folder)) == [f".best.pt.{'b' * 32}.resume.tmp", "epoch_004.pt"]
