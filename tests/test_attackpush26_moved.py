"""push_watch.check_folders against folders a push writes into that it reached through a
folder shortcut inside DEST (`DEST/data` a shortcut to a folder elsewhere): the target's own
parent and title are not the path's, and nothing moved."""
from __future__ import annotations

import hashlib
import logging

from _drive_state import live_md5s

MOVED = "was moved or renamed on Drive while this push wrote into it"


def test_no_word_for_a_subfolder_reached_through_a_shortcut_in_dest(emulator, drive_env,
                                                                   local_state, caplog):
    from drivestage.upload_tree import push

    target = emulator.add_folder("elsewhere/real-name")
    emulator.add_folder("runs/a")
    emulator.add_shortcut("runs/a/data", target)
    src = local_state / "run"
    (src / "data").mkdir(parents=True)
    (src / "top.txt").write_bytes(b"top")
    (src / "data" / "f.txt").write_bytes(b"f")
    caplog.set_level(logging.WARNING)
    push(str(src), "drive:runs/a", jobs=1)
    assert live_md5s(emulator, "elsewhere/real-name") == {
        "f.txt": [hashlib.md5(b"f").hexdigest()]}
    assert MOVED not in caplog.text, caplog.text


def test_no_word_for_a_subfolder_with_two_parents(emulator, drive_env, local_state, caplog):
    """A folder with two parents (made before Drive's single-parent rule of 2020, still
    there in old accounts), one of them DEST: its first parent is the other folder. The
    push said `drive:runs/a/sub was moved or renamed on Drive while this push wrote into it
    (it is now drive:other/sub); … The next push makes drive:runs/a/sub anew and sends
    everything to it again`: nothing moved, and the next push sends nothing again."""
    from drivestage.upload_tree import push

    dest = emulator.add_folder("runs/a")
    sub = emulator.add_folder("other/sub")
    emulator.store.update_meta(sub, {}, add_parents=[dest])
    src = local_state / "run"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.txt").write_bytes(b"f")
    (src / "top.txt").write_bytes(b"t")
    caplog.set_level(logging.WARNING)
    push(str(src), "drive:runs/a", jobs=1)
    assert MOVED not in caplog.text, caplog.text
    assert live_md5s(emulator, "other/sub") == {"f.txt": [hashlib.md5(b"f").hexdigest()]}
    assert push(str(src), "drive:runs/a", jobs=1).uploaded == []
