"""attack48's two clocks for tests: the emulator's whole clock moved (``Emulator.clock_offset``:
the ``Date`` of its answers and every date it stamps, as a client machine whose clock is off
sees Drive), and a child process's wall clock moved (``tests/_clock_shim``, by
:func:`tests._clock.skewed_env`: ``time.time`` off, ``time.monotonic`` true)."""
from __future__ import annotations

import email.utils
import json
import os
import subprocess
import sys
import time
import urllib.request

from tests._clock import skewed_env

HOUR = 3600.0


def test_the_emulators_clock_offset_moves_its_dates_and_its_date_header(emulator, store):
    """An item made with the clock an hour ahead: its createdDate and modifiedDate, and the
    ``Date`` of the answer that lists it, an hour ahead of this machine's clock; the
    ``date_offset`` (a proxy's) adds to the ``Date`` alone."""
    emulator.clock_offset = HOUR
    before = time.time()
    emulator.add_file("a/x.bin", b"x")
    [made] = [emulator.store.get(f["id"]) for f in emulator.files() if f["title"] == "x.bin"]
    assert before + HOUR <= made["created"] == made["modified"] <= time.time() + HOUR + 1
    emulator.date_offset = 600.0
    with urllib.request.urlopen(emulator.url + "/drive/v2/about?access_token=test-token") \
            as answer:
        sent = email.utils.parsedate_to_datetime(answer.headers["Date"]).timestamp()
    assert abs(sent - (time.time() + HOUR + 600.0)) < 5
    listed = store.list(store.resolve("a"))
    assert [e.name for e in listed] == ["x.bin"]
    assert abs(listed[0].modified - made["modified"]) < 0.01
    emulator.clock_offset, emulator.date_offset = 0.0, 0.0
    emulator.add_file("a/y.bin", b"y")
    [fresh] = [emulator.store.get(f["id"]) for f in emulator.files() if f["title"] == "y.bin"]
    assert fresh["created"] <= time.time()


def test_a_child_started_with_the_shim_reads_a_wall_clock_off_and_a_true_monotonic_one():
    """A day ahead: ``time.time``, ``time.time_ns`` and ``time.gmtime()`` read it; the
    monotonic clock does not move (it counts from boot, in both processes)."""
    code = ("import json, time; print(json.dumps([time.time(), time.time_ns(), "
            "time.monotonic(), time.gmtime().tm_yday, time.strftime('%j')]))")
    env = skewed_env(86400.0, os.environ)
    start, mono = time.time(), time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    wall, wall_ns, child_mono, yday, strf = json.loads(out)
    assert start + 86400 <= wall <= time.time() + 86400
    assert abs(wall_ns / 1e9 - wall) < 5
    assert mono <= child_mono <= time.monotonic()
    assert yday == time.gmtime(start + 86400).tm_yday
    assert int(strf) == time.localtime(start + 86400).tm_yday


def test_a_childs_clock_steps_when_the_test_rewrites_its_file(tmp_path):
    """Started an hour behind; stepped a day ahead while it runs (it waits for a line on its
    stdin between its two readings)."""
    from tests._clock import step

    code = ("import sys, time; print(time.time(), flush=True); sys.stdin.readline(); "
            "print(time.time(), flush=True)")
    clock = str(tmp_path / "clock")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True,
                             env=skewed_env(-HOUR, os.environ, stepped_by=clock))
    try:
        first = float(child.stdout.readline())
        assert abs(first - (time.time() - HOUR)) < 30
        step(clock, 86400.0)
        child.stdin.write("go\n")
        child.stdin.flush()
        second = float(child.stdout.readline())
        assert abs(second - (time.time() + 86400.0)) < 30
    finally:
        child.stdin.close()
        child.stdout.close()
        child.wait(timeout=30)
