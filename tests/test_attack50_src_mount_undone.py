"""attack50: SRC on a mount that is undone, known from a folder of SRC remembered on it.

mount50 notes the mount each remembered folder was on. A folder of SRC that read EIO while
SRC's own mount lived (a flaky USB stick, a stale NFS handle, one FUSE folder failing) is
noted on SRC's mount. Once that mount is undone, SRC is its bare mount point (the disk
beneath): the push kept the remembered folder (gone, its mount not mounted) but pushed the
rest of SRC as it read, so ``--delete`` trashed every other copy the run had on Drive (on
main exit 1, yet "2 deleted"). Now refused as mount50 refuses SRC itself so found (``SRC …
holds what is on the disk beneath …``, nothing pushed), until the mount is back or
``--emptied SRC`` says so.

The memory as a push writes it for that folder (``_change``: the folder, its errno, the
mount point it was on: SRC), the real mount table (SRC is no mount point here), the real CLI
against the emulator."""
from __future__ import annotations

import errno

from _cli import run
from _messages import error_line
from test_pushread48_unread import live
from test_pushremount49_memory import _memory, _memory_of_this_process_none  # noqa: F401

ON_DRIVE = {"a.txt": b"a", "b.txt": b"b", "sub/s.txt": b"s"}


def test_src_whose_own_mount_is_undone_is_not_pushed(emulator, drive_env, local_state,
                                                      tmp_path):
    from drivestage import unread_memory

    src = tmp_path / "src"
    src.mkdir()   # (the bare mount point: the stick not mounted after a reboot)
    for rel, data in ON_DRIVE.items():
        emulator.add_file(f"runs/x/{rel}", data)
    sub = str(src / "sub")
    unread_memory._change((), {sub: errno.EIO}, mounts={sub: {"mount": str(src)}})
    code, _out, err = run("push", str(src), "drive:runs/x", "--delete")
    assert code == 1, err
    assert error_line(err) == (
        f"Error: SRC {src} holds what is on the disk beneath: the mount at {src} that {sub} "
        "was on when the last push could not read it (Input/output error) is not mounted "
        "now. Nothing was pushed; "   # (mount51: the folder it could not read, named)
        f"mount {src} again, then push again; if its copies on Drive should go, push once "
        f"with --emptied {src}"), err
    assert live(emulator) == ON_DRIVE
    code, _out, err = run("push", str(src), "drive:runs/x", "--delete", "--emptied", str(src))
    assert code == 0, err
    assert live(emulator) == {}
    assert _memory(tmp_path) == {}
