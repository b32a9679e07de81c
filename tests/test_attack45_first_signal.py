"""attack45: the first signal decides a command's exit (lefts44's rule) at every point of a
:func:`drivestage.interrupts.deferred` block's end.

A Ctrl-C held back by ``deferred()`` (noted by its handler, raised at its end), then a
SIGTERM while that block ends: after the block has taken itself off the list of holders
(``held_back()`` False) and before its KeyboardInterrupt is raised, the SIGTERM read as the
first signal (the Ctrl-C was noted, not counted) and the command ended "Interrupted by
SIGTERM.", 143. The SIGTERM's handler is run at each place of the block's end where Python
could run it (every bytecode of the generator's resumption), as the signal would."""
from __future__ import annotations

import signal
import sys

from drivestage import deferred_ctrl_c, stop_signals


class _SigtermAt:
    """A trace function that runs the SIGTERM handler at the ``k``-th bytecode of
    ``deferred()``'s end (its generator resumed after its ``yield``)."""

    def __init__(self, k: int):
        self.k, self.seen, self.resumed, self.fired = k, 0, 0, False

    def __call__(self, frame, event, arg):
        code = frame.f_code
        if event == "call" and code.co_name == "deferred" and \
                code.co_filename.endswith("deferred_ctrl_c.py"):
            self.resumed += 1
            if self.resumed == 1:   # (traced from inside the block on: its end's resumption)
                frame.f_trace_opcodes, frame.f_trace_lines = True, False
                return self._opcode
        return None

    def _opcode(self, frame, event, arg):
        if event == "opcode":
            self.seen += 1
            if self.seen == self.k and not self.fired:
                self.fired = True
                signal.getsignal(signal.SIGTERM)(signal.SIGTERM, frame)
        return self._opcode


def _ended(k: int) -> tuple[type, bool]:
    """How an ``as_ctrl_c`` block ends whose ``deferred()`` took a Ctrl-C, then a SIGTERM at
    the ``k``-th bytecode of its end: (the exception's type, whether the SIGTERM came)."""
    tracer = _SigtermAt(k)
    try:
        with stop_signals.as_ctrl_c():
            with deferred_ctrl_c.deferred():
                signal.getsignal(signal.SIGINT)(signal.SIGINT, sys._getframe())   # (Ctrl-C)
                sys.settrace(tracer)
            sys.settrace(None)
    except KeyboardInterrupt as exc:
        sys.settrace(None)
        return type(exc), tracer.fired
    finally:
        sys.settrace(None)
    raise AssertionError("the held-back Ctrl-C was never raised")


def test_a_sigterm_as_a_deferred_block_ends_leaves_the_ctrl_cs_exit():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)   # (a terminal's)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        ends, k = {}, 0
        while True:
            k += 1
            assert k < 500, "the block's end never ran out of places"
            kind, fired = _ended(k)
            if not fired:
                break   # (past its end: every place was met)
            ends[k] = kind.__name__
        assert len(ends) > 5, ends
        # Each: the Ctrl-C's plain KeyboardInterrupt (130, "Interrupted."), never Stopped.
        assert {k: v for k, v in ends.items() if v != "KeyboardInterrupt"} == {}, ends
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert not deferred_ctrl_c.held_back() and deferred_ctrl_c._holding == []
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
