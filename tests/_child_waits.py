"""Waits on a drivestage command in a child process (tests/_forkcli.py's ``popen``), each
bounded, and each a failure when its bound runs out: until the child reaches a moment of its
work (failing at once if it ends first), and until it ends (killed at the bound); and a
signal repeated until it ends."""
from __future__ import annotations

import time
from typing import Callable


def until(proc, ready: Callable[[], bool], what: str, bound: float = 60.0) -> None:
    """Wait until ``ready()``; fail with ``what`` past ``bound`` seconds, and with the
    child's output if ``proc`` ends first."""
    deadline = time.monotonic() + bound
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def ended(proc, bound: float = 60.0) -> tuple[int, str]:
    """``proc``'s exit code and standard error once it ends; past ``bound`` seconds it is
    killed (and ``communicate`` raises ``TimeoutExpired``: the test fails)."""
    try:
        _, err = proc.communicate(timeout=bound)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err.decode() if isinstance(err, bytes) else err


def repeated(proc, sig: int) -> None:
    """``sig`` a millisecond apart until ``proc`` ends (a supervisor that repeats its stop)."""
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:   # (it ended between the poll and the kill)
            break
        time.sleep(0.001)


__all__ = ["ended", "repeated", "until"]
