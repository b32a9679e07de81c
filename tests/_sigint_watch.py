"""A Ctrl-C (SIGINT) that reaches a pytest worker outside the test that sent it fails a test
that names where it came from (registered by tests/conftest.py).

Many tests press Ctrl-C in this process on purpose (``os.kill(os.getpid(), SIGINT)``,
``signal.pthread_kill`` of the main thread, ``_thread.interrupt_main()``): each is raised in
that test as a KeyboardInterrupt. One sent after its test ended (a thread the test left
running, a process signalling this one or its group) lands in whatever the worker does
next: in the next test, in pytest-xdist's wait for the next test (the worker's session ends:
"KeyboardInterrupt", no test named), or in a weakref callback as the worker ends ("Exception
ignored in: WeakSet._remove ... KeyboardInterrupt", twice in session 46's runs, nothing
failed). Between tests a handler of ours takes SIGINT and notes it instead; the next test's
setup fails with what is known of it: the test that ran last, and every SIGINT sent to this
process from in it since (audit events ``os.kill``, ``os.killpg``, ``signal.pthread_kill``;
``_thread.interrupt_main``, which has none, through a wrapper), with the sending thread and
the test that thread was started in. One sent from another process names no sender: the
kernel's siginfo (the sender's pid) does not reach a Python handler.
"""
from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import weakref
from typing import Any, Optional

import pytest


class SigintWatch:
    """The plugin: see the module doc."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.current: Optional[str] = None   # the test running (None: between tests)
        self.last: Optional[str] = None      # the test that ran last
        #: Threads alive after the test they were started in ended: thread -> that test.
        self.started_in: "weakref.WeakKeyDictionary[threading.Thread, str]" = \
            weakref.WeakKeyDictionary()
        self.sent: list[str] = []     # SIGINTs sent to this process while no test ran
        self.strays: list[str] = []   # what the next test's setup reports
        self.reported: list[str] = []   # the controller's: what its workers' ends said
        self.between_handler: Any = None   # the handler ours stands in for between tests
        self._before: set[threading.Thread] = set()
        sys.addaudithook(self._audit)
        real = _thread.interrupt_main

        def interrupt_main(*args: Any, **kwargs: Any) -> None:
            self._sending("_thread.interrupt_main()")
            real(*args, **kwargs)
        _thread.interrupt_main = interrupt_main

    # -- what is sent
    def _audit(self, event: str, args: tuple) -> None:
        if event not in ("os.kill", "os.killpg", "signal.pthread_kill") or \
                os.getpid() != self.pid or len(args) != 2 or args[1] != signal.SIGINT:
            return
        target = args[0]
        if event == "os.kill" and target in (self.pid, 0, -os.getpgrp()):
            self._sending(f"os.kill({target}, SIGINT)")
        elif event == "os.killpg" and target in (0, os.getpgrp()):
            self._sending(f"os.killpg({target}, SIGINT)")
        elif event == "signal.pthread_kill":   # (a thread of this process: it is the target)
            self._sending(f"signal.pthread_kill({target}, SIGINT)")

    def _sending(self, how: str) -> None:
        if os.getpid() != self.pid:   # (a child forked by a test: its own to send)
            return
        thread = threading.current_thread()
        origin = self.started_in.get(thread)
        if self.current is not None and origin is None:
            return   # (the running test's own: raised in it)
        where = f"while {self.current} ran" if self.current else \
            f"after {self.last} ended" if self.last else "before any test"
        said = f"{how} from thread {thread.name!r}" + (
            f", started in {origin}" if origin else "") + f", {where}"
        if self.current is not None:   # a thread an earlier test left: into this test
            self.strays.append(said)
        else:
            self.sent.append(said)

    # -- what arrives between tests
    def _arrived(self, signum: int, frame: Any) -> None:
        sent = "; ".join(self.sent) or "by no thread of this process (another process: " \
            "this one's pid or its process group)"
        self.strays.append(f"a SIGINT reached this pytest worker after {self.last} ended, "
                           f"sent {sent}")
        self.sent.clear()

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Any) -> Any:
        if self.between_handler is not None:
            if signal.getsignal(signal.SIGINT) == self._arrived:   # (a bound method: ==)
                signal.signal(signal.SIGINT, self.between_handler)
            self.between_handler = None
        if self.sent:   # (sent, not yet arrived: noted as it is)
            self.strays.extend(self.sent)
            self.sent.clear()
        self._before = set(threading.enumerate())
        self.current = item.nodeid
        try:
            yield
        finally:
            self.current, self.last = None, item.nodeid
            for thread in threading.enumerate():
                if thread not in self._before and thread not in self.started_in:
                    self.started_in[thread] = item.nodeid
            handler = signal.getsignal(signal.SIGINT)
            # Not after the worker's last test: execnet sends its own process a SIGINT when
            # the controller ends the session and the worker's own end (pytest_unconfigure's
            # collection, the temporary folders' removal) is not done within 5 s (a loaded
            # machine): it is meant to cut that short, as before (gateway_base's
            # _terminate_execution: a worker whose conftest's unconfigure took 7 s got its
            # KeyboardInterrupt 5 s in; session 46's two "KeyboardInterrupt in
            # WeakSet._remove" after [100%] fit it: raised in pytest_unconfigure's garbage
            # collection, after every result was sent).
            if nextitem is not None and handler is signal.default_int_handler and \
                    threading.current_thread() is threading.main_thread():
                self.between_handler = handler
                signal.signal(signal.SIGINT, self._arrived)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.strays:
            said, self.strays[:] = list(self.strays), []
            pytest.fail("a Ctrl-C (SIGINT) reached this worker outside the test that sent "
                        "it:\n  " + "\n  ".join(said), pytrace=False)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        said = self.strays + self.sent
        if said:
            text = "a Ctrl-C (SIGINT) reached this worker outside the test that sent it:" \
                "\n  " + "\n  ".join(said)
            sys.stderr.write(text + "\n")
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            # A pytest-xdist worker: its exit status was taken before this hook, and its
            # stderr reaches no report; what it puts here goes to the controller after it.
            out = getattr(session.config, "workeroutput", None)
            if out is not None:
                out["sigint_watch"] = text
        if self.reported:   # (the controller: what its workers said, above)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        text = getattr(node, "workeroutput", {}).get("sigint_watch")
        if text:
            self.reported.append(f"[{node.gateway.id}] {text}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.reported:
            terminalreporter.section("Ctrl-C outside its test", sep="=", red=True)
            for text in self.reported:
                terminalreporter.line(text)
