"""retain47: ``push --delete`` never removes the store's newest verified checkpoint
(:func:`drivestage.pruning.newest_verified_ids`). It read the listing the push took, and a
listing that lags (Drive's are eventually consistent) that left the checkpoint's sidecar out
showed that checkpoint unverified: --delete removed it. Where the new checkpoint's sidecar was
then left for the next push (the checkpoint saved again while it was sent), Drive held no
verified checkpoint at all, exit 0."""
from __future__ import annotations

import os

import pytest

from _checkpoints import md5, sidecar_json
from _cli import run
from _drive_state import live_md5s
from _proxy import Reply
from test_attackpush45_resaved import _verified


@pytest.mark.parametrize("run_name", [None, "r1"])
def test_push_delete_under_a_lagging_listing_keeps_the_only_verified_checkpoint(
        emulator, penv, proxy, tmp_path, run_name):
    old = os.urandom(3000)
    emulator.add_file("runs/a/epoch_001.pt", old)
    emulator.faults.lag_listing(created=50, titles=r"\.json$")
    emulator.add_file("runs/a/epoch_001.json", sidecar_json(1, old, run=run_name))
    src = tmp_path / "run"
    src.mkdir()
    new = os.urandom(3000)
    (src / "epoch_002.pt").write_bytes(new)
    (src / "epoch_002.json").write_bytes(sidecar_json(2, new, run=run_name))

    def save_again(status: int, headers: dict, body: bytes) -> Reply:
        with open(src / "epoch_002.pt", "ab") as fh:
            fh.write(b"x" * 500)
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/", save_again, times=1)
    code, _, err = run("push", str(src), "drive:runs/a", "--delete", "--jobs", "1")
    emulator.faults.lag_listing()
    assert code == 0, err
    assert "epoch_002.json changed while the push ran" in err, err
    live = live_md5s(emulator, "runs/a")
    assert live.get("epoch_001.pt") == [md5(old)], (live, err)
    assert _verified(emulator) == {"epoch_001.pt"}, (live, err)


def test_push_delete_keeps_a_checkpoint_another_machine_is_still_sending(
        emulator, penv, tmp_path):
    """Machine B sent epoch_005.pt and its sidecar is on its way; machine A, behind (its
    newest is epoch_004), pushes with --delete and no retention policy: B's checkpoint is not
    local, and --delete removed it (only a listed sidecar spared a checkpoint)."""
    src = tmp_path / "run"
    src.mkdir()
    four, five = os.urandom(3000), os.urandom(3000)
    (src / "epoch_004.pt").write_bytes(four)
    (src / "epoch_004.json").write_bytes(sidecar_json(4, four))
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    emulator.add_file("runs/a/epoch_005.pt", five)     # B's, its sidecar still on its way
    code, _, err = run("push", str(src), "drive:runs/a", "--delete")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {
        "epoch_004.pt": [md5(four)], "epoch_004.json": [md5(sidecar_json(4, four))],
        "epoch_005.pt": [md5(five)]}, err


def test_push_delete_removes_checkpoints_without_sidecars_once_one_is_verified(
        emulator, penv, tmp_path):
    """What --delete now spares converges: checkpoints of an older tool, without sidecars,
    stay while no sidecar is listed (any may be the newest verified, its sidecar not shown
    yet), and go with the next push, once the pair it sent is listed and newer."""
    for n in (1, 2):
        emulator.add_file(f"runs/a/epoch_00{n}.pt", os.urandom(2000))
    src = tmp_path / "run"
    src.mkdir()
    new = os.urandom(3000)
    (src / "epoch_003.pt").write_bytes(new)
    (src / "epoch_003.json").write_bytes(sidecar_json(3, new))
    code, _, err = run("push", str(src), "drive:runs/a", "--delete")
    assert code == 0, err
    assert sorted(live_md5s(emulator, "runs/a")) == [
        "epoch_001.pt", "epoch_002.pt", "epoch_003.json", "epoch_003.pt"], err
    code, _, err = run("push", str(src), "drive:runs/a", "--delete")
    assert code == 0, err
    assert live_md5s(emulator, "runs/a") == {"epoch_003.pt": [md5(new)],
                                             "epoch_003.json": [md5(sidecar_json(3, new))]}
