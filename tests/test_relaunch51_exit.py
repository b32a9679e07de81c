"""relaunch51: a trainer process that exits right after a release cut short.

The release waits at most ``RELEASE_WAIT_S`` (5 s) for a renewal Drive holds, and leaves the
claim's removal to that renewal (relaunch50: a notebook's ``fit`` returns meanwhile). A
trainer *process* (``python -m trainer train``, a script ending after ``fit``) then exited,
its end killed the daemon renewal thread mid-request, and the claim stayed on Drive: a
trainer of the run on another machine waited the stale period for it (2.5 min by default).
Now the exit waits for that renewal and removes the claim, bounded (trainer.lease_end), one
line saying it waits; past the bound, one line says the claim is left and what another
machine sees.

A real child process (forked from tests/_forkcli.py's server, its exit the interpreter's:
non-daemon threads, then atexit) holds the lease against the emulator; its renewal's upload
is held by the emulator's latency and let go (or not) by the test, each step on a line of
the child's or the emulator's count of held answers: no sleeps."""
from __future__ import annotations

import os
import subprocess

import pytest

from _lease_race import claims_on_drive

#: ``python -c CHILD DEST LOCAL EXIT_WAIT_S``: holds the lease (a 60 s period: no renewal of
#: its own), prints its claim's name, and at each line on stdin goes on: a renewal in a
#: thread (its upload held by the test), then the run's end (the release, cut short at 0.1 s)
#: and the process's (the interpreter's: the test's script ends there).
CHILD = """\
import logging, sys, threading
import trainer.lease, trainer.lease_end
from trainer.drive import DriveFolder
from trainer.lease import RunLease

dest, local, bound = sys.argv[1:]
logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
trainer.lease.RELEASE_WAIT_S = 0.1          # (5 s: the test sees it end, not pass)
trainer.lease_end.EXIT_WAIT_S = float(bound)
trainer.lease_end.SAY_AFTER_S = 0.05
lease = RunLease(DriveFolder(dest, local), period_s=60.0)
lease.acquire()
print(lease.name, flush=True)
sys.stdin.readline()
lease._written_at = float("-inf")           # (due: its renewal writes the claim)
threading.Thread(target=lease.check, daemon=True).start()
sys.stdin.readline()
lease.release()
print("released", flush=True)
"""

WAITING = "drive:runs/exp: waiting up to "


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    monkeypatch.setenv("DRIVESTAGE_RETRY_CAP", "0.02")


def _ended_with_a_held_renewal(emulator, tmp_path, bound: float):
    """The child, holding the lease, its renewal held by Drive, released and exiting:
    (the child, its claim's name), the child's stderr still to read."""
    from _forkcli import PIPE, cli_server

    proc = cli_server().popen(["drive:runs/exp", str(tmp_path / "a"), str(bound)],
                              script=CHILD, env=dict(os.environ), stdin=PIPE, stdout=PIPE,
                              stderr=PIPE, text=True)
    name = proc.stdout.readline().strip()
    assert name.startswith("trainer-lease-"), (name, proc.communicate(timeout=30))
    emulator.faults.latency(60, path="^/upload/", times=1)
    proc.stdin.write("renew\n")
    proc.stdin.flush()
    assert emulator.faults.wait_latencies(lambda waiting: waiting == 1, 30)[0]
    proc.stdin.write("end\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == "released\n"   # (cut short: the renewal still held)
    return proc, name


def test_a_process_exiting_after_a_release_cut_short_removes_its_claim_first(
        drive_env, emulator, tmp_path):
    proc, name = _ended_with_a_held_renewal(emulator, tmp_path, bound=30.0)
    try:
        # The exit waits for the renewal, and says so (main: it exited at once, no line).
        line = proc.stderr.readline()
        assert line.startswith(WAITING) and line.endswith(
            " s for Drive to answer this run's last lease renewal, to remove its claim before "
            "this process exits\n"), line
        assert claims_on_drive(emulator) == [name]
    finally:
        emulator.faults.hurry()   # (Drive answers the renewal: it lands, the claim goes)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and (out, err) == ("", ""), (proc.returncode, out, err)
    # (main: the renewal thread killed at the exit, the claim left, read live by another
    # machine's trainer until stale: 2.5 min with the default lease)
    assert claims_on_drive(emulator) == []


def test_the_exit_waits_for_a_renewal_held_forever_at_most_its_bound_and_says_the_claim_is_left(
        drive_env, emulator, tmp_path):
    hung_before = emulator.faults.wait_latencies(lambda waiting: True, 0)[1]
    proc, name = _ended_with_a_held_renewal(emulator, tmp_path, bound=0.3)
    try:
        out, err = proc.communicate(timeout=30)   # (the upload held 60 s: exited long before)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    finally:
        # The held renewal's client hung up while Drive still held it: the process exited
        # at its bound, not once Drive answered.
        came, hung = emulator.faults.wait_latencies(lambda waiting: waiting == 0, 30)
        emulator.faults.hurry()
    assert came and hung == hung_before + 1, (came, hung, hung_before)
    assert proc.returncode == 0 and out == "", (proc.returncode, out, err)
    assert err.splitlines() == [
        "drive:runs/exp: waiting up to 0 s for Drive to answer this run's last lease renewal, "
        "to remove its claim before this process exits",
        f"drive:runs/exp: exiting with the run's lease claim {name} left on Drive (Drive did not "
        "answer its last renewal within 0 s): a trainer of this run on another machine waits up "
        "to 2.5 min for it to lapse; one on this machine takes it at once"], err
    assert claims_on_drive(emulator) == [name]
