"""A long pure-Python step that runs beside I/O threads of its own process, and lets them run.

``pull --extract`` of a zip reads and checks the member list (20,000 members: about 0.3 s
of the main thread's CPU) while the download's threads already fetch and hash. Those
threads release the GIL in every socket read, write and hash update, but need it back
between two (a few tens of microseconds of Python per 1 MiB block). With CPython's default
switch interval (5 ms), a thread that waits for the GIL gets it only once the main thread
has run 5 ms more: the fetch and hash threads moved a block per 5-10 ms, and the second
core sat mostly idle for the length of the check (150-230 MB/s arrived meanwhile, against
300-470 MB/s with the GIL handed over every 0.5 ms, on the loaded development machine).
While :func:`sharing` holds, the interpreter hands the GIL over every 0.5 ms.

The switch interval is the whole process's: it comes back when the last :func:`sharing`
block alive in the process ends (threads may nest them). A block whose end never ran (a
Ctrl-C right at its ``__exit__``) does not hold it for good: its token dies with its frame,
and the next block's end puts back the interval the process had before (or the one set
since by someone else).
"""
from __future__ import annotations

import sys
import threading
import weakref
from types import TracebackType
from typing import Optional

from drivestage.fork_drop import free_in_forks

#: The switch interval (seconds) while a step shares the interpreter.
SWITCH = 0.0005

_lock = free_in_forks(threading.Lock())
#: The blocks running now, weakly: a block whose end was skipped leaves with its frame. (No
#: WeakSet: its removal callback, cut by a Ctrl-C, left a dead entry that counted for good.)
_alive: "list[weakref.ref[_Sharing]]" = []
#: The interval before the first block (None: none changed it), and the one set then.
_before: Optional[float] = None
_set: Optional[float] = None


def _others(me: "_Sharing") -> "list[weakref.ref[_Sharing]]":
    """The blocks alive other than ``me`` (the lock held; called before anything changes:
    an interruption at its call leaves nothing half done)."""
    live = []
    for ref in _alive:
        block = ref()
        if block is not None and block is not me:
            live.append(ref)
    return live


def sharing() -> "_Sharing":
    """``with sharing():`` runs the block with the GIL handed over every
    :data:`SWITCH` seconds (see the module doc); the interval is as before once the last
    such block of the process ends."""
    return _Sharing()


class _Sharing:
    # Nothing here calls a function of drivestage between a change and its record (the
    # blocks alive): an interruption at any call leaves what the next block can mend.

    def __enter__(self) -> None:
        global _before, _set
        with _lock:
            live = _others(self)   # (a Ctrl-C here: nothing changed yet)
            now = sys.getswitchinterval()
            if not live and (_before is None or now != _set):
                _before = now   # (not one a skipped end left: someone set it since)
            # What it will be, recorded before it is set: a Ctrl-C handled as the setting
            # returns (the first moment one can land after it) left the old _set, and the
            # next block took the short interval for the process's own and kept it for good.
            _set = SWITCH if now > SWITCH else now
            if now > SWITCH:
                sys.setswitchinterval(SWITCH)
                _set = sys.getswitchinterval()   # (as the interpreter holds it)
            live.append(weakref.ref(self))
            _alive[:] = live

    def __exit__(self, kind: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        global _before, _set
        with _lock:
            live = _others(self)   # (a Ctrl-C here: this block dies with its frame)
            _alive[:] = live
            if not live and _before is not None:
                # (Not when someone set another meanwhile, nor when this one was shorter.)
                if sys.getswitchinterval() == _set and _before != _set:
                    sys.setswitchinterval(_before)
                _before = _set = None


__all__ = ["SWITCH", "sharing"]
