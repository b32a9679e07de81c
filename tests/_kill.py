"""Killing a child process at a real moment of its work (no sleeps to guess it)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Callable


def sigkill_when(proc: subprocess.Popen, ready: Callable[[], bool],
                 what: str = "the child never got there") -> None:
    """SIGKILL ``proc`` as soon as ``ready()``; fail if it exits first or nothing happens
    within 30 s. Closes the child's pipes."""
    try:
        deadline = time.monotonic() + 30
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, what
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert proc.returncode == -signal.SIGKILL


def sigkill_once_file_has(proc: subprocess.Popen, path: str, nbytes: int,
                          what: str = "the download never started") -> None:
    """SIGKILL ``proc`` as soon as ``path`` holds at least ``nbytes``."""
    sigkill_when(proc, lambda: os.path.exists(path) and os.path.getsize(path) >= nbytes, what)
