"""Ctrl-C as a hostile user presses it, in a process that lives on (a notebook): after the
interrupted call, running it again must work, and no other thread may be left waiting for
good (drivestage.interrupts)."""
from __future__ import annotations

import threading

import torch

from drivestage.interrupts import Monitor
from tests.test_interrupt_locks import _interrupted_at
from trainer.state import Position
from trainer.writer import BackgroundWriter, SaveJob


def _waiting_thread(lock: Monitor, state: dict) -> threading.Thread:
    """A thread inside ``lock.wait_for`` (no timeout) when this returns."""
    inside = threading.Event()

    def wait() -> None:
        with lock:
            inside.set()
            lock.wait_for(lambda: state["go"])

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    inside.wait(5)
    with lock:  # free only once the thread waits (its wait released it)
        pass
    return t


def test_a_ctrl_c_inside_notify_all_never_leaves_a_waiting_thread_behind():
    """The main thread sets what another thread waits for and notifies it; a Ctrl-C lands at
    each place in turn, then the cell is run again. The waiting thread must go on: notify
    took it off the list of waiters before it woke it, so a Ctrl-C between the two left it
    waiting for good, out of reach of any later notify (the trainer's writer thread waits
    so for the next checkpoint; the next submit then queued it for ever, and close() hung)."""
    k = landed = 0
    while True:
        k += 1
        lock, state = Monitor(), {"go": False}
        waiter = _waiting_thread(lock, state)

        def work() -> None:
            with lock:
                state["go"] = True
                lock.notify_all()

        hit, _ = _interrupted_at(k, work, opcodes=True, allowed=KeyboardInterrupt)
        work()  # run again, as the user does
        waiter.join(5)
        assert not waiter.is_alive(), f"the waiting thread was never woken (Ctrl-C at {k})"
        if not hit:
            break
        landed += 1
    assert landed >= 5
