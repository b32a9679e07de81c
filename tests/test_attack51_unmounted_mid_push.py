"""attack51: a stopped mount undone while the push that found it is still walking.

mount50 notes, for each folder a push could not read, the mount it was on, read from the
mount table after the walk: the innermost mount point at or above the folder. A FUSE mount in
SRC whose program ended reads ENOTCONN; a user who sees that (or a script, or udisks) undoes
it while the push walks the rest of SRC (a large SRC: minutes). The table read after the walk
no longer lists it, so the folder was noted as on the disk above (always mounted), and the
rule that keeps a folder while its mount is not mounted never applied: a file written later
into the bare mount point made it "hold something", the record was forgotten and ``push
--delete`` trashed the mount's copies on Drive (exit 0), mount50's own case. A folder that
reads ENOTCONN where the folder above it read is the mount point itself: now noted so.

The race is made by the second process's step, taken at the push's read of the mount table
(``mount_table.table``, the real table read right after it)."""
from __future__ import annotations

from _drivemount import FullDriveMount
from test_pushread48_unread import live
from test_pushremount49_memory import (KEPT, _memory, _memory_of_this_process_none,  # noqa: F401
                                       _push, mounted)


def test_a_mount_undone_during_the_walk_is_noted_as_the_folders_mount(
        emulator, drive_env, local_state, tmp_path, monkeypatch, mounted: FullDriveMount):
    import socket

    from drivestage import mount_table

    real, stopped = mount_table.table, []

    def undone_first():   # (fusermount -u mnt, by another process, after the walk's look)
        if not stopped:
            stopped.append(1)
            mounted.stop()
        return real()

    mounted.disconnect()
    monkeypatch.setattr(mount_table, "table", undone_first)
    code, _out, err = _push(tmp_path)
    assert code == 1 and stopped, err
    monkeypatch.setattr(mount_table, "table", real)
    mnt = str(tmp_path / "src" / "mnt")
    assert _memory(tmp_path)[mnt][socket.gethostname()]["mount"] == mnt
    (tmp_path / "src" / "mnt" / "new.txt").write_bytes(b"beneath")   # (a program's log)
    code, _out, err = _push(tmp_path)
    assert code == 1, err
    assert f"{mnt} holds what is on the disk beneath" in err
    assert live(emulator) == KEPT
