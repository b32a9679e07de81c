"""attackstop32: a SIGHUP right after the stop's SIGTERM is not the second signal.

systemd stops a login session's scope (a spot VM's shutdown; ``loginctl terminate-session``;
a run started over SSH) with SIGTERM and, at once, SIGHUP to each of its processes
(``SendSIGHUP=``, which logind sets: "the connection has been severed"). The handler took the
SIGHUP for the user's second signal, "stop at once": the process killed itself by SIGHUP in
the middle of the stop's save, nothing saved (exit 129 by the signal, no line).

A process of its own: before the fix the handler kills the process it runs in."""
from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = r"""
import os, signal, sys
from trainer.stopping import StopFlag

stop = StopFlag(30)
with stop.installed():
    os.kill(os.getpid(), {first})
    os.kill(os.getpid(), {then})
    print(stop.name, stop.exit_code, flush=True)   # (the stop's save goes on)
    if {third}:
        os.kill(os.getpid(), {third})   # a real second signal: at once
    print("after", flush=True)
"""


def _run(first: str, then: str, third: str = "0") -> subprocess.CompletedProcess:
    code = SCRIPT.format(first=first, then=then, third=third)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)


def test_a_sighup_right_after_the_sigterm_lets_the_stop_save_and_a_second_sigterm_stops_at_once():
    done = _run("signal.SIGTERM", "signal.SIGHUP", "signal.SIGTERM")
    assert (done.returncode, done.stdout) == (-15, "SIGTERM 143\n"), done


def test_a_sigterm_after_a_hang_up_is_not_the_second_either():
    """The other order (the SSH session dropped, then the VM's shutdown): the hang-up's stop
    goes on; a second SIGTERM still stops at once."""
    done = _run("signal.SIGHUP", "signal.SIGTERM", "signal.SIGTERM")
    assert (done.returncode, done.stdout) == (-15, "SIGHUP 129\n"), done
