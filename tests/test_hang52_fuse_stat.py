"""Ctrl-C while the main thread's stat of a local SRC waits on a hung FUSE mount: the pull's
``resolve`` of SRC, after the command's first look at it (open_store, left by a Ctrl-C since
streams52) got its answers. ``Interrupted.`` comes while the mount still hangs, exit 130 once
it answers, nothing made in OUT (the process itself cannot end before the mount answers:
hang51)."""
from __future__ import annotations

from _drivemount import GETATTR, LOOKUP, working_drive_mount  # noqa: F401  (a fixture)
from _hung_pull import ctrl_c_while_hung
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)

INTERRUPTED = ("Interrupted.\n", True, 130, "")   # said, the mount still hung; exit; no more


def test_ctrl_c_during_the_look_at_src_on_a_hung_mount(working_drive_mount, tmp_path):
    """The mount hangs at the first look-up by the third thread that calls it: after
    lost_mount's probe and open_store's look (each a thread of its own), the pull's look at
    SRC (``resolve``: a realpath and a stat), which the main thread made itself."""
    mount = working_drive_mount
    callers: list[int] = []

    def the_third_caller(out) -> bool:
        if mount.caller not in callers:
            callers.append(mount.caller)
        return callers.index(mount.caller) == 2

    said = ctrl_c_while_hung(mount, tmp_path, the_third_caller, at=(LOOKUP, GETATTR))
    assert said[:4] == INTERRUPTED
    assert not (tmp_path / "out").exists()
