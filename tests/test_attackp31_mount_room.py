"""Attacks on retention into a Google Drive mount (attackp31). A mount shows Drive's quota
as its free space (``df /content/drive``: DriveFS, google-drive-ocamlfuse), so a push there
with a policy that found the mount short of room pruned first, before the new checkpoint
was written: the deletion reached Drive, and a runtime that ended then left Drive with
neither (the hold-back of retention into a mount covered only the pruning after the push)."""
from __future__ import annotations

from _cli import run
from _drivemount import working_drive_mount  # noqa: F401 (fixture)


def test_a_mount_short_of_room_prunes_nothing_before_the_new_checkpoint(
        local_state, tmp_path, working_drive_mount):
    mount = working_drive_mount
    logs = tmp_path / "logs"
    logs.mkdir()
    dest = mount.point / "MyDrive" / "logs"
    (logs / "epoch_001.pt").write_bytes(b"one" * 4000)
    code, _, err = run("push", str(logs), str(dest), "--keep-last", "1")
    assert code == 0, err
    mount.flush()                                      # epoch 1 is on Drive
    (logs / "epoch_002.pt").write_bytes(b"two" * 4000)
    mount.free = 8192                                  # Drive nearly full, as df shows it

    code, _, err = run("push", str(logs), str(dest), "--keep-last", "1")
    mount.send(lambda path: not path.endswith("epoch_002.pt"))   # what reached Drive
    mount.disconnect()                                 # the runtime ends

    assert "MyDrive/logs/epoch_001.pt" in mount.on_drive          # was: pruned first
    assert code == 1, err
    assert f"retention deletes nothing in {dest}: it is inside the Google Drive mount " \
        f"{mount.point}" in err, err
    assert "Not enough Drive storage for 1 file(s) into " in err, err
    assert "pruning first" not in err, err
