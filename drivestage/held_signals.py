"""SIGTERM and SIGHUP that reach ``drivestage mirror`` before it can handle them.

The mirror's handlers exist only once its command runs, 0.1-0.3 s after the process starts
(the command modules load first). A spot VM's or Colab's SIGTERM in that window killed the
process without a word or the final push the mirror promises. :func:`hold` (the console
script, for ``mirror`` only, before anything loads) notes them instead; the mirror takes them
(:func:`take`) as soon as its own handlers are in place, and stops as it would on one that
came later. Only a signal left at its default is held: one ignored (``nohup``'s SIGHUP)
stays ignored. Other commands are not held: one that comes while they load ends them, with
nothing begun (they take them once their function runs: :mod:`drivestage.stop_signals`).
"""
from __future__ import annotations

import signal
from typing import Any, Optional

#: The signals held: those a spot VM, Colab or a dropped terminal send to stop a process.
HELD = (signal.SIGTERM, signal.SIGHUP)

_got: list[int] = []
_before: dict[int, Any] = {}


def _hold(signum: int, frame: Optional[object]) -> None:
    _got.append(signum)


def hold() -> None:
    """Note SIGTERM and SIGHUP from now on, until :func:`take` or :func:`release`."""
    for signum in HELD:
        if signal.getsignal(signum) is signal.SIG_DFL:
            _before[signum] = signal.SIG_DFL
            signal.signal(signum, _hold)


def original(signum: int) -> Any:
    """The handler ``signum`` had before :func:`hold` (its current one when not held): what
    a command that replaces the holder puts back when it ends."""
    current = signal.getsignal(signum)
    return _before.get(signum, current) if current is _hold else current


def take() -> list[int]:
    """The signals held so far, once. Call it after installing the handlers that replace
    the holder: a signal from then on reaches them, and none is lost in between."""
    got = list(_got)
    del _got[:len(got)]
    return got


def release() -> None:
    """Put back the handlers :func:`hold` replaced and still holds (a command that ended
    before it took them: a usage error, ``--help``); what was held is dropped, the command
    having ended on its own."""
    for signum, before in list(_before.items()):
        if signal.getsignal(signum) is _hold:
            signal.signal(signum, before)
    _before.clear()
    del _got[:]
