"""Retention into a Google Drive mount (mount30's open point): `push ./logs
/content/drive/MyDrive/logs --keep-last 1` (or the trainer's `drive.keep_last` with
`drive.logs` in the mount) deleted the older checkpoint in the mount as soon as the new one
was written there. DriveFS sends the small deletion before the big upload, so a runtime or
mount that ended in between left Drive with neither: a verified remote checkpoint deleted
before its replacement was on Drive. Nothing a push sees through the mount says what Drive
has, so retention there deletes nothing now, and says so once."""
from __future__ import annotations

from _cli import run
from _messages import renders, shown
from _drivemount import working_drive_mount  # noqa: F401 (fixture)


HEADING = ("retention deletes nothing in …: it is inside the Google Drive mount …, and Drive may not have t"
           "he new checkpoints yet (DriveFS uploads them later); push to … instead to prune there")


@renders(HEADING)
def test_retention_into_a_drive_mount_deletes_nothing_and_says_so(
        local_state, tmp_path, working_drive_mount):
    mount = working_drive_mount
    logs = tmp_path / "logs"
    logs.mkdir()
    dest = mount.point / "MyDrive" / "logs"
    (logs / "epoch_001.pt").write_bytes(b"one" * 1000)
    code, _, err = run("push", str(logs), str(dest), "--keep-last", "1")
    assert code == 0, err
    mount.flush()                                      # epoch 1 is on Drive
    (logs / "epoch_002.pt").write_bytes(b"two" * 1000)

    code, _, err = run("push", str(logs), str(dest), "--keep-last", "1")
    mount.send(lambda path: not path.endswith("epoch_002.pt"))   # the deletion, not the upload
    mount.disconnect()                                 # the runtime ends

    assert code == 0, err
    assert "MyDrive/logs/epoch_001.pt" in mount.on_drive          # was: deleted, Drive had none
    assert f"retention deletes nothing in {dest}: it is inside the Google Drive mount " \
           f"{mount.point}, and Drive may not have the new checkpoints yet (DriveFS uploads " \
           "them later); push to drive:logs instead to prune there" in err, err
    shown(HEADING, err)
