"""stop29: ``python -m trainer.demo`` stopped by a SIGTERM (a notebook's "stop", ``kill``, a
runtime going away) died at once and left its emulator running, for good, with the step under
way (its stdout still open: a caller reading the demo's output waited for ever); a Ctrl-C
printed a traceback and SIGKILLed the training during its stop save. Now the signal goes to
the step under way, the emulator stops, and the demo exits 143 with one line.

The real demo as a process, its real emulator (the test asks it over HTTP)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return [int(p) for p in fh.read().split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "_emulator/requests", timeout=5).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def test_a_sigterm_to_the_demo_stops_its_emulator_and_exits_143_with_one_line(tmp_path):
    work = tmp_path / "demo"
    err = open(tmp_path / "stderr", "w+")
    demo = subprocess.Popen([sys.executable, "-m", "trainer.demo", "--workdir", str(work)],
                            stdout=subprocess.PIPE, stderr=err, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO))
    kids: list[int] = []
    try:
        prefix, url = "Drive API emulator at ", ""
        for line in demo.stdout:                # until step 2 begins its process
            if line.startswith(prefix):
                url = line[len(prefix):].split()[0]
            if line.startswith("$ trainer synth-data"):
                break
        assert url and _answers(url)
        kids = _children(demo.pid)              # the emulator (and step 2's process)
        demo.send_signal(signal.SIGTERM)
        code = demo.wait(60)
        left = [k for k in kids if _alive(k)]
        assert (code, left, _answers(url)) == (143, [], False), \
            f"exit {code}; still running after the demo: {left}"
        err.seek(0)
        said = err.read().strip().splitlines()
        assert said[-1] == (f"demo: stopped by SIGTERM in step 2 of 7; its processes have "
                            f"ended, the emulator too (what they made is in {work})"), said
    finally:
        for k in kids:
            if _alive(k):
                os.kill(k, signal.SIGKILL)
        if demo.poll() is None:
            demo.kill()
        demo.wait()
        demo.stdout.close()
        err.close()
