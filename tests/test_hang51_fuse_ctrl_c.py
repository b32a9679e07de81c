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
The copy's read is in a download's stream thread, which its pass joins 5 s at most
(streams._STREAMS_END): a Ctrl-C there ends the pull after those 5 s (not tested here).
"""
from __future__ import annotations

import os
import select
import signal
import threading

from _drivemount import READ, working_drive_mount  # noqa: F401  (a fixture)
from _forkcli import PIPE, cli_server
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)

MTIME = 1_000_000_000 * 10**9


def _ctrl_c_while_hung(mount, tmp_path, when) -> tuple[str, bool, int, str]:
    """``drivestage pull MOUNT/MyDrive/ds OUT -q`` in a child; the mount hangs at the first
    read for which ``when(out)`` is true; SIGINT then. What the child wrote to stderr first,
    whether the mount still hung once it had, and, the mount answering again, its exit code
    and the rest of its stderr."""
    for name in ("a.txt", "b.txt"):
        mount.change_on_drive(f"MyDrive/ds/{name}", name.encode() * 1000, MTIME)
    mount.catch_up()
    out = tmp_path / "out"
    hung = threading.Event()

    def arriving(opcode: int) -> None:
        if opcode == READ and not hung.is_set() and when(out):
            mount.hang()   # (this read waits, as every call after it)
            hung.set()

    mount.arriving = arriving
    proc = cli_server().popen(["pull", str(mount.point / "MyDrive" / "ds"), str(out), "-q",
                               "--jobs", "1"], env=dict(os.environ), stdout=PIPE, stderr=PIPE)
    try:
        assert hung.wait(60), proc.communicate(timeout=60)
        proc.send_signal(signal.SIGINT)
        # The line's arrival is the event (the bound is for a failure only). The process
        # itself cannot end before the mount answers: the kernel waits for the daemon's
        # answer to a read it has taken through every signal, SIGKILL too, and the process
        # with it, whatever Python does.
        said = select.select([proc.stderr], [], [], 30)[0]
        first = os.read(proc.stderr.fileno(), 4096).decode() if said else ""
        still_hung = not mount.answering.is_set()
        mount.answer()
        _, rest = proc.communicate(timeout=30)
    finally:
        mount.answer()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    return first, still_hung, proc.returncode, rest.decode()


def test_ctrl_c_during_the_re_hash_of_a_hung_mount_ends_the_pull(working_drive_mount,
                                                                    tmp_path):
    staged = lambda out: (out / "ds" / "b.txt").exists()   # noqa: E731  (the copy is done)
    said = _ctrl_c_while_hung(working_drive_mount, tmp_path, staged)
    assert said == ("Interrupted.\n", True, 130, "")


def test_ctrl_c_during_the_walks_hash_of_a_hung_mount_ends_the_pull(working_drive_mount,
                                                                     tmp_path):
    said = _ctrl_c_while_hung(working_drive_mount, tmp_path, lambda out: True)  # (1st read)
    assert said == ("Interrupted.\n", True, 130, "")
    assert not (tmp_path / "out").exists()
