"""spared52: ``push --delete`` whose look at SRC again (:func:`drivestage.push_spared.
written_since`, attackb52) meets a FUSE mount in SRC that stopped answering after the walk.

That look lists the folders of SRC that hold what ``--delete`` decided to remove (a file
written there since the walk is left on Drive). It listed them in the push's own thread with
no time bound: a mount whose program hung after the walk (DriveFS under load) held the push
there until it answered, through every Ctrl-C (the kernel waits for a FUSE daemon's answer
through every signal: hang51). Now the listings wait :data:`~drivestage.push_spared.
LIST_WAIT_S` at most, in a thread of their own; what a folder that did not answer may hold
is left on Drive, said in one line. Fails on main d0e38cf9 (the push still waits after 30 s;
the bound is for that failure only: it ends at once once the mount answers).
"""
from __future__ import annotations

import logging
import threading

from _drivemount import working_drive_mount  # noqa: F401  (a fixture)

from drivestage import push_spared
from drivestage.upload_tree import push

MTIME = 1_000_000_000 * 10**9


def _remote(emulator, top: str) -> set[str]:
    """The names of the live files in the Drive folder ``top``."""
    folder = emulator.find(top)["id"]
    return {f["title"] for f in emulator.files() if not f.get("labels", {}).get("trashed")
            and any(p["id"] == folder for p in f.get("parents", ()))}


def test_a_push_delete_leaves_what_a_hung_folder_of_src_may_hold_and_ends(
        emulator, store, local_state, working_drive_mount, monkeypatch, caplog):
    mount = working_drive_mount   # (at tmp_path/content/drive: SRC is tmp_path/content)
    mount.change_on_drive("MyDrive/ds/a.txt", b"a" * 1000, MTIME)
    mount.catch_up()
    src = local_state / "content"
    push(str(src), "runs", store=store)
    emulator.add_file("runs/drive/MyDrive/ds/gone.txt", b"only on Drive")
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
    assert (f"left drive:runs/drive/MyDrive/ds/gone.txt on the store: SRC's folder "
            f"{src}/drive/MyDrive/ds could not be listed again within 0.2 s (a mount that "
            "stopped answering?), so --delete cannot tell whether it holds it; a push that "
            "reads it decides") in caplog.messages
    assert _remote(emulator, "runs/drive/MyDrive/ds") == {"a.txt", "gone.txt"}
