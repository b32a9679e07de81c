"""A Ctrl-C that Python would drop: raised inside a finalizer, it is lost.

Python runs a signal's handler in the main thread at its next check for one, and that can be
the first line of a weakref callback or a ``__del__``: importlib's callback that forgets a
module's lock (``_get_module_lock.<locals>.cb``) runs after each module a command imports
on its way in, hundreds of them. A KeyboardInterrupt raised there is "Exception ignored"
(printed, then dropped): the command went on as if no Ctrl-C had come (a pull interrupted
as it loaded its Drive client downloaded on; in a test whose hash-rate thread hashes for
hours, it waited for that thread for good, once in a full run of the suite).
:func:`keep` makes such a KeyboardInterrupt (a SIGTERM's too: :mod:`drivestage.stop_signals`)
come again in the main thread, as if its signal came again (``_thread.interrupt_main``):
the command ends as at any other moment. Only for the program (the console script), never
a host's process, and only while the command runs (:func:`kept`): at the process's exit one
is Python's again, said and dropped. (Re-sent there, a Ctrl-C that stopped one atexit
callback stopped the next one too, and that one's the next: every exit callback after it
was cut without a word: attacksig42.)

io's finalizer is worse: whatever the ``close()`` it calls on a stream dropped unclosed
raises, a KeyboardInterrupt too, is cleared without a word and never reaches
``sys.unraisablehook`` (CPython's ``iobase_finalize``). An HTTP answer is dropped so as the
next request on its connection begins (``http.client``'s ``putrequest``), and its
``close()`` is Python code: a push's SIGTERM handled there was lost, and every later one
was a repeat, only noted (:mod:`drivestage.stop_signals`): the push sent its whole upload
through them and exited 0 (sigloss45). :class:`ClosedWhenDropped` closes such a stream in a
``__del__`` of its own, where the KeyboardInterrupt is raised as any finalizer's.
"""
from __future__ import annotations

import _thread
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from drivestage.fork_drop import free_in_forks

_KEEPING: list[None] = []   # one per kept() block under way
#: One token per interrupt dropped in a finalizer whose thread has not raised it again yet
#: (:func:`taken_back`), under :data:`_PENDING_LOCK` (a C lock: no bytecode in its ``with``).
_PENDING: list[object] = []
_PENDING_LOCK = free_in_forks(_thread.allocate_lock())   # (free in a fork's child)


def _unraisable(hook: Any) -> Any:
    def unraisable(info: Any) -> None:
        if _KEEPING and info.exc_type is not None and \
                issubclass(info.exc_type, KeyboardInterrupt):
            # Tripped again from a thread of its own, not here: tripped in this hook, the
            # handler ran at the hook's next line, and its KeyboardInterrupt was dropped
            # again ("Exception ignored in sys.unraisablehook"). That thread trips it once
            # this one gives up the GIL, back in the code the finalizer interrupted; a
            # handler run in another finalizer is lost again, and comes here again.
            # Raised by the SIGINT handler of that moment (deferred()'s notes it). Where
            # SIGINT is ignored (a background job) only a pull's SIGTERM or SIGHUP raises
            # one: that signal is sent again (a simulated SIGINT did nothing there).
            signum: Optional[int] = signal.SIGINT
            if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
                stops = sys.modules.get("drivestage.stop_signals")   # (none taken if not)
                signum = stops.lost() if stops is not None else None
            token = object()
            try:
                if signum is not None:
                    with _PENDING_LOCK:
                        _PENDING.append(token)
                    _thread.start_new_thread(_resend, (signum, token))
                    return
            except RuntimeError:   # (no new thread at the interpreter's exit)
                with _PENDING_LOCK:
                    if token in _PENDING:
                        _PENDING.remove(token)
        hook(info)

    unraisable.keeps_ctrl_c = True  # type: ignore[attr-defined]
    return unraisable


def _resend(signum: int, token: object) -> None:
    with _PENDING_LOCK:   # (sent, or taken back by the block that ended: never both)
        if token not in _PENDING:
            return
        _PENDING.remove(token)
        if not _KEEPING:   # (the command ended meanwhile: its process exits, as it would)
            return
        if signum == signal.SIGINT:
            _thread.interrupt_main()
        else:   # (its handler is stop_signals', or ignored once the pull's block ended)
            signal.pthread_kill(threading.main_thread().ident or 0, signum)


def taken_back() -> bool:
    """Whether an interrupt dropped in a finalizer had not been raised again yet; it will
    not be now. For a block that ends as this is asked and raises it itself
    (:func:`drivestage.stop_signals.as_ctrl_c`): its thread could run only once the command
    had ended, and the stop was lost (a pull's last weakref callbacks: sigloss45)."""
    with _PENDING_LOCK:
        had = bool(_PENDING)
        del _PENDING[:]
    return had


@contextmanager
def kept() -> Iterator[None]:
    """Within the block (the command's run), a KeyboardInterrupt raised in a finalizer is
    raised again in the main thread instead of being printed and dropped (see the module
    doc)."""
    if not getattr(sys.unraisablehook, "keeps_ctrl_c", False):
        sys.unraisablehook = _unraisable(sys.unraisablehook)
    _KEEPING.append(None)
    try:
        yield
    finally:
        _KEEPING.pop()


class ClosedWhenDropped:
    """A mixin for a stream (``io.IOBase``) whose ``close()`` runs Python code: dropped
    unclosed, it is closed by this ``__del__``, not by io's finalizer, so that a Ctrl-C
    raised in its ``close()`` reaches :func:`kept`'s hook (see the module doc). An error
    closing it is silenced there, as io's finalizer does."""

    def __del__(self) -> None:
        stream: Any = self   # (an io stream: see the class doc)
        try:
            if not stream.closed:
                stream.close()
        except Exception:   # (a KeyboardInterrupt is not: raised, then kept)
            pass


__all__ = ["ClosedWhenDropped", "kept", "taken_back"]
