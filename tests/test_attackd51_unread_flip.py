"""attackd51: an ``unread.json`` that could not be read when the push read it, readable by
the time ``push --delete`` checked it (unread_guard, the lead's option a+b).

The push reads the memory as it walks SRC (``unread_memory.empty_again``: a folder a push
could not read that reads empty now is an unmounted mount point) and checked that the memory
can be read only later, once DEST's lock was held (``unread_guard.check_readable``). Made
readable in between (the user's ``sudo chown``, as the refusal asks, while a mirror's or
another terminal's push walks), the walk had taken it as none, the check passed, and the
``--delete`` trashed what Drive held under the stopped mount (exit 0 on main 136c4bb2:
``mnt/m.txt`` trashed). Now the memory is checked before the walk reads it too: unreadable
then, the push is refused before anything is sent or deleted.
The change is made as the walk's read of the memory returns (a wrap of ``empty_again``);
the push runs in a forked child without root's reads (tests/_no_root_reads.py).
"""
from __future__ import annotations

import os
import sys

import pytest

from _cli import run
from _messages import error_line
from _no_root_reads import in_a_child
from test_pushread48_unread import live
from test_attack51_unread_unreadable import refused_line, unreadable_memory_of_a_stopped_mount
from test_pushremount49_memory import _memory_of_this_process_none  # noqa: F401


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="capabilities: Linux")
def test_a_memory_made_readable_after_the_walk_read_it_does_not_let_delete_through(
        emulator, drive_env, local_state, tmp_path):
    memory = unreadable_memory_of_a_stopped_mount(emulator, tmp_path)

    def push() -> list:
        from drivestage import unread_memory

        walked = unread_memory.empty_again

        def then_readable(*args, **kwargs):
            try:
                return walked(*args, **kwargs)
            finally:
                os.chmod(memory, 0o600)   # (made readable as the walk's read returns)
        unread_memory.empty_again = then_readable
        return list(run("push", str(tmp_path / "src"), "drive:runs/x", "--delete"))

    code, _out, err = in_a_child(push)
    assert live(emulator) == {"a.txt": b"a", "mnt/m.txt": b"mounted"}, err
    assert code == 1 and error_line(err) == refused_line(memory), err
