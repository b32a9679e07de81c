"""attackr248: a save time on a machine two days behind, where the answer heard last before
the save carried no ``Date`` (a proxy of a pool that strips it, a cached answer).

attack48 dated a save by Drive's clock where its ``Date`` is past a minute off this
machine's (``server_clock.skew``). ``skew`` is None where the *last* answer carried no
``Date``, so one such answer between a dated one and the save sent the save back to this
machine's clock, two days behind: the state was "saved before the one saved last yet further
on" (``sidecar.left_behind``) to every machine with the right clock, and resume went back to
the other machine's checkpoint (attack48's finding 2, back by one answer). Drive's clock as
last heard is still the best known (``server_clock.drive_clock`` already reads it so)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

from drivestage import sidecar
from tests._cli import child_env
from tests._clock import skewed_env
from tests.test_attack48_saved import eleven_is_newest

BEHIND = -2 * 86400.0

_CHILD = """
import json, sys
from drivestage import sidecar
from drivestage.drive import connect
from trainer.save_times import SaveTimes

store = connect(api_root=sys.argv[1], token="test-token")
store.resolve("runs")                       # (an answer with Drive's Date, two days ahead)
print("heard", flush=True)
sys.stdin.readline()                        # (the test strips the Date of what comes next)
connect(api_root=sys.argv[1], token="test-token").resolve("runs")
theirs = sidecar.parse(sys.argv[2], "epoch_010.json")
times = SaveTimes()
if theirs is not None and theirs.saved is not None:
    times.not_before(theirs.saved)
print(json.dumps({"taken": times.taken()}), flush=True)
"""


def _side(epoch: int, saved: float, data: bytes) -> dict:
    return {"format": 3, "epoch": epoch, "iteration": epoch * 100, "epoch_iteration": 0,
            "run": "run-1", "saved": saved, "md5": hashlib.md5(data).hexdigest(),
            "size": len(data)}


def test_a_save_after_an_answer_without_a_date_is_still_by_drives_clock(emulator, env):
    emulator.add_folder("runs")
    data10, data11 = b"ten" * 100, b"eleven" * 100
    side10 = _side(10, time.time() - 3600, data10)
    child = subprocess.Popen([sys.executable, "-c", _CHILD, emulator.url, json.dumps(side10)],
                             env=skewed_env(BEHIND, child_env(emulator)), cwd=os.getcwd(),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "heard"
        emulator.send_date = False
        child.stdin.write("\n")
        child.stdin.flush()
        out, err = child.communicate(timeout=120)
    finally:
        emulator.send_date = True
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    assert "dated 2880 min ahead of this machine's clock" in err   # (the shim is in effect)
    taken = json.loads(out.strip().splitlines()[-1])["taken"]
    assert abs(taken - time.time()) < 120, taken - time.time()
    eleven_is_newest(side10, data10, taken, data11)


def test_keep_runs_sends_the_new_run_where_the_push_heard_no_date(emulator, store, env):
    """attack48's keep_runs case (this machine two hours behind Google's clock) where the
    answers of the second push come through a proxy that strips ``Date`` (the first push's
    carried it): ``clock_shift`` was 0, run B, being trained here, read two hours older than
    run A and was never sent (``skipped_by_policy``, exit 0)."""
    from drivestage.retention import RetentionPolicy
    from drivestage.upload_tree import push
    from tests.test_attack48_runs import _a_pushed_b_begun
    from tests.test_retention_runs import _names

    emulator.clock_offset = 2 * 3600.0
    new = _a_pushed_b_begun(env, store)
    later = time.time() + 60
    for name in ("epoch_001.pt", "epoch_001.json"):
        os.utime(new / name, (later, later))
    emulator.send_date = False
    try:
        result = push(str(new), "Models/logs", RetentionPolicy(keep_last=2, keep_runs=1),
                      store=store)
    finally:
        emulator.send_date = True
    assert result.skipped_by_policy == []
    assert sorted(result.uploaded) == ["epoch_001.json", "epoch_001.pt"]
    assert _names(emulator) == ["epoch_001.pt", "epoch_049.pt", "epoch_050.pt"]
