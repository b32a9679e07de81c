"""A Ctrl-C lands between any two bytecodes of the main thread: it must never leave a lock
held that other threads need (a ``pull -x`` interrupted while it followed its download hung
that way, about once in 15 tries on a loaded machine: drivestage.monitor).

The interrupt is raised where Python would raise it, at the start of a function the main
thread calls (a trace function raising KeyboardInterrupt on the K-th call), for every K
until the work ends by itself: a deterministic sweep instead of signals that land by chance.
"""
from __future__ import annotations

import os
import sys
import threading

import drivestage
from drivestage.download import Download, remove_partial
from drivestage.monitor import Flag, Monitor


class _InterruptAt:
    """A trace function for ``sys.settrace`` that raises KeyboardInterrupt at the start of
    the ``k``-th function called in this thread (``calls``: how many there were)."""

    def __init__(self, k: int):
        self.k, self.calls = k, 0

    def __call__(self, frame, event, arg):
        if event == "call":
            self.calls += 1
            if self.calls == self.k:
                sys.settrace(None)
                raise KeyboardInterrupt
        return None


def _interrupted_at(k: int, work) -> tuple[bool, int]:
    """Run ``work()`` with a Ctrl-C at its ``k``-th call: (whether it landed, calls seen)."""
    tracer = _InterruptAt(k)
    sys.settrace(tracer)
    try:
        work()
    except BaseException:
        # Not only KeyboardInterrupt: inside CPython's own Thread.start() an interrupt at
        # the wrong bytecode turns into "RuntimeError: release unlocked lock" (its Event's
        # Condition). What matters here is what is left behind.
        if tracer.calls < k:
            raise
        return True, tracer.calls
    finally:
        sys.settrace(None)
    return False, tracer.calls


def _ends_within(fn, seconds: float) -> bool:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    t.join(seconds)
    return not t.is_alive()


def test_a_ctrl_c_at_any_call_of_a_download_leaves_its_lock_free(emulator, drive_env,
                                                                 tmp_path):
    """At every call the main thread makes while a download runs, a Ctrl-C leaves the
    download's lock free (its streams, hash and a following extraction need it) and the
    download stops within seconds, its partial kept for a rerun."""
    data = os.urandom(256 << 10)
    emulator.add_file("d/f.bin", data)
    store = drivestage.connect()
    entry = store.resolve("d/f.bin")
    target = str(tmp_path / "f.bin")
    landed = 0
    for k in range(1, 2000):
        dl = Download(store, entry, target, jobs=2, chunk_size=64 << 10)
        hit, calls = _interrupted_at(k, dl.run)
        if not hit:
            assert open(target, "rb").read() == data
            break
        landed += 1
        assert not dl.lock._is_owned(), f"the download's lock is still held after a " \
            f"Ctrl-C at call {k}"
        assert _ends_within(dl.close, 10), f"the download did not stop after a Ctrl-C at " \
            f"call {k}"
        assert _ends_within(lambda: dl.lock.acquire() and dl.lock.release(), 10)
        remove_partial(dl.partial)  # the next one starts from zero again
    assert landed > 50  # the sweep went through the whole download


def test_a_ctrl_c_at_any_call_inside_a_monitor_leaves_it_free():
    """The lock itself, waited on and notified as the download does."""
    lock = Monitor()

    def work() -> None:
        for _ in range(3):
            with lock:
                lock.notify_all()
                lock.wait(0.001)
            with lock:
                with lock:  # reentrant
                    pass

    k = landed = 0
    while True:
        k += 1
        hit, _ = _interrupted_at(k, work)
        if not hit:
            break
        landed += 1
        assert not lock._is_owned(), f"held after a Ctrl-C at call {k}"
    assert landed >= 10


def test_a_flag_set_by_a_signal_handler_while_the_main_thread_waits_for_it():
    """``push --every`` and the emulator's command wait for a flag their signal handlers
    set. A handler runs at any bytecode of the main thread, also inside the flag's own wait
    while it holds the flag's lock: threading.Event then deadlocks on its own lock. Here the
    handler's moment is every call and line of the wait, in turn."""
    swept = 0
    for k in range(1, 1000):
        flag = Flag()
        state = {"events": 0, "done": False}

        def handler_at_k(frame, event, arg):
            state["events"] += 1
            if state["events"] == k:
                flag.set()  # what the commands' signal handlers do
            return handler_at_k

        def waiting() -> None:
            sys.settrace(handler_at_k)
            try:
                flag.wait(0.01)
            finally:
                sys.settrace(None)
            state["done"] = True

        t = threading.Thread(target=waiting, daemon=True)
        t.start()
        t.join(10)
        assert state["done"], f"the wait deadlocked when the handler ran at event {k}"
        if state["events"] < k:
            break  # every moment of a wait was tried
        swept += 1
    assert swept >= 10
