"""attacklease36: a holder of the run's lease that was silent past the lease in the middle of
a push (a machine asleep, a process stopped: SIGSTOP) while a new trainer took the stale lease
over and pushed the same names (it resumed the run from Drive and saved the same epoch). Woken
(SIGCONT), the old holder's push, whose lease check passed before it slept, goes on: what does
it replace on Drive? A child process holds the lease and pushes; a hook in it stops it
(SIGSTOP, itself) right after the push's lease check passed, before any upload; the test
takes the stale lease over with a RunLease of its own, pushes its own pair of those names,
then wakes the child. The real PyDrive2 stack against the emulator; real checkpoint files."""
from __future__ import annotations

import textwrap

import pytest

from _lease_pairs import save_pair, woken_after_a_take_over

DEST = "drive:runs/exp"
NAME = "epoch_001.pt"

CHILD = textwrap.dedent("""
    import os, signal, sys, threading
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    folder = DriveFolder(sys.argv[1], sys.argv[2])
    lease = RunLease(folder, period_s=0.6)
    lease.acquire()
    folder.lease = lease.start()
    checked = lease.check
    asleep = []

    def check():
        checked()
        if threading.current_thread() is threading.main_thread() and not asleep:
            asleep.append(1)
            os.kill(os.getpid(), signal.SIGSTOP)   # (asleep right after the check passed)

    store = folder._store
    sent = store.upload

    def upload(*a, **k):   # (asleep at its first file, the push planned against Drive)
        if not asleep:
            asleep.append(1)
            os.kill(os.getpid(), signal.SIGSTOP)
        return sent(*a, **k)

    if sys.argv[3] == "check":
        lease.check = check
    else:
        store.upload = upload
    try:
        folder.push()
        print("pushed", flush=True)
    except Exception as exc:
        print("failed", type(exc).__name__, exc, flush=True)
    lease.release()
""")


@pytest.mark.parametrize("at", ["check", "upload"])
def test_a_holder_woken_after_a_stale_take_over_replaces_nothing_the_new_holder_pushed(
        drive_env, emulator, tmp_path, at):
    save_pair(tmp_path / "old", NAME, 1.0, 1000.0, values=1 << 16)
    woken_after_a_take_over(emulator, tmp_path, CHILD, DEST, at, values=1 << 16)
