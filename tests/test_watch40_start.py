"""A stop's handler (or torch's SIGCHLD for a dead DataLoader worker) that raised inside
``Thread.start`` of the batch-wait watch (trainer/worker_deaths.py), right after CPython made
the thread: CPython's ``except Exception`` there drops the new thread from its list of
starting ones, and the thread dies at its first line printing ``Exception ignored in thread
started by … KeyError`` (seen twice in full runs: test_attackt31_*). The signal is delivered
at that exact moment through a profile hook on the C call that makes the thread."""
from __future__ import annotations

import signal
import sys
import threading

import pytest

from trainer.stopping import start_unbroken


class _Stop(Exception):
    pass


def _start_with_a_signal_as_the_thread_is_made(start) -> tuple[list, list]:
    """``start(thread)`` while a SIGHUP whose handler raises arrives the moment the C call
    that makes the thread returns (SIGHUP, held as SIGCHLD is: a child of this test process
    ending sends SIGCHLD at any moment); (what the handler raised out of start, the unraisable
    errors the new thread printed)."""
    ran, printed, raised, settled = threading.Event(), [], [], threading.Event()

    def unraisable(u):
        printed.append(u.exc_value)
        settled.set()

    def target():
        ran.set()
        settled.set()

    armed = [True]

    def handler(signum, frame):
        if armed.pop() if armed else False:   # (once: the one this test delivers)
            raise _Stop()

    def profile(frame, event, arg):
        if event == "c_return" and getattr(arg, "__name__", "") == "start_new_thread":
            sys.setprofile(None)
            signal.raise_signal(signal.SIGHUP)

    before = signal.signal(signal.SIGHUP, handler)
    hook, sys.unraisablehook = sys.unraisablehook, unraisable
    thread = threading.Thread(target=target, daemon=True)
    try:
        sys.setprofile(profile)
        try:
            start(thread)
        except (_Stop, KeyError) as exc:   # (KeyError: CPython's own, see the first test)
            raised.append(exc)
        finally:
            sys.setprofile(None)
        # (The thread was made either way: it runs its target or dies printing; start()
        # raised before it waited for the thread, whose ident may not be set yet.)
        assert settled.wait(10), "the thread neither ran nor died"
    finally:
        sys.unraisablehook = hook
        signal.signal(signal.SIGHUP, before)
    return raised, printed


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signals are handled in the main thread only")
def test_plain_start_loses_the_thread_as_the_handler_raises():
    """The fault as it is: pins that the hook lands where the handler broke start(). Which
    of CPython's two ``del _limbo[thread]`` comes second is a race between the threads: the
    new thread's (it dies printing KeyError) or start()'s own (a KeyError out of start)."""
    raised, printed = _start_with_a_signal_as_the_thread_is_made(lambda t: t.start())
    assert KeyError in [type(e) for e in raised + printed], (raised, printed)


def test_the_watch_starts_whole_and_the_stop_is_raised_after():
    raised, printed = _start_with_a_signal_as_the_thread_is_made(start_unbroken)
    assert len(raised) == 1 and printed == []   # the stop still raised; the thread ran


def test_the_thread_runs_with_no_signal_held():
    got = []
    thread = threading.Thread(target=lambda: got.append(
        signal.pthread_sigmask(signal.SIG_BLOCK, set())), daemon=True)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    start_unbroken(thread)
    thread.join(10)
    assert got == [mask] and signal.pthread_sigmask(signal.SIG_BLOCK, set()) == mask
