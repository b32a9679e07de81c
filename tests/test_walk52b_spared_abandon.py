"""walk52b: a mirror abandoned (``Mirror.abandon``) while its push's look at SRC again
(:func:`drivestage.push_spared.written_since`) waits for a FUSE mount in SRC that stopped
answering after the walk.

spared52 bounded that wait (``LIST_WAIT_S``, 10 s) and let a Ctrl-C end it; a mirror's push
runs in a thread no signal reaches, stopped by its flag (``pool.stoppable``), and the wait
did not look at it: ``abandon`` waited the bound out. Now the wait ends as the flag is set
(an echo of it: no polling), the push cut before its first removal. Here the bound is
120 s and abandon is given 10 s (a failure's bound only): on main abandon returned False,
the mirror's thread still waiting.
"""
from __future__ import annotations

import threading

from _drivemount import working_drive_mount  # noqa: F401  (a fixture)

from drivestage import push_spared
from drivestage.mirror import Mirror
from drivestage.upload_tree import push

from test_spared52_src_hung import MTIME, _remote


def test_abandon_ends_a_mirror_waiting_for_a_hung_folder_of_src(
        emulator, store, local_state, working_drive_mount, monkeypatch):
    mount = working_drive_mount   # (at tmp_path/content/drive: SRC is tmp_path/content)
    src = local_state / "content"
    mount.change_on_drive("MyDrive/ds/a.txt", b"a" * 1000, MTIME)
    mount.catch_up()
    push(str(src), "runs", store=store)
    emulator.add_file("runs/drive/MyDrive/ds/gone.txt", b"only on Drive")
    real, waiting = push_spared.written_since, threading.Event()

    def hung_after_the_walk(*args):
        mount.hang()   # (every call into the mount waits from now on, until answer())
        mount.arriving = lambda opcode: waiting.set()
        return real(*args)

    monkeypatch.setattr(push_spared, "written_since", hung_after_the_walk)
    monkeypatch.setattr(push_spared, "LIST_WAIT_S", 120.0)
    mirror = Mirror(str(src), (store, "runs"), None, delete=True)
    try:
        mirror.start()
        mirror.sync_now()
        assert waiting.wait(30)   # (the listing's first call has reached the hung mount)
        ended = mirror.abandon(10)
        still_hung = not mount.answering.is_set()
    finally:
        mount.answer()
        mirror.abandon(30)
    assert (ended, still_hung) == (True, True)
    assert isinstance(mirror.last_error, KeyboardInterrupt)   # (how abandon cuts a push)
    assert _remote(emulator, "runs/drive/MyDrive/ds") == {"a.txt", "gone.txt"}
