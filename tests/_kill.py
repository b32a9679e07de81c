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
    within 120 s. Closes the child's pipes.

    The bound only catches a child that hangs: a trainer child on a loaded 2-core machine
    took over 30 s to reach its first mid-epoch autosave (it failed so at -n 2 beside
    other jobs); a child that gets there sooner is killed as soon."""
    try:
        deadline = time.monotonic() + 120
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


def sigkill_push_in_its_upload(emulator, env: dict, *args: str) -> None:
    """``drivestage push ARGS`` in a child, SIGKILLed once its first upload request is in (the
    emulator holds that request's answer for 2 s, so the kill lands before it ends)."""
    import sys

    emulator.clear_requests()
    emulator.faults.latency(2.0, path=r"^/upload/", times=1)
    proc = subprocess.Popen([sys.executable, "-m", "drivestage", "push", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sigkill_when(proc, lambda: any(r.path.startswith("/upload/") for r in emulator.requests),
                 "the push never began its upload")
