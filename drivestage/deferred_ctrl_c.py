"""A Ctrl-C held back while a clean-up runs (:func:`deferred`; a temporary folder's removal:
:class:`TemporaryFolder`), one a stop signal's handler raises (:func:`interrupt`), and the
Ctrl-Cs a command was given (:func:`counting`): moved from :mod:`drivestage.interrupts`
(which re-exports deferred and interrupt), whose locks and waits they are not.

Why a count: a command ends with the code of the first signal it was given (130 for a
Ctrl-C, 143 for a SIGTERM: :mod:`drivestage.stop_signals`). A SIGTERM that came during the
clean-up of a Ctrl-C whose KeyboardInterrupt had been caught (code that notes it and
cleans up after its ``except`` block) or was held back by :func:`deferred` looked like the
first signal there (no KeyboardInterrupt being handled) and ended the command with 143
(lefts43's leftovers): the count and :func:`held_back` say a Ctrl-C came first.
"""
from __future__ import annotations

import signal
import tempfile
import threading
from contextlib import contextmanager
from typing import Any, Iterator

#: The signal module's C functions themselves: its Python wrappers turn each answer into an
#: enum (a raised and caught ValueError for every handler that is a function), and a pull
#: entered :func:`deferred` some twenty times, three such calls each: 10 % of a small pull's
#: CPU, and every call of them a place a Ctrl-C could land. SIG_DFL and SIG_IGN come back as
#: plain ints (only compared here with handlers that are functions).
_C: Any = getattr(signal, "_signal", signal)   # (the C module the signal module imports)
_getsignal, _setsignal = _C.getsignal, _C.signal
#: What each :func:`deferred` block under way holds back, innermost last (where SIGINT is
#: ignored, a background job's, only :func:`interrupt` adds to it).
_holding: list[list[int]] = []
#: Ctrl-Cs taken by :func:`_counted`, or held back by :func:`deferred` (:func:`_noted`) (main
#: thread only: one int, no lock in a handler).
_seen = [0]


def _counted(signum: int, frame: Any) -> None:
    """Python's own SIGINT handler (KeyboardInterrupt), the Ctrl-C counted first."""
    _seen[0] += 1
    signal.default_int_handler(signum, frame)


def _noted(got: list[int], signum: int, frame: Any) -> None:
    """:func:`deferred`'s SIGINT handler: the Ctrl-C held back, and counted (:func:`seen`)
    where it is one, not :func:`interrupt`'s (which passes no frame): past the block's own
    end of holding (``held_back()`` False), until its KeyboardInterrupt is raised, a SIGTERM
    read as the first signal, and the command ended with 143 (attack45)."""
    got.append(signum)
    if frame is not None:
        _seen[0] += 1


def seen() -> int:
    """How many Ctrl-Cs :func:`counting` blocks counted in this process so far."""
    return _seen[0]


def held_back() -> bool:
    """Whether the :func:`deferred` block under way holds a Ctrl-C (or an
    :func:`interrupt`) back, to be raised at its end."""
    return bool(_holding and _holding[-1])


@contextmanager
def counting() -> Iterator[None]:
    """Within the block, each Ctrl-C is counted (:func:`seen`) as it raises its
    KeyboardInterrupt; only in the main thread, where SIGINT is at Python's own handler
    (a host's handler, or SIGINT ignored, is left alone). The handler from before is put
    back at its end, unless another was set meanwhile."""
    if threading.current_thread() is not threading.main_thread() or \
            _getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    _setsignal(signal.SIGINT, _counted)
    try:
        yield
    finally:
        if _getsignal(signal.SIGINT) is _counted:
            _setsignal(signal.SIGINT, signal.default_int_handler)


def interrupt() -> None:
    """KeyboardInterrupt now, or at the end of the :func:`deferred` block under way (a
    signal handler's: :mod:`drivestage.stop_signals`)."""
    handler = _getsignal(signal.SIGINT)
    if callable(handler) and handler is not signal.default_int_handler and \
            handler is not _counted:   # (inline, as below: no call a Ctrl-C could cut)
        handler(signal.SIGINT, None)   # (deferred's: noted, raised at its end)
    elif not _holding:
        raise KeyboardInterrupt
    else:
        _holding[-1].append(signal.SIGINT)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold a Ctrl-C (or :func:`interrupt`) back while the block runs, then raise it
    (KeyboardInterrupt). Only the main thread receives signals, and only Python's own SIGINT
    handler (or :func:`counting`'s) is replaced: elsewhere, inside another :func:`deferred`,
    or under a handler the caller installed (``push --every``'s, the trainer's), the block
    runs as it is."""
    handler = _getsignal(signal.SIGINT)
    # (Python's own handler, or _counted, which raises as it does: replaced for the block.
    # Inline: a function called here is a place a Ctrl-C lands before anything is held.)
    if threading.current_thread() is not threading.main_thread() or callable(handler) and \
            handler is not signal.default_int_handler and handler is not _counted or _holding:
        yield
        return
    got: list[int] = []
    try:
        # (Listed inside the try, and taken off by identity: a Ctrl-C that left it listed
        # would have every later deferred() of the process hold nothing.)
        _holding.append(got)   # (SIGINT ignored: only interrupt() adds to it, and looks here)
        if callable(handler):
            _setsignal(signal.SIGINT, lambda signum, frame: _noted(got, signum, frame))
        yield
    finally:
        if _holding and _holding[-1] is got:   # (first: the handler below still notes)
            _holding.pop()
        if callable(handler):
            _setsignal(signal.SIGINT, handler)
        if got:
            raise KeyboardInterrupt


class TemporaryFolder(tempfile.TemporaryDirectory[str]):
    """:class:`tempfile.TemporaryDirectory` whose removal at the block's end runs under
    :func:`deferred`. Its clean-up detaches the folder's finalizer, then removes the files
    one by one: a Ctrl-C (or a stop signal taken as one) in between cut it, and what was not
    yet removed stayed in TMPDIR for good (``trainer status``'s look inside a checkpoint of
    gigabytes: attack45's leftover, lefts45)."""

    def __exit__(self, *exc: Any) -> None:
        with deferred():
            self.cleanup()


__all__ = ["TemporaryFolder", "counting", "deferred", "held_back", "interrupt", "seen"]
