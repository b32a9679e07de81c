"""A connection a Ctrl-C abandoned while it was being made (its name lookup, its connect or
its TLS handshake run beside the main thread: ``interrupts.beside``) must never reach the
connection the next request uses: the thread that made it went on writing into that
connection's ``sock`` (httplib2's ``connect`` sets ``self.sock`` before it connects), so
the next request was sent on a socket still being connected, and the abandoned thread
closed, once done, whatever socket the connection then had - the live one.

The connect is held by a hook on ``socket.socket.connect`` (the abandoned thread's only:
it waits for an event), and the Ctrl-C is sent once it waits: nothing here is timed.
"""
from __future__ import annotations

import signal
import socket
import threading

import pytest

from _leaks import our_threads as _ours, sockets as _sockets

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX threads")


class _HeldConnect:
    """``socket.socket.connect`` whose first call in a connect thread, once armed, waits for
    ``let_go`` (after setting ``holding``); every other call is the socket's own."""

    def __init__(self, monkeypatch) -> None:
        self.holding, self.let_go, self.done = (threading.Event(), threading.Event(),
                                                threading.Event())
        self.armed = False
        real = socket.socket.connect
        hook = self

        def connect(sock, address):
            held = hook.armed and threading.current_thread().name == "drivestage-connect"
            if held:
                hook.armed = False
                hook.holding.set()
                assert hook.let_go.wait(60)
            try:
                return real(sock, address)
            finally:
                if held:
                    hook.done.set()
        monkeypatch.setattr(socket.socket, "connect", connect)


def _main_interrupted_when(event: threading.Event) -> threading.Thread:
    main = threading.main_thread().ident

    def run() -> None:
        assert event.wait(60)
        signal.pthread_kill(main, signal.SIGINT)
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _connect_threads_ended() -> None:
    for thread in threading.enumerate():
        if thread.name == "drivestage-connect":
            thread.join(30)
            assert not thread.is_alive()


def _connections(emulator) -> list[int]:
    return [r.connection for r in emulator.requests]


def test_an_abandoned_connect_never_reaches_the_next_request_s_connection(emulator, store,
                                                                         monkeypatch):
    emulator.add_file("data/a.txt", b"hello")
    emulator.add_file("data/b.txt", b"hello!")
    hook = _HeldConnect(monkeypatch)
    hook.armed = True
    ctrl_c = _main_interrupted_when(hook.holding)
    try:
        with pytest.raises(KeyboardInterrupt):
            store.resolve("data/a.txt")
    finally:
        ctrl_c.join(60)
    assert emulator.requests == [], "nothing was sent: the connection was being made"
    try:
        # The next request, while the abandoned connect still waits: on a connection of its
        # own, sent once, answered.
        assert store.resolve("data/a.txt").size == 5
        sent = len(emulator.requests)
        assert sent == 2 and len(set(_connections(emulator))) == 1
    finally:
        hook.let_go.set()
    assert hook.done.wait(60)
    _connect_threads_ended()
    # The abandoned connect, done, closed its own socket only: the next request goes on the
    # same connection as those before it, sent once.
    assert store.resolve("data/b.txt").size == 6
    assert len(emulator.requests) == sent + 1
    assert len(set(_connections(emulator))) == 1, \
        "the abandoned connect closed (or replaced) the live connection's socket"


def test_an_http_kept_across_a_ctrl_c_in_its_connect_sends_the_next_request_once(emulator,
                                                                               monkeypatch):
    """httplib2 keeps an ``Http``'s connection for its next request (a caller of
    ``build_http`` keeps the ``Http``, as httplib2 means it to be kept): the next request
    went out on the socket the abandoned connect was still connecting - or failed on it -
    and the abandoned connect, done, closed the socket the connection then had."""
    from drivestage.drive.connections import bounded_connection, build_http

    emulator.add_file("data/a.txt", b"hello")
    url = emulator.url.rstrip("/") + "/drive/v2/files?q=trashed%3Dfalse"
    http = build_http(30.0)
    headers = {"authorization": "Bearer test-token"}
    hook = _HeldConnect(monkeypatch)
    hook.armed = True
    ctrl_c = _main_interrupted_when(hook.holding)
    try:
        with pytest.raises(KeyboardInterrupt):
            http.request(url, headers=headers, connection_type=bounded_connection(url))
    finally:
        ctrl_c.join(60)
    try:
        resp, _ = http.request(url, headers=headers, connection_type=bounded_connection(url))
        assert resp.status == 200
    finally:
        hook.let_go.set()
    assert hook.done.wait(60)
    _connect_threads_ended()
    resp, _ = http.request(url, headers=headers, connection_type=bounded_connection(url))
    assert resp.status == 200
    assert len(emulator.requests) == 2, "a request was sent twice"
    assert len(set(_connections(emulator))) == 1, \
        "the abandoned connect closed (or replaced) the live connection's socket"
    http.close()


@pytest.mark.skipif(not __import__("os").path.isdir("/proc/self/fd"), reason="Linux's /proc")
def test_many_requests_interrupted_in_their_connect_or_their_answer_leave_nothing_open(
        emulator, store):
    """20 requests, each ended by a Ctrl-C in its connect (held, then let go) or while
    Drive held its answer: no thread of ours and no socket is left once the held steps
    end, and the store goes on, each request sent once."""
    emulator.add_file("data/a.txt", b"hello")
    threads, sockets = _ours(), _sockets()
    for i in range(20):
        if i % 2 == 0:
            patched = pytest.MonkeyPatch()   # (undone each round: the fixtures' stays)
            hook = _HeldConnect(patched)
            hook.armed = True
            ctrl_c = _main_interrupted_when(hook.holding)
        else:
            arrived = threading.Event()
            plan = emulator.faults.plan

            def planned(command, target, _plan=plan, _arrived=arrived, **kwargs):
                out = _plan(command, target, **kwargs)
                _arrived.set()
                return out
            emulator.faults.plan = planned
            emulator.faults.latency(600, method="GET", times=1)
            ctrl_c = _main_interrupted_when(arrived)
        try:
            with pytest.raises(KeyboardInterrupt):
                store.resolve("data/a.txt")
        finally:
            ctrl_c.join(60)
            if i % 2 == 0:
                hook.let_go.set()
                assert hook.done.wait(60)
                patched.undo()
            else:
                emulator.faults.plan = plan
                emulator.faults.release_holds()
                emulator.faults.serving()
    _connect_threads_ended()
    assert not _ours() - threads
    sent = len(emulator.requests)
    assert sent == 10, "a request cut by the Ctrl-C was sent again"
    assert store.resolve("data/a.txt").size == 5
    # The emulator's ends of the connections close as its handlers see the client's go
    # (a loaded machine's handlers take their time): counted once they all ended, the
    # store's kept-alive connection closed first.
    store.transport.drop()
    for thread in list(emulator._server.handlers):
        thread.join(60)
    assert _sockets() <= sockets, f"{_sockets() - sockets} sockets left open"
