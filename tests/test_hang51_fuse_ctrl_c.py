"""hang51: Ctrl-C while the FUSE mount a local-folder pull reads from stops answering.

A read of a FUSE file whose daemon stopped answering (a Drive mount under load, DriveFS
hung) that the daemon has taken is broken by no signal, SIGKILL included: the kernel waits
for the daemon's answer. A thread of the pool stuck so (the walk's hash of the mount's
files, the end-of-pull re-hash: fuse51) never reached its next safe point, and the pool
waited for it through every Ctrl-C ("waiting for the transfers under way to stop", after
5 s, then nothing). Now a thread in such a read (:func:`drivestage.pool.leavable`) a second
after the stop is left there, and the Ctrl-C ends the pull as anywhere else: "Interrupted.",
said while the mount still hangs (the line's arrival is the event), then exit 130 once the
mount answers: the process itself cannot end before (its stuck thread is in the kernel).
Both fail on main 54345a34 (the warning first, nothing more until the mount answers).
The copy's read is in a download's stream thread, which its pass leaves as its pool thread
is: tests/test_streams52_fuse_copy.py. The helper: tests/_hung_pull.py.
"""
from __future__ import annotations

from _drivemount import working_drive_mount  # noqa: F401  (a fixture)
from _hung_pull import ctrl_c_while_hung
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)


def test_ctrl_c_during_the_re_hash_of_a_hung_mount_ends_the_pull(working_drive_mount,
                                                                    tmp_path):
    staged = lambda out: (out / "ds" / "b.txt").exists()   # noqa: E731  (the copy is done)
    said = ctrl_c_while_hung(working_drive_mount, tmp_path, staged)
    assert said[:4] == ("Interrupted.\n", True, 130, "")


def test_ctrl_c_during_the_walks_hash_of_a_hung_mount_ends_the_pull(working_drive_mount,
                                                                     tmp_path):
    said = ctrl_c_while_hung(working_drive_mount, tmp_path, lambda out: True)  # (1st read)
    assert said[:4] == ("Interrupted.\n", True, 130, "")
    assert not (tmp_path / "out").exists()
