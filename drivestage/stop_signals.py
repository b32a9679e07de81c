"""SIGTERM and SIGHUP that end a command as a Ctrl-C does (``pull``, ``push``, ``prune``,
``dedupe``, ``runs forget``, ``ls``, ``quota``, ``auth login``:
:func:`drivestage.cli.options.stops_as_ctrl_c`).

Left at their default action, they ended the process at once: a spot VM's or Colab's SIGTERM,
``timeout``'s, systemd's, or the SIGHUP of a notebook or terminal that closed, left a pull's
temporary extraction folder in DEST (until the next extraction there) and its partial
download's record as it was at the last save. Under :func:`as_ctrl_c` each is raised as a
KeyboardInterrupt in the main thread, held back as a Ctrl-C is while a clean-up runs
(:func:`drivestage.interrupts.deferred`), so the command ends as an interrupted one does:
its temporary folder removed, the partial kept for the rerun; a push's md5s saved and its
lock holder records removed (killed, it left them in the state folder: sigpush42). It
leaves with :class:`Stopped`: one line naming the signal and the shell's code (143, 129).

Only a signal left at its default is taken: one ignored (``nohup``'s SIGHUP) stays ignored,
and a host's own handler (a notebook, a program running the command in-process) is left
alone. ``mirror`` has its own handlers (:mod:`drivestage.cli.mirror`).
"""
from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from drivestage import deferred_ctrl_c, interrupts, lost_interrupts

#: The signals taken, and the exit code each ends a command with (the shell's 128 + number).
EXIT_CODES: dict[int, int] = {signal.SIGTERM: 143, signal.SIGHUP: 129}

#: The signals :func:`_on_stop` took, oldest first (main thread only).
_taken: list[int] = []
#: Where each :func:`as_ctrl_c` under way began in :data:`_taken`, outermost first.
_starts: list[int] = []
#: Not empty once the KeyboardInterrupt of the signal taken was lost (:func:`lost`).
_lost: list[int] = []
#: Where in :data:`_taken` a block's first stop came after a Ctrl-C (its exit: the Ctrl-C's).
_after_ctrl_c: list[int] = []
#: :func:`deferred_ctrl_c.seen` as each :func:`as_ctrl_c` under way began, outermost first.
_seen_at: list[int] = []


class Stopped(KeyboardInterrupt):
    """The command was stopped by ``signum`` (SIGTERM, SIGHUP), as by a Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.exit_code = EXIT_CODES.get(signum, 128 + int(signum))

    def line(self) -> str:
        """What the command says as it ends."""
        return f"Interrupted by {signal.Signals(self.signum).name}."


def _on_stop(signum: int, frame: Optional[object]) -> None:
    _taken.append(signum)
    first = bool(_starts) and len(_taken) - _starts[-1] == 1 and not _lost
    handling = sys.exc_info()[1]
    if first and isinstance(handling, KeyboardInterrupt) and not isinstance(handling, Stopped):
        # A Ctrl-C's clean-up under way (its KeyboardInterrupt being handled): the Ctrl-C
        # came first and decides, 130 and "Interrupted.", as a shell reports the first
        # signal; this stop is a repeat, noted only (it was raised: the clean-up cut, and
        # the block ended as "Interrupted by SIGTERM.", 143: lefts43, attacksig42).
        _after_ctrl_c.append(len(_taken) - 1)
        return
    if first and (deferred_ctrl_c.held_back() or deferred_ctrl_c.seen() > _seen_at[-1]):
        # A Ctrl-C came first all the same: held back by a deferred() under way (raised at
        # its end), or raised and caught by code that cleans up after its except block
        # (nothing handled now). The Ctrl-C's 130 stands (it was 143: lefts44); this stop
        # is still raised (or held back) as below: a Ctrl-C swallowed, the command going
        # on, must not leave the SIGTERM unheard.
        _after_ctrl_c.append(len(_taken) - 1)
    # The first ends the command; a repeat (a supervisor that sends its stop again, a hang-up
    # then ``timeout``'s SIGTERM) is only noted: raised again, it cut the first's clean-up
    # where no deferred() held it, or the block's own end, whose Stopped became a plain
    # "Interrupted." and exit 130 (attacksig41).
    if not _starts or len(_taken) - _starts[-1] == 1 or _lost:
        del _lost[:]
        interrupts.interrupt()


def lost() -> Optional[int]:
    """The stop signal taken in the block under way whose KeyboardInterrupt Python raised in
    a finalizer and dropped (:mod:`drivestage.lost_interrupts`, where SIGINT is ignored: a
    background job), to be sent again: its next coming is raised, not noted as a repeat
    (noted, the pull went on, and no SIGTERM could stop it: attacksig42). None if none."""
    if not _starts or len(_taken) <= _starts[-1]:
        return None
    _lost.append(_taken[-1])
    return _taken[-1]


def taken() -> Optional[int]:
    """The first stop signal taken in the block under way (None if none): for a caller whose
    library turned its :class:`Stopped` into something else (click's prompt: ``Abort``)."""
    return _taken[_starts[-1]] if _starts and len(_taken) > _starts[-1] else None


@contextmanager
def as_ctrl_c(program: bool = False) -> Iterator[None]:
    """Within the block, a SIGTERM or SIGHUP left at its default ends it as a Ctrl-C does,
    with :class:`Stopped`; the handlers from before are put back at its end. ``program``:
    the command is the whole process (:func:`drivestage.cli.group.as_program`); once it is
    stopped, the signals are ignored from the block's end on, as it says its line and exits:
    put back at their default, a repeat killed it there (exit -15 to its parent, the line
    unsaid)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before: dict[int, Any] = {}
    start, depth = len(_taken), len(_starts)
    try:
        _starts.append(start)
        _seen_at.append(deferred_ctrl_c.seen())
        for signum in EXIT_CODES:
            if signal.getsignal(signum) is signal.SIG_DFL:
                before[signum] = signal.signal(signum, _on_stop)
        with deferred_ctrl_c.counting():   # (a Ctrl-C caught and gone: see _on_stop)
            yield
            if lost_interrupts.taken_back():
                # A stop taken, or a Ctrl-C, whose KeyboardInterrupt a finalizer dropped,
                # still to be raised again by lost_interrupts' thread, which had not run: the
                # command ended, exit 0, the stop lost (a pull's last weakref callbacks, a
                # short prune's: sigloss45; a Ctrl-C's so too: attack46). Raised here instead.
                raise KeyboardInterrupt
    except KeyboardInterrupt as exc:
        taken = _taken[start:]
        if not taken or isinstance(exc, Stopped) or start in _after_ctrl_c:
            raise
        raise Stopped(taken[0]) from None
    finally:
        ending = program and len(_taken) > start
        for signum, handler in before.items():
            signal.signal(signum, signal.SIG_IGN if ending else handler)
        del _taken[start:]
        del _starts[depth:]
        del _seen_at[depth:]
        del _lost[:]
        _after_ctrl_c[:] = [at for at in _after_ctrl_c if at < start]


__all__ = ["EXIT_CODES", "Stopped", "as_ctrl_c", "lost", "taken"]
