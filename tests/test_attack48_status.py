"""attack48: ``trainer status``'s "verified on Drive … ago" on a machine whose clock is off.
The age was this machine's clock less Drive's modifiedDate (Google's clock): on a machine two
hours behind, a checkpoint verified two hours ago read "0 s ago" (the user, told the run's
latest state is safe, stops the VM), and on one two hours ahead, one just sent read "2.0 h
ago". The age is now read by Drive's clock as its answers' ``Date`` says it. The real
PyDrive2 stack against the emulator, its whole clock moved (``Emulator.clock_offset``)."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from test_keeplocal25 import fitted
from test_trainer22_hostile import _small_run
from test_trainer23_fallback import _save
from test_trainer24_status import SPEC, _status

HOURS = 2 * 3600.0


@pytest.mark.parametrize("pushed, now, low, high, said", [
    (-HOURS, -HOURS, 0.0, 60.0, r"\d+ s"),          # this machine two hours ahead, just sent
    (0.0, HOURS, HOURS - 60, HOURS + 60, r"2\.0 h")])  # two hours behind, sent 2 h ago
def test_status_says_how_long_ago_by_drives_clock(emulator, drive_env, local_state,
                                                  tiny_config, tmp_path, pushed, now, low, high,
                                                  said):
    """A checkpoint verified on Drive a moment ago, this machine's clock two hours ahead:
    status says seconds (main: "2.0 h ago"); one verified two hours ago by Drive's clock,
    this machine's clock two hours behind: "2.0 h ago" (main: "0 s ago"). The JSON's
    ``age_s`` the same."""
    from trainer.drive import DriveFolder

    emulator.clock_offset = pushed
    there = tmp_path / "there"
    run = _small_run(tiny_config, there)
    _save(run, there, "epoch_001.pt", 1, 1000.0, fitted())
    DriveFolder(SPEC, str(there)).push()
    emulator.clock_offset = now
    here = tmp_path / "here"
    here.mkdir()
    shutil.copy(there / "epoch_001.json", here / "epoch_001.json")
    res = _status(tiny_config, here, "--json")
    assert res.exit_code == 0, res.output
    age = json.loads(res.stdout)["age_s"]
    assert low <= age < high, age
    # (clock49: neither clock is shown wrong by Drive's own date: the other reading is said)
    assert json.loads(res.stdout)["age_range_s"][1] - json.loads(res.stdout)["age_range_s"][0] \
        > HOURS - 60, res.stdout
    res = _status(tiny_config, here)
    assert res.exit_code == 0, res.output
    assert re.match(rf"{re.escape(SPEC)}/epoch_001.pt: epoch 1, iteration 2, verified on "
                    rf"Drive {said} ago", res.stdout), res.stdout
    assert re.search(rf"^{re.escape(SPEC)}/epoch_001.pt: age uncertain: {said} by Drive's clock "
                     r"as its answers' Date says it, [\d.]+ [sh] by this machine's clock; the "
                     r"two disagree by 120 min and which is wrong is not known", res.stdout,
                     re.M), res.stdout
