"""Deletions a push, mirror or prune makes into a Google Drive mount (mount31): DriveFS sends
what is written into the mount to Drive later, a small deletion before a big upload, so an
older checkpoint deleted there before its replacement is on Drive leaves Drive, for a while,
with neither; a runtime or mount that ends then loses both (session 30 held retention's
deletions back: tests/test_messages_retention30.py). Nothing a push sees through the mount
says what Drive has."""
from __future__ import annotations

from _cli import run
from _drivemount import working_drive_mount  # noqa: F401 (fixture)

BLOCK = 4096
SIZE = 10 * BLOCK


def _epoch(logs, n: int) -> None:
    (logs / f"epoch_{n:03d}.pt").write_bytes(bytes([n]) * SIZE)


def test_room_made_in_a_drive_mount_deletes_nothing_before_the_upload(
        local_state, tmp_path, working_drive_mount):
    """`push --max-bytes` into a mount whose quota (statfs) is short pruned first: the
    oldest checkpoint went before the new one was written, and DriveFS sent that deletion
    alone before the runtime ended (the newer ones were still in its cache)."""
    mount = working_drive_mount
    logs, dest = tmp_path / "logs", mount.point / "MyDrive" / "logs"
    logs.mkdir()
    policy = ("--max-bytes", str(2 * SIZE))
    _epoch(logs, 1)
    code, _, err = run("push", str(logs), str(dest), *policy)
    assert code == 0, err
    mount.flush()                                       # epoch 1 is on Drive
    _epoch(logs, 2)
    code, _, err = run("push", str(logs), str(dest), *policy)
    assert code == 0, err                               # epoch 2 is in DriveFS's cache
    mount.capacity = 2 * SIZE + BLOCK                   # no room for a third
    _epoch(logs, 3)

    code, _, err = run("push", str(logs), str(dest), *policy)
    mount.send(lambda path: path.endswith("epoch_001.pt"))   # a deletion goes first
    mount.disconnect()                                  # the runtime ends

    assert mount.on_drive.get("MyDrive/logs/epoch_001.pt") == bytes([1]) * SIZE  # was: gone
    assert code == 1, err
    assert f"retention deletes nothing in {dest}: it is inside the Google Drive mount " \
           f"{mount.point}" in err, err
    assert "Error: Not enough Drive storage for 1 file(s) into " in err, err
