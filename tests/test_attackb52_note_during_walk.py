"""attackb52: two pushes of one SRC (a mirror's period and the trainer's hook, a cron push
and a notebook's) while a mount in it stops.

A push forgets a remembered folder it found holding something (a mount back). It reads the
memory once its walk of SRC is done, minutes after it read that folder on a large tree; a
record another push wrote meanwhile (the mount stopped since: ENOTCONN) was forgotten by a
reading older than it. Then the user undid the mount (``fusermount -u``), the next ``push
--delete`` read the empty mount point as a folder emptied, and trashed the mount's copies on
Drive (on main: exit 0, ``mnt/m.txt``, ``mnt/n.txt`` deleted). Now a push forgets only
records older than its walk.

The other push's record is written where this push's walk ends (the real walk, then the
record), as that push would have noted it: no mount needed (a record without the mount it
was on: mount50's rule, kept while the folder reads empty)."""
from __future__ import annotations

import errno

import pytest

from drivestage import push_job, unread_memory
from drivestage.errors import LocalFileError
from drivestage.upload_tree import push
from test_pushremount49_memory import _memory_of_this_process_none  # noqa: F401


def _live(emulator, top: str = "runs/x") -> set[str]:
    return {p for p in ("a.txt", "mnt/m.txt", "mnt/n.txt")
            if (f := emulator.find(f"{top}/{p}")) is not None
            and not f.get("labels", {}).get("trashed")}


def test_a_record_written_during_a_push_walk_is_not_forgotten_by_that_walk(
        emulator, store, local_state, monkeypatch):
    src = local_state / "src"
    (src / "mnt").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    (src / "mnt" / "m.txt").write_bytes(b"m")
    (src / "mnt" / "n.txt").write_bytes(b"n")
    push(str(src), "runs/x", store=store)
    mnt = str(src / "mnt")
    real, noted = push_job.walk, []

    def walk_then_another_push_notes(*args, **kwargs):
        tree = real(*args, **kwargs)   # (mnt read whole, its files in the tree)
        if not noted:   # (the mount stops now; another push's walk finds it so)
            noted.append(1)
            unread_memory._change((), {mnt: errno.ENOTCONN})
        return tree

    monkeypatch.setattr(push_job, "walk", walk_then_another_push_notes)
    push(str(src), "runs/x", store=store, delete=True)
    assert noted
    assert unread_memory._read(mine=True)[mnt]["errno"] == errno.ENOTCONN
    # The user undoes the stopped mount: the empty folder it was mounted on.
    for name in ("m.txt", "n.txt"):
        (src / "mnt" / name).unlink()
    with pytest.raises(LocalFileError, match="could not be read"):
        push(str(src), "runs/x", store=store, delete=True)
    assert _live(emulator) == {"a.txt", "mnt/m.txt", "mnt/n.txt"}
    assert set(unread_memory._read(mine=True)) == {mnt}
