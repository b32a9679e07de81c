"""attack48: the run's lease while the holder's clock steps (NTP setting a VM that booted an
hour off, a VM resumed), by the clock shim of a running process (``tests/_clock_shim``,
``stepped_by``): the holder, a trainer of "another machine" in a child process, steps its
clock an hour back or forward once it holds. A trainer started beside it on the true clock
must be refused (a live holder, however its clock reads), and once the holder is killed it
takes the lease over at stale time (it does not hold for ever). A regression test: the
lease's timers are on the boot clock and its dates Drive's (passes on main)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests._clock import skewed_env, step
from tests.test_lease47_cas import PERIOD, _claims_on_drive, _lease

HOLDER = """
import socket, sys, time
socket.gethostname = lambda: "other-machine"
from trainer.drive import DriveFolder
from trainer.lease import RunLease
lease = RunLease(DriveFolder("drive:runs/exp", sys.argv[1]), period_s=float(sys.argv[2]))
lease.acquire()
lease.start()   # (renewed in a thread of its own, as a training run does)
print("held", flush=True)
sys.stdin.readline()
"""


@pytest.mark.parametrize("stepped", [-3600.0], ids=["back"])   # (forward: attack45's)
def test_a_holder_whose_clock_steps_holds_while_alive_and_goes_stale_once_killed(
        drive_env, emulator, tmp_path, stepped):
    from trainer.errors import LeaseHeldError

    emulator.add_folder("runs/exp")
    clock = str(tmp_path / "clock")
    env = skewed_env(0.0, dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
                     stepped_by=clock)
    said = open(tmp_path / "holder.err", "w")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "h"), str(PERIOD)],
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=said, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        step(clock, stepped)
        [held] = _claims_on_drive(emulator)
        nxt = _lease(tmp_path, "n", PERIOD)
        with pytest.raises(LeaseHeldError):
            nxt.acquire()
        assert _claims_on_drive(emulator) == [held]
    finally:
        holder.kill()
        holder.wait()
        holder.stdin.close()
        holder.stdout.close()
        said.close()
    way = "behind" if stepped > 0 else "ahead of"   # (Drive's Date, against its clock)
    err = (tmp_path / "holder.err").read_text()
    assert f"Drive's answers are dated 60 min {way} this machine's clock" in err, err
    nxt = _lease(tmp_path, "m", PERIOD)
    started = time.monotonic()
    nxt.acquire()
    try:
        assert time.monotonic() - started < 30
        assert _claims_on_drive(emulator) == [nxt.name]
    finally:
        nxt.release()


NEWCOMER = """
import socket, sys
socket.gethostname = lambda: "other-machine"
from trainer.drive import DriveFolder
from trainer.errors import LeaseHeldError
from trainer.lease import RunLease
lease = RunLease(DriveFolder("drive:runs/exp", sys.argv[1]), period_s=float(sys.argv[2]))
try:
    lease.acquire()
except LeaseHeldError:
    print("refused", flush=True)
else:
    print("held", flush=True)
    lease.release()
"""


@pytest.mark.parametrize("offset", [3600.0], ids=["ahead"])   # (behind: skewlefts44's)
def test_a_trainer_whose_clock_is_an_hour_off_is_refused_by_a_live_holder(
        drive_env, emulator, tmp_path, offset):
    """The holder here (true clock, renewing); a trainer of another machine whose clock runs
    an hour ahead (or behind) starts: refused, the holder's claim the only one."""
    emulator.add_folder("runs/exp")
    holder = _lease(tmp_path, "h", PERIOD)
    holder.acquire()
    holder.start()
    try:
        env = skewed_env(offset, dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        out = subprocess.run([sys.executable, "-c", NEWCOMER, str(tmp_path / "n"), str(PERIOD)],
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.stdout.strip() == "refused", out.stderr
        assert _claims_on_drive(emulator) == [holder.name]
        assert "Drive's answers are dated 60 min" in out.stderr, out.stderr
    finally:
        holder.release()
