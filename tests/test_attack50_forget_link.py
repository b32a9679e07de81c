"""attack50: ``drivestage unread forget`` of a folder a push reached through a link.

A push of SRC given through a link (``~/runs`` -> ``/scratch/runs``) remembers a folder it
could not read by both its names, as given and with the links resolved (attackint49), and
finds it by either. ``unread forget`` named by the real path (what ``realpath``, ``df`` or the
mount table show) forgot only that name: it said ``forgot …``, and the next push through the
link still found the record by the other, and refused the folder the user had just said was
emptied on purpose (exit 1 at every push of a mirror or trainer, for good). Now a record
whose own links resolve to a name given is forgotten too.

The real CLI against the emulator; the memory written as a push through the link writes it
(both names, the mount noted and not mounted now)."""
from __future__ import annotations

import errno

from _cli import run
from test_pushread48_unread import live
from test_pushremount49_memory import _memory, _memory_of_this_process_none  # noqa: F401


def test_forget_by_the_real_path_forgets_the_record_made_through_a_link(
        emulator, drive_env, local_state, tmp_path):
    from drivestage import unread_memory

    real = tmp_path / "scratch" / "src"
    (real / "mnt").mkdir(parents=True)   # (the bare mount point: the mount gone for good)
    (real / "a.txt").write_bytes(b"a")
    (tmp_path / "runs").symlink_to(tmp_path / "scratch")
    given = tmp_path / "runs" / "src"
    emulator.add_file("runs/x/a.txt", b"a")
    emulator.add_file("runs/x/mnt/m.txt", b"mounted, old")
    keys = unread_memory._keys(str(given / "mnt"))
    assert keys == [str(given / "mnt"), str(real / "mnt")]
    unread_memory._change((), dict.fromkeys(keys, errno.ENOTCONN),
                          mounts=dict.fromkeys(keys, {"mount": str(real / "mnt")}))
    code, out, err = run("unread", "forget", str(real / "mnt"))
    assert code == 0 and out.startswith("forgot "), (out, err)
    assert run("unread", "list")[1] == "no folder is remembered as unread\n"
    code, _out, err = run("push", str(given), "drive:runs/x", "--delete")
    assert code == 0, err
    assert live(emulator) == {"a.txt": b"a"}
    assert _memory(tmp_path) == {}
