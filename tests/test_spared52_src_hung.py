"""spared52: ``push --delete`` whose look at SRC again (:func:`drivestage.push_spared.
written_since`, attackb52) meets a FUSE mount in SRC that stopped answering after the walk.

That look lists the folders of SRC that hold what ``--delete`` decided to remove (a file
written there since the walk is left on Drive). It listed them in the push's own thread with
no time bound: a mount whose program hung after the walk (DriveFS under load) held the push
there until it answered, through every Ctrl-C (the kernel waits for a FUSE daemon's answer
through every signal: hang51). Now the listings wait :data:`~drivestage.push_spared.
LIST_WAIT_S` at most, in a thread of their own; what a folder that did not answer may hold
is left on Drive, said in one line; a Ctrl-C of that wait ends the push at once. Both fail
on main d0e38cf9 (the push still waits after 30 s; the KeyboardInterrupt only once the mount
answered: the bounds are for those failures only).
"""
from __future__ import annotations

import errno
import logging
import os
import signal
import threading

import pytest

from _drivemount import OPENDIR, working_drive_mount  # noqa: F401  (a fixture)

from drivestage import push_spared
from drivestage.upload_tree import push

MTIME = 1_000_000_000 * 10**9


def _remote(emulator, top: str) -> set[str]:
    """The names of the live files in the Drive folder ``top``."""
    folder = emulator.find(top)["id"]
    return {f["title"] for f in emulator.files() if not f.get("labels", {}).get("trashed")
            and any(p["id"] == folder for p in f.get("parents", ()))}


def _left(src, wait: float) -> str:
    return (f"left drive:runs/drive/MyDrive/ds/gone.txt on the store: SRC's folder "
            f"{src}/drive/MyDrive/ds could not be listed again (it failed, or gave no answer "
            f"within {wait:g} s: a mount that stopped?), so --delete cannot tell whether it "
            "holds it; a push that reads it decides")


def _pushed(emulator, store, mount, src) -> None:
    """SRC/drive/MyDrive/ds/a.txt pushed to drive:runs; gone.txt beside it on Drive alone
    (what ``--delete`` decides to remove)."""
    mount.change_on_drive("MyDrive/ds/a.txt", b"a" * 1000, MTIME)
    mount.catch_up()
    push(str(src), "runs", store=store)
    emulator.add_file("runs/drive/MyDrive/ds/gone.txt", b"only on Drive")


def test_a_push_delete_leaves_what_a_hung_folder_of_src_may_hold_and_ends(
        emulator, store, local_state, working_drive_mount, monkeypatch, caplog):
    mount = working_drive_mount   # (at tmp_path/content/drive: SRC is tmp_path/content)
    src = local_state / "content"
    _pushed(emulator, store, mount, src)
    real = push_spared.written_since

    def hung_after_the_walk(*args):
        mount.hang()   # (every call into the mount waits from now on, until answer())
        return real(*args)

    monkeypatch.setattr(push_spared, "written_since", hung_after_the_walk)
    monkeypatch.setattr(push_spared, "LIST_WAIT_S", 0.2)
    caplog.set_level(logging.INFO, "drivestage.upload_tree")
    results = []
    pusher = threading.Thread(target=lambda: results.append(
        push(str(src), "runs", store=store, delete=True)), daemon=True)
    pusher.start()
    try:
        pusher.join(30)   # (the bound: met on main only)
        ended = not pusher.is_alive()
        still_hung = not mount.answering.is_set()
    finally:
        mount.answer()
        pusher.join(30)
    assert (ended, still_hung) == (True, True)
    assert results[0].deleted == []
    assert _left(src, 0.2) in caplog.messages
    assert _remote(emulator, "runs/drive/MyDrive/ds") == {"a.txt", "gone.txt"}


def test_ctrl_c_while_a_folder_of_src_hangs_after_the_walk_ends_the_push_at_once(
        emulator, store, local_state, working_drive_mount, monkeypatch):
    """The Ctrl-C comes as the listing's first call reaches the hung mount; the wait's own
    bound is far off. On main the push's thread is in the kernel's wait, which no signal
    breaks: the KeyboardInterrupt came only once the mount answered (the test's watchdog,
    20 s: a failure's bound only)."""
    mount = working_drive_mount
    src = local_state / "content"
    _pushed(emulator, store, mount, src)
    real, sent = push_spared.written_since, []

    def ctrl_c_at_the_first_call(opcode: int) -> None:
        if not sent:
            sent.append(opcode)
            os.kill(os.getpid(), signal.SIGINT)

    def hung_after_the_walk(*args):
        mount.hang()
        mount.arriving = ctrl_c_at_the_first_call
        return real(*args)

    monkeypatch.setattr(push_spared, "written_since", hung_after_the_walk)
    monkeypatch.setattr(push_spared, "LIST_WAIT_S", 120.0)
    watchdog = threading.Timer(20, mount.answer)
    watchdog.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            push(str(src), "runs", store=store, delete=True)
        still_hung = not mount.answering.is_set()
    finally:
        watchdog.cancel()
        mount.answer()
    assert sent and still_hung
    assert _remote(emulator, "runs/drive/MyDrive/ds") == {"a.txt", "gone.txt"}


def test_a_push_delete_leaves_what_a_folder_of_src_that_fails_to_list_may_hold(
        emulator, store, local_state, working_drive_mount, monkeypatch, caplog):
    """A folder of SRC whose listing fails after the walk (EIO: a mount that broke) holds
    what it may: left, as the walk leaves what it cannot read (main: gone.txt trashed)."""
    mount = working_drive_mount
    src = local_state / "content"
    _pushed(emulator, store, mount, src)
    real = push_spared.written_since

    def failing_after_the_walk(*args):
        mount.fail[OPENDIR] = errno.EIO
        return real(*args)

    monkeypatch.setattr(push_spared, "written_since", failing_after_the_walk)
    caplog.set_level(logging.INFO, "drivestage.upload_tree")
    result = push(str(src), "runs", store=store, delete=True)
    assert result.deleted == []
    assert _left(src, push_spared.LIST_WAIT_S) in caplog.messages
    assert _remote(emulator, "runs/drive/MyDrive/ds") == {"a.txt", "gone.txt"}
