"""attackcli41: ``start_unbroken`` (trainer/stopping.py) against a signal sent to the
process, with other threads alive, as a trainer always has them (TensorBoard's writer,
torch's intra-op pool, the Drive pushes).

test_watch40_start delivered its signal to the main thread itself (``raise_signal``), which
the mask held back. A real one (torch's SIGCHLD for a DataLoader worker the OOM killer
ended, a ``kill -TERM PID``) is sent to the process: the kernel gives it to a thread that
does not hold it back, and CPython then runs the Python handler in the main thread at its
next check, wherever it is, mask or no mask: inside ``Thread.start`` again, after the new
thread was made. The watch thread died printing ``Exception ignored in thread started by …
KeyError`` (or start raised CPython's KeyError), as before watch40's fix.

The signal is made to land at that moment without a race: its C-level handler, run by
another thread, writes to the wakeup fd, which the profile hook (on the return of the C call
that makes the thread) waits to read; the Python handler then runs in the hook, as it would
at the main thread's next check there.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

import pytest

from trainer.stopping import start_unbroken


class _Stop(Exception):
    """What torch's SIGCHLD handler raises in a loader's wait: an Exception (RuntimeError),
    which CPython's ``except Exception`` in ``Thread.start`` takes."""


def _start_as_a_process_signal_arrives(start, signum=signal.SIGHUP):
    """``start(thread)`` while ``signum``, sent to the process, lands as the thread is made;
    (what came out of start, the unraisable errors printed, whether the thread ran)."""
    ran, raised, printed, settled = threading.Event(), [], [], threading.Event()
    idle = threading.Event()
    other = threading.Thread(target=idle.wait, daemon=True)   # (a thread that takes it)
    other.start()
    armed = [True]

    def handler(s, frame):
        if armed.pop() if armed else False:   # (once: the one this test sends)
            raise _Stop()

    r, w = os.pipe()
    os.set_blocking(w, False)

    def profile(frame, event, arg):
        if event == "c_return" and getattr(arg, "__name__", "") == "start_new_thread":
            sys.setprofile(None)
            os.kill(os.getpid(), signum)
            os.read(r, 1)   # (its C handler ran, in whichever thread: the flag is up)

    before = signal.signal(signum, handler)
    wakeup = signal.set_wakeup_fd(w)
    def unraisable(u):
        printed.append(u.exc_value)
        settled.set()

    def target():
        ran.set()
        settled.set()

    hook, sys.unraisablehook = sys.unraisablehook, unraisable
    thread = threading.Thread(target=target, daemon=True)
    try:
        sys.setprofile(profile)
        try:
            start(thread)
        except (_Stop, KeyError) as exc:
            raised.append(exc)
        finally:
            sys.setprofile(None)
        # (It runs its target or dies printing; start() may have raised before it waited
        # for the thread to begin.)
        assert settled.wait(10), "the thread neither ran nor died"
    finally:
        sys.unraisablehook = hook
        signal.set_wakeup_fd(wakeup)
        signal.signal(signum, before)
        idle.set()
        other.join(10)
        os.close(r)
        os.close(w)
    return raised, printed, ran.is_set()


pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signals are handled in the main thread only")


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGCHLD])
def test_the_watch_starts_whole_as_a_signal_sent_to_the_process_lands(signum):
    raised, printed, ran = _start_as_a_process_signal_arrives(start_unbroken, signum)
    assert [type(e) for e in raised] == [_Stop] and printed == [] and ran


def test_two_signals_held_meanwhile_are_both_delivered_after():
    """One handler raising (torch's SIGCHLD), one asking a stop (a SIGTERM) in the same
    moment: the raise comes out of start, and the other is not lost."""
    got, raised = [], []

    def chld(s, frame):
        got.append(s)
        raise _Stop()

    def term(s, frame):
        got.append(s)

    def profile(frame, event, arg):
        if event == "c_return" and getattr(arg, "__name__", "") == "start_new_thread":
            sys.setprofile(None)
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGCHLD)

    before = {s: signal.signal(s, h) for s, h in ((signal.SIGCHLD, chld),
                                                  (signal.SIGTERM, term))}
    ran = threading.Event()
    thread = threading.Thread(target=ran.set, daemon=True)
    try:
        sys.setprofile(profile)
        try:
            start_unbroken(thread)
        except _Stop as exc:
            raised.append(exc)
        finally:
            sys.setprofile(None)
        signal.pthread_sigmask(signal.SIG_BLOCK, set())   # (a check: anything left runs)
        thread.join(10)
    finally:
        for s, h in before.items():
            signal.signal(s, h)
    assert len(raised) == 1 and sorted(got) == sorted([signal.SIGCHLD, signal.SIGTERM])
    assert ran.is_set()
