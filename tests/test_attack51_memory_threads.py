"""attack51: two pushes in one process (a trainer's two ``CheckpointSync`` mirrors, a
notebook's push beside a mirror) while ``unread.json`` cannot be written.

The memory is then held in this process only (``unread_memory._here``), one dict both
threads use: a push's read went over it while the other's change added or removed a folder,
and ended in ``RuntimeError: dictionary changed size during iteration`` (a loop of two
threads found it in ~300 reads of 2,000 records). Deterministic here: a trace function makes
the other thread's change happen at the reading loop's first step (as a thread switch there
would)."""
from __future__ import annotations

import errno
import sys

from test_pushremount49_memory import _memory_of_this_process_none  # noqa: F401


def test_a_read_of_the_memory_held_in_process_while_another_push_changes_it(local_state):
    from drivestage import unread_memory

    (local_state / "state").mkdir()
    (local_state / "state" / "unread.json").mkdir()   # (cannot be written: held in process)
    unread_memory._change((), {f"/p/{i}": errno.ENOTCONN for i in range(3)})
    assert len(unread_memory._read()) == 3   # (held in this process)
    changed: list = []

    def other_push(frame, event, arg):
        if frame.f_code is unread_memory._read.__code__ and event == "line" and not changed \
                and "path" in frame.f_locals:   # (inside the loop over the records)
            changed.append(1)
            unread_memory._change((), {"/p/other": errno.ENOTCONN})
        return other_push

    before = sys.gettrace()
    sys.settrace(lambda frame, event, arg: other_push if frame.f_code is
                 unread_memory._read.__code__ else None)
    try:
        got = unread_memory._read()
    finally:
        sys.settrace(before)
    assert changed
    assert set(got) >= {"/p/0", "/p/1", "/p/2"}
    assert len(unread_memory._read()) == 4
