"""The signals the kernel holds ignored for this process (``SigIgn`` in /proc/self/status),
and the processes started while a hang-up or a stop was ignored (tests/conftest.py).

A child inherits SIG_IGN across exec: a pull started while its test runner had SIGHUP
ignored takes itself for one under ``nohup`` and runs on through every hang-up (CI at
5f856531: a pull -x ran on through 30 s of SIGHUPs, exit 0). ``signal.getsignal`` says what
Python last set, not what the kernel holds (C code may set it), and a test may ignore a
signal for a moment and start a process in it (a fork server that every later CLI child of
the worker comes from) then put it back: neither is seen by comparing handlers at the end.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

#: What a test may not leave ignored, nor start a process under (by its name).
WATCHED = {s: s.name for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None))
           if s is not None}
#: Of those, the ones a process started under takes for a ``nohup`` or a supervisor's wish
#: (SIGINT ignored is a background job's, which tests start on purpose).
AT_START = {s: n for s, n in WATCHED.items() if s != signal.SIGINT}
_SPAWNS = ("subprocess.Popen", "os.fork", "os.posix_spawn", "os.spawn", "os.system",
           "os.forkpty", "os.exec")


def ignored(which: "dict[int, str]" = WATCHED) -> list[str]:
    """The names of the signals of ``which`` the kernel holds ignored for this process
    (none where /proc cannot tell)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            mask = next(int(line.split()[1], 16) for line in fh if line.startswith("SigIgn:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return []
    return sorted(name for s, name in which.items() if mask >> (s - 1) & 1)


class Spawns:
    """Records each process this one starts while a signal of :data:`AT_START` is ignored
    that was not when :meth:`arm` was called (a test's start)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.found: list[str] = []
        self._base: list[str] = []
        sys.addaudithook(self._audit)

    def arm(self) -> None:
        self._base, self.found = ignored(AT_START), []

    def _audit(self, event: str, args: tuple) -> None:
        if event not in _SPAWNS or os.getpid() != self.pid:
            return
        now = [n for n in ignored(AT_START) if n not in self._base]
        if now:
            self.found.append(f"{event} {str(args)[:160]} (in thread "
                              f"{threading.current_thread().name!r}) with {', '.join(now)} "
                              "ignored here: the process starts with it ignored")
