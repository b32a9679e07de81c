"""`push --delete` and `prune` into a Google Drive mount (mount31): each deletion there
reached Drive before the files the mount had not sent yet (DriveFS sends a small deletion
before a big upload), so a runtime or mount that ended between left Drive without the
checkpoint (tests/test_mount31_room.py for the room a push makes; session 30 for
retention)."""
from __future__ import annotations

from _cli import run
from _drivemount import working_drive_mount  # noqa: F401 (fixture)
from _messages import renders, shown

SIZE = 40_000
DELETE = ("--delete removes nothing from …: it is inside the Google Drive mount …, and Drive "
          "may not have what replaced those files yet (DriveFS uploads it later, a deletion "
          "first); push to … --delete instead")
PRUNE = ("prune deletes nothing in …: it is inside the Google Drive mount …, and Drive may "
         "not have the newest checkpoints yet (DriveFS uploads them later, a deletion "
         "first); prune … instead (--dry-run shows the plan here)")


@renders(DELETE)
def test_push_delete_into_a_drive_mount_removes_nothing_and_says_so_once(
        local_state, tmp_path, working_drive_mount):
    """The trainer's keep_local removed epoch 1 once epoch 2 was written; `push
    --delete-permanently` then removed epoch 1 from the mount, and DriveFS sent that before
    epoch 2. (`--delete` moved it into the mount's `.trash` folder, which Drive kept.)"""
    mount = working_drive_mount
    logs, dest = tmp_path / "logs", mount.point / "MyDrive" / "logs"
    logs.mkdir()
    (logs / "epoch_001.pt").write_bytes(b"1" * SIZE)
    code, _, err = run("push", str(logs), str(dest), "--delete-permanently")
    assert code == 0, err
    mount.flush()                                       # epoch 1 is on Drive
    (logs / "epoch_001.pt").unlink()
    (logs / "epoch_002.pt").write_bytes(b"2" * SIZE)

    code, _, err = run("push", str(logs), str(dest), "--delete-permanently")
    again = run("push", str(logs), str(dest), "--delete-permanently")
    mount.send(lambda path: not path.endswith("epoch_002.pt"))   # the deletion, not the upload
    mount.disconnect()                                  # the runtime ends

    assert mount.on_drive.get("MyDrive/logs/epoch_001.pt") == b"1" * SIZE   # was: gone
    assert code == 0, err
    line = f"--delete removes nothing from {dest}: it is inside the Google Drive mount " \
           f"{mount.point}, and Drive may not have what replaced those files yet (DriveFS " \
           "uploads it later, a deletion first); push to drive:logs --delete instead"
    assert line in err, err
    shown(DELETE, err)
    assert again[0] == 0 and "--delete removes nothing" not in again[2], again   # said once


@renders(PRUNE)
def test_prune_in_a_drive_mount_deletes_nothing_and_names_the_drive_path(
        local_state, tmp_path, working_drive_mount):
    mount = working_drive_mount
    logs, dest = tmp_path / "logs", mount.point / "MyDrive" / "runs" / "a"
    logs.mkdir()
    for n in (1, 2):
        (logs / f"epoch_00{n}.pt").write_bytes(bytes([n]) * SIZE)
    code, _, err = run("push", str(logs), str(dest))
    assert code == 0, err                               # epoch 2 still in DriveFS's cache

    code, out, err = run("prune", str(dest), "--keep-last", "1")
    assert code == 2, err
    assert err.strip().splitlines()[-1] == (
        f"Error: prune deletes nothing in {dest}: it is inside the Google Drive mount "
        f"{mount.point}, and Drive may not have the newest checkpoints yet (DriveFS uploads "
        "them later, a deletion first); prune drive:runs/a instead (--dry-run shows the "
        "plan here)"), err
    shown(PRUNE, err)
    assert sorted(p.name for p in dest.iterdir()) == ["epoch_001.pt", "epoch_002.pt"]
    code, out, err = run("prune", str(dest), "--keep-last", "1", "--dry-run")
    assert code == 0, err
    assert "epoch_001.pt" in out and "Dry run: nothing was deleted." in err
    assert sorted(p.name for p in dest.iterdir()) == ["epoch_001.pt", "epoch_002.pt"]
