"""``interrupts.beside``: what ``fn`` made is closed (``left()``) exactly once when the
caller is gone, whenever the Ctrl-C came: before ``fn`` ended (in its thread) or after
(in the caller). One that came as ``fn`` had just ended dropped what it made - a connection
left to the collector, open until then."""
from __future__ import annotations

import threading

import pytest


def test_a_ctrl_c_once_fn_has_ended_still_closes_what_it_made():
    from drivestage import interrupts

    go, made, closed = threading.Event(), [], []

    def fn() -> object:
        assert go.wait(30)
        made.append(object())
        return made[-1]

    def between() -> None:
        # The caller's first short wait ended: let fn end, wait for its thread to be done,
        # then the Ctrl-C comes.
        go.set()
        for thread in threading.enumerate():
            if thread.name == "conn35-beside":
                thread.join(30)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupts.beside(fn, "conn35-beside", lambda: closed.append(made[-1]), between)
    assert len(made) == 1 and closed == made


def test_a_ctrl_c_before_fn_ends_closes_what_it_made_in_its_thread_once():
    from drivestage import interrupts

    go, ended, made, closed = threading.Event(), threading.Event(), [], []

    def fn() -> object:
        assert go.wait(30)
        made.append(object())
        return made[-1]

    def left() -> None:
        closed.append(made[-1])
        ended.set()

    def between() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupts.beside(fn, "conn35-beside", left, between)
    go.set()
    assert ended.wait(30) and closed == made and len(made) == 1
