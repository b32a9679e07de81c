"""attackc52: ``push --delete`` while another process holds the unread memory's lock.

Since attackb52 a push waits ``state.LOCK_WAIT_S`` (10 s) for a state file's lock and then
skips its change with a warning. For the memory of folders a push could not read
(``unread.json``: a stopped mount) the skipped change is a *note*: the push that found the
mount stopped keeps it in its own process only. While the lock's holder stays stopped
(a push Ctrl-Z'd in its read-modify-write), the next process's ``push --delete`` read the
memory without the note; the user had undone the stopped mount (``fusermount -u``), the
empty mount point read as a folder emptied, and its copies on Drive were trashed (main:
``mnt/m.txt``, ``mnt/n.txt`` deleted, exit 0). Now ``push --delete`` waits for that lock
too before it reads the memory, and past the bound refuses: nothing sent or deleted.

The holder is a forked child that takes the lock as drivestage does and stops itself
(attackb52's fixture); the other process's state by the memory of this one emptied."""
from __future__ import annotations

import errno

import pytest

from drivestage import state, unread_memory
from drivestage.errors import LocalFileError
from drivestage.upload_tree import push
from test_attackb52_state_lock import stopped_holder  # noqa: F401


def _live(emulator) -> set[str]:
    return {p for p in ("a.txt", "mnt/m.txt", "mnt/n.txt")
            if (f := emulator.find(f"runs/x/{p}")) is not None
            and not f.get("labels", {}).get("trashed")}


def _pushed_then_held(store, local_state, monkeypatch, stopped_holder):  # noqa: F811
    """SRC (``a.txt``, ``mnt/m.txt``, ``mnt/n.txt``) pushed to runs/x, then the memory's lock
    held by a stopped process (bound 0.2 s): (SRC, the memory's file, the holder)."""
    monkeypatch.setattr(state, "LOCK_WAIT_S", 0.2)
    src = local_state / "src"
    (src / "mnt").mkdir(parents=True)
    for rel in ("a.txt", "mnt/m.txt", "mnt/n.txt"):
        (src / rel).write_bytes(rel.encode())
    push(str(src), "runs/x", store=store)
    memory = unread_memory._file()
    return src, memory, stopped_holder(memory._lock().lock_file)


def test_push_delete_refuses_while_a_stopped_process_holds_the_memorys_lock(
        emulator, store, local_state, monkeypatch, stopped_holder):  # noqa: F811
    src, memory, holder = _pushed_then_held(store, local_state, monkeypatch, stopped_holder)
    mnt = str(src / "mnt")
    # A push finds the mount stopped: its note is skipped (the lock held), kept in-process.
    unread_memory._change((), {mnt: errno.ENOTCONN})
    assert mnt in unread_memory._read()
    monkeypatch.setattr(unread_memory, "_here", {})   # (the next process: no such memory,
    monkeypatch.setattr(state, "_stalled", set())     # nor a lock it waited for already)
    for name in ("m.txt", "n.txt"):   # (the user undoes the stopped mount)
        (src / "mnt" / name).unlink()
    with pytest.raises(LocalFileError) as got:
        push(str(src), "runs/x", store=store, delete=True)
    assert str(got.value) == (
        f"cannot read {memory.path} (its lock {memory._lock().lock_file} is held by another "
        "process of this machine, for 0.2 s now: one stopped (Ctrl-Z, a debugger) or stuck on "
        "a mount that does not answer? fuser -v names it): it records the folders an earlier "
        "push could not read (a stopped mount), and a note of one may be under way in that "
        "process; without it --delete could take what Drive holds under one; nothing was sent "
        "or deleted. Let that process go on (fg), or end it, then run again")
    assert _live(emulator) == {"a.txt", "mnt/m.txt", "mnt/n.txt"}
    stopped_holder.end(holder)


def test_a_note_skipped_for_a_held_lock_outlives_its_process(
        emulator, store, local_state, monkeypatch, stopped_holder):  # noqa: F811
    src, memory, holder = _pushed_then_held(store, local_state, monkeypatch, stopped_holder)
    unread_memory._change((), {str(src / "mnt"): errno.ENOTCONN})   # (skipped: held)
    stopped_holder.end(holder)   # (the holder let go, then this process ended:
    unread_memory._at_exit()     # its exit writes what it held; on main nothing did)
    monkeypatch.setattr(unread_memory, "_here", {})
    monkeypatch.setattr(state, "_stalled", set())
    for name in ("m.txt", "n.txt"):   # (the user undoes the stopped mount)
        (src / "mnt" / name).unlink()
    with pytest.raises(LocalFileError, match="could not be read"):
        push(str(src), "runs/x", store=store, delete=True)
    assert _live(emulator) == {"a.txt", "mnt/m.txt", "mnt/n.txt"}
