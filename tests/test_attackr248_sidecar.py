"""attackr248: a checkpoint's sidecar push could not read (EACCES), under ``--keep-last``:
the sidecar's name is protected, and retention keeps the older verified one, so Drive still
holds two verified checkpoints. Checked, holds (passes on 7e563002): a regression test of
retention over an unread path. The checkpoint went without its sidecar (unverified on Drive);
since pushblock49 it waits with it (a checkpoint goes only with its sidecar), said."""
from __future__ import annotations

from test_pushread48_unread import lines, live, push_unprivileged
from test_retention_runs import _save


def test_an_unread_sidecar_under_keep_last_leaves_two_verified_checkpoints(
        emulator, drive_env, local_state, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for e in (3, 4):
        _save(str(src), f"epoch_{e:03d}.pt", e, "run-A")
    code, err = push_unprivileged(emulator, str(src), "drive:runs/x")
    assert code == 0, err[-3000:]
    _save(str(src), "epoch_005.pt", 5, "run-A")
    (src / "epoch_005.json").chmod(0)
    code, err = push_unprivileged(emulator, str(src), "drive:runs/x", "--keep-last", "2")
    assert code == 1, err[-3000:]
    on = live(emulator)
    verified = [n for n in on if n.endswith(".pt") and n[:-3] + ".json" in on]
    assert sorted(verified) == ["epoch_003.pt", "epoch_004.pt"], sorted(on)
    assert "epoch_005.pt" not in on and "epoch_005.json" not in on
    assert len(lines(err)) == 2 and "epoch_005.json (Permission denied)" in lines(err)[0]
    assert "epoch_005.pt is not sent either" in lines(err)[1]
