"""trainer.stuck's sampler (the heartbeat thread's look at the training thread, every beat)
never deadlocks the process in ``sys._current_frames()``: CPython 3.11 froze for good when a
garbage collection started there freed a ``threading.local`` (python/cpython#106883; a test
watcher doing the same hung a pytest worker, every thread waiting for the GIL). In a child
process: collections as often as they go, threads making cycles that hold locals, and the
sampler looking all the while."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

#: The child: a training thread whose frames keep changing and make garbage cycles holding a
#: threading.local; the main thread samples it for ``seconds``.
CHILD = """
import gc, sys, threading, time
from trainer import stuck

if sys.argv[1] == "old":   # (what the sampler called before)
    stuck.current_frames = sys._current_frames
seconds = float(sys.argv[2])

class Holder:
    def __init__(self):
        self.local = threading.local()
        self.me = self   # (a cycle: freed by a collection only)

made = threading.Event()
stop = False
sampler = []

def train():
    sampler.append(stuck.Sampler(60.0))
    made.set()
    while not stop:
        Holder()

def churn():
    while not stop:
        Holder()

threads = [threading.Thread(target=train, daemon=True)] + [
    threading.Thread(target=churn, daemon=True) for _ in range(2)]
for t in threads:
    t.start()
assert made.wait(30)
gc.set_threshold(1)
end, looks = time.monotonic() + seconds, 0
while time.monotonic() < end:
    sampler[0].stuck_for()
    looks += 1
stop = True
print(looks)
"""


def test_the_sampler_s_look_at_the_frames_never_deadlocks(tmp_path):
    """(Shown: with the old call, 5 of 6 such children hung here, idle or loaded.)"""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    try:
        got = subprocess.run([sys.executable, str(script), "new", "1.5"], capture_output=True,
                             text=True, timeout=30, env={**os.environ})
    except subprocess.TimeoutExpired:
        pytest.fail("the sampler's process hung (sys._current_frames() deadlocked)")
    assert got.returncode == 0, got.stderr
    assert int(got.stdout) > 100, got.stdout
