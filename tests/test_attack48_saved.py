"""attack48: the ``saved`` time of a trainer's checkpoint on a machine whose clock runs more
than a day behind (a dead clock battery, a VM booted with a stale clock before NTP).

Such a machine read every sidecar the run saved elsewhere as "saved in the future" (more than
``sidecar.FUTURE_SLACK_S`` ahead of its clock: no save time), so the run's floor
(``resume.saved_before``, ``SaveTimes.not_before``) was 0 and the states it took were dated
by its own clock, two days before the checkpoints they went on from. To every machine with
the right clock (another, or this one once NTP set it) they were "saved before the one saved
last yet claiming more progress" (``sidecar.left_behind``): a run sent back on purpose.
Resume and ``trainer status`` went back to the other machine's checkpoint, and the hours
trained here were passed over. A save time is now never before Drive's clock as its
answers' ``Date`` says it (where it differs from this machine's past a minute: the later of
the two, as first-seen marks are written). The trainer's process runs with its clock two
days behind (``tests/_clock_shim``); Drive's is right (the emulator)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

from drivestage import sidecar
from drivestage.sidecar import Described
from tests._cli import child_env
from tests._clock import skewed_env

BEHIND = -2 * 86400.0

_CHILD = """
import json, sys
from drivestage import sidecar
from drivestage.drive import connect
from trainer.save_times import SaveTimes

store = connect(api_root=sys.argv[1], token="test-token")
store.resolve("runs")                       # (an answer: its Date heard)
theirs = sidecar.parse(sys.argv[2], "epoch_010.json")
times = SaveTimes()                         # (as the engine sets it: trainer.resume.saved_before)
if theirs is not None and theirs.saved is not None:
    times.not_before(theirs.saved)
print(json.dumps({"parsed": theirs.saved if theirs else "none", "taken": times.taken()}))
"""


def _side(epoch: int, saved: float, data: bytes) -> dict:
    return {"format": 3, "epoch": epoch, "iteration": epoch * 100, "epoch_iteration": 0,
            "run": "run-1", "saved": saved, "md5": hashlib.md5(data).hexdigest(),
            "size": len(data)}


def eleven_is_newest(side10: dict, data10: bytes, taken: float, data11: bytes) -> None:
    """Epoch 11's sidecar, saved at ``taken``, beside epoch 10's: nothing left behind, and
    epoch 11 the run's newest."""
    ten = sidecar.parse(json.dumps(side10))
    eleven = sidecar.parse(json.dumps(_side(11, taken, data11)))
    assert ten is not None and eleven is not None
    found = [Described("epoch_010.pt", ten, hashlib.md5(data10).hexdigest()),
             Described("epoch_011.pt", eleven, hashlib.md5(data11).hexdigest())]
    assert sidecar.left_behind(found) == set()
    best = sidecar.newest(found, skip=sidecar.left_behind(found))
    assert best is not None and best.name == "epoch_011.pt"


def test_a_state_taken_on_a_machine_two_days_behind_is_the_runs_newest_everywhere(
        emulator, env):
    """Epoch 10 saved an hour ago on a machine with the right clock; the run resumed on one
    two days behind takes epoch 11: its save time is after epoch 10's, and a machine with the
    right clock goes on from epoch 11 (main: dated two days back, epoch 11 read left behind,
    and resume went back to epoch 10)."""
    emulator.add_folder("runs")
    data10, data11 = b"ten" * 100, b"eleven" * 100
    side10 = _side(10, time.time() - 3600, data10)
    out = subprocess.run([sys.executable, "-c", _CHILD, emulator.url, json.dumps(side10)],
                         env=skewed_env(BEHIND, child_env(emulator)), capture_output=True,
                         text=True, timeout=120, cwd=os.getcwd())
    assert out.returncode == 0, out.stderr
    taken = json.loads(out.stdout.strip().splitlines()[-1])["taken"]
    assert taken > side10["saved"]
    assert abs(taken - time.time()) < 120
    eleven_is_newest(side10, data10, taken, data11)


def test_a_state_taken_on_a_machine_hours_ahead_is_not_dated_after_the_run_went_on(
        emulator, env):
    """A machine whose clock runs three hours ahead takes epoch 12 (never sent: killed before
    its push); the run goes on from Drive elsewhere, epoch 20 saved a minute later. Epoch 12's
    save time is before epoch 20's, so epoch 20 is where the run goes on, not a line left
    behind (main: epoch 12 dated three hours late read as saved last, and that folder's
    resume went on from it: ``trainer.resume._went_on`` False)."""
    emulator.add_folder("runs")
    data10, data12, data20 = b"ten" * 100, b"twelve" * 100, b"twenty" * 100
    side10 = _side(10, time.time() - 3600, data10)
    out = subprocess.run([sys.executable, "-c", _CHILD, emulator.url, json.dumps(side10)],
                         env=skewed_env(3 * 3600.0, child_env(emulator)), capture_output=True,
                         text=True, timeout=120, cwd=os.getcwd())
    assert out.returncode == 0, out.stderr
    taken = json.loads(out.stdout.strip().splitlines()[-1])["taken"]
    assert abs(taken - time.time()) < 120
    twelve = sidecar.parse(json.dumps(_side(12, taken, data12)))
    twenty = sidecar.parse(json.dumps(_side(20, time.time() + 60, data20)))
    assert twelve is not None and twenty is not None
    from trainer.resume import _went_on

    assert _went_on(twenty, twelve)
    found = [Described("epoch_012.pt", twelve, hashlib.md5(data12).hexdigest()),
             Described("epoch_020.pt", twenty, hashlib.md5(data20).hexdigest())]
    assert sidecar.left_behind(found) == set()
