"""A Ctrl-C the kernel gives to another thread still ends the main thread's wait.

A process's signal (a terminal's Ctrl-C, ``kill``) goes to any of its threads not blocking
it; Python runs the handler in the main thread only when that thread runs bytecode. A main
thread blocked in ``flock()`` or a lock with no end slept through it until what it waited for
came: the CI's run of test_attackz27_ctrlc saw a push waiting for the mirror above it go on
waiting for the mirror's whole push. Here the signal is sent to a helper thread
(``pthread_kill``), which is what the kernel does when the main thread has another signal
pending; each wait must end with KeyboardInterrupt while what it waits for is still held.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Callable

import pytest

from drivestage import locks
from drivestage.extract.statedir import state_lock
from drivestage.interrupts import Flag

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX threads")


def _interrupted_elsewhere(started: threading.Event) -> threading.Thread:
    """A thread that, once ``started`` is set, sends SIGINT to itself: not to the main one."""
    def run() -> None:
        assert started.wait(60)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _ends_while_held(hold: Callable[[threading.Event, threading.Event], None],
                     wait: Callable[[], object], started: threading.Event) -> None:
    """``hold(taken, let_go)`` holds something in a thread until ``let_go`` (20 s at most);
    ``wait()`` in the main thread waits for it and sets ``started`` as it begins waiting.
    The Ctrl-C must end the wait before ``let_go``: it was raised while still held."""
    taken, let_go, released = threading.Event(), threading.Event(), threading.Event()

    def holding() -> None:
        try:
            hold(taken, let_go)
        finally:
            released.set()
    holder = threading.Thread(target=holding)
    holder.start()
    try:
        assert taken.wait(60)
        other = _interrupted_elsewhere(started)
        with pytest.raises(KeyboardInterrupt):
            wait()
        still_held = not released.is_set()
        other.join(60)
    finally:
        let_go.set()
        holder.join(60)
    assert still_held, "the wait ended only when the holder let go"


class _Said(logging.Handler):
    def __init__(self, event: threading.Event):
        super().__init__(logging.WARNING)
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if "waiting for it" in record.getMessage():
            self.event.set()


@pytest.fixture
def said_waiting():
    started = threading.Event()
    handler = _Said(started)
    logging.getLogger("drivestage").addHandler(handler)
    try:
        yield started
    finally:
        logging.getLogger("drivestage").removeHandler(handler)


def _say_started(started: threading.Event) -> None:
    """For waits that say nothing: the signal goes as the main thread starts waiting (the
    wait starts right after; a signal before it is raised at its first bytecode too)."""
    started.set()


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="POSIX flock")
def test_a_push_waiting_for_the_tree_lock_of_another_push_in_this_process(local_state,
                                                                           said_waiting):
    lineage = [("drive|root/runs/exp1", "drive:runs/exp1"), ("drive|root/runs", "drive:runs")]

    def hold(taken: threading.Event, let_go: threading.Event) -> None:
        with locks.tree_lock(lineage[1:]):   # the mirror of drive:runs
            taken.set()
            let_go.wait(20)

    def wait() -> None:
        with locks.tree_lock(lineage):
            pass

    _ends_while_held(hold, wait, said_waiting)
    with locks.tree_lock(lineage):   # and nothing of the interrupted wait is left held
        pass


def test_a_push_waiting_for_another_push_into_its_place_in_this_process(local_state,
                                                                         said_waiting):
    def hold(taken: threading.Event, let_go: threading.Event) -> None:
        with locks.place_lock("drive|root/x", "drive:x"):
            taken.set()
            let_go.wait(20)

    def wait() -> None:
        with locks.place_lock("drive|root/x", "drive:x"):
            pass

    _ends_while_held(hold, wait, said_waiting)
    with locks.place_lock("drive|root/x", "drive:x"):
        pass


def test_a_pull_waiting_for_another_extraction_into_its_folder(tmp_path):
    started = threading.Event()

    def hold(taken: threading.Event, let_go: threading.Event) -> None:
        with state_lock(str(tmp_path), "x.lock", lambda: None) as got:
            assert got
            taken.set()
            let_go.wait(20)

    def wait() -> None:
        with state_lock(str(tmp_path), "x.lock", lambda: started.set()):
            pass

    _ends_while_held(hold, wait, started)
    with state_lock(str(tmp_path), "x.lock", None) as got:
        assert got


def test_the_main_thread_waiting_on_a_flag_with_no_end():
    started, flag = threading.Event(), Flag()

    def hold(taken: threading.Event, let_go: threading.Event) -> None:
        taken.set()
        let_go.wait(20)
        flag.set()   # what the wait waited for comes only now

    def wait() -> None:
        _say_started(started)
        flag.wait()

    _ends_while_held(hold, wait, started)
