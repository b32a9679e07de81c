"""A long pure-Python step that runs beside I/O threads of its own process, and lets them run.

``pull --extract`` of a zip reads and checks the member list (20,000 members: about 0.3 s
of the main thread's CPU) while the download's threads already fetch and hash. Those
threads release the GIL in every socket read, write and hash update, but need it back
between two (a few tens of microseconds of Python per 1 MiB block). With CPython's default
switch interval (5 ms), a thread that waits for the GIL gets it only once the main thread
has run 5 ms more: the fetch and hash threads then moved a block per 5-10 ms, about a tenth
of their rate, and the second core sat idle for the length of the check. While
:func:`sharing` holds, the interpreter hands the GIL over every 0.5 ms instead, and the
cyclic garbage collector waits: the objects the step makes (one entry per member) all live
on, so a collection over them only holds the GIL longer for nothing.

Both are settings of the whole process: the previous ones come back when the last
:func:`sharing` in the process ends (threads may nest them), and a collector that was
switched off before stays off.
"""
from __future__ import annotations

import gc
import sys
import threading
from types import TracebackType
from typing import Optional

from drivestage.interrupts import deferred

#: The switch interval (seconds) while a step shares the interpreter.
SWITCH = 0.0005

_lock = threading.Lock()
_holders = 0
_saved: Optional[tuple[float, bool]] = None   # (switch interval, collector enabled) before


def sharing() -> "_Sharing":
    """``with sharing():`` runs the block with a short switch interval and the cyclic
    collector paused (see the module doc); both as before once the last such block of the
    process ends. A Ctrl-C never leaves them changed (it waits for the few lines that
    count the block in or out)."""
    return _Sharing()


class _Sharing:

    def __enter__(self) -> None:
        global _holders, _saved
        with deferred(), _lock:
            if _holders == 0:
                _saved = (sys.getswitchinterval(), gc.isenabled())
                if _saved[0] > SWITCH:   # (one shorter already stays as it is)
                    sys.setswitchinterval(SWITCH)
                gc.disable()
            _holders += 1

    def __exit__(self, kind: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        global _holders, _saved
        with deferred(), _lock:
            _holders -= 1
            if _holders == 0 and _saved is not None:
                interval, enabled = _saved
                _saved = None
                if interval > SWITCH:
                    sys.setswitchinterval(interval)
                if enabled:
                    gc.enable()


__all__ = ["SWITCH", "sharing"]
