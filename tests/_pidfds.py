"""Signals to a child that another process reaps (a fork server's): through a pidfd, which
names that process only, never by a pid that may be another process's once the child was
reaped (pid_max 32768 here: pids wrap in minutes under the suite)."""
from __future__ import annotations

import os
import signal
from typing import Optional


def open_pidfd(pid: int) -> Optional[int]:
    """A pidfd of ``pid`` (None where pidfds are missing: Python < 3.9, Linux < 5.3)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def send(pidfd: Optional[int], pid: int, sig: int) -> None:
    """``sig`` through ``pidfd`` (by ``pid`` where it is None); nothing for a process that
    has ended (as ``subprocess.Popen.send_signal``)."""
    try:
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass
