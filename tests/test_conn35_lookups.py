"""A name lookup that does not end (a resolver that never answers: a stuck NSS module, a
VPN's DNS gone) ran in the thread that made the connection, where nothing ends it: the
request waited for it for good (no HTTP timeout applies to ``getaddrinfo``), and every
request a Ctrl-C ended meanwhile left one more thread waiting in it (a notebook's cells, a
mirror's abandoned pushes). A lookup of a host is shared now by everyone who asks while it
is under way, and waited for the HTTP timeout at most.

The resolver is a hook on ``socket.getaddrinfo`` for one made-up name: it waits for an
event, then answers the emulator's address. Nothing here is timed but the HTTP timeout.
"""
from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest

from _leaks import our_threads as _ours, sockets as _sockets
from trainer.stuck import current_frames   # (sys._current_frames() can deadlock: see there)

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX threads")

HUNG = "localhost"   # (the emulator answers loopback names only)


class _HungResolver:
    def __init__(self, monkeypatch, emulator) -> None:
        self.let_go, self.asked = threading.Event(), threading.Event()
        self.calls = 0
        real = socket.getaddrinfo
        port = int(emulator.url.rsplit(":", 1)[1].strip("/"))

        def getaddrinfo(host, *args, **kwargs):
            if host != HUNG:
                return real(host, *args, **kwargs)
            self.calls += 1
            self.asked.set()
            assert self.let_go.wait(60), "the resolver was never let go"
            return real("127.0.0.1", port, *args[1:], **kwargs)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        self.url = f"http://{HUNG}:{port}/"


def _in_the_lookup(main: int) -> bool:
    """The main thread waits in a short wait (``interrupts._sliced``) of the lookup."""
    frame = current_frames().get(main)
    if frame is None or frame.f_code.co_name != "_sliced":
        return False
    while frame is not None and frame.f_code.co_name != "addresses":
        frame = frame.f_back
    return frame is not None


def _main_waits_in_a_slice(asked: threading.Event) -> threading.Thread:
    """A thread that, once ``asked`` is set and the main thread waits in the lookup's short
    wait for 20 looks in a row, sends the main thread a SIGINT; and again, as a user presses
    Ctrl-C again, where the main thread still waits there 5 s later: a SIGINT that lands
    while the main thread runs a finalizer (``__del__``, a weakref callback: the collector
    runs them in whichever thread allocates) is dropped by CPython, which only prints it, and
    in CI one such left this test waiting for the 600 s HTTP timeout (session 45)."""
    main = threading.main_thread().ident

    def run() -> None:
        assert asked.wait(60)
        for _ in range(5):
            same = 0
            while same < 20:
                same = same + 1 if _in_the_lookup(main) else 0
                threading.Event().wait(0.002)
            signal.pthread_kill(main, signal.SIGINT)
            end = time.monotonic() + 5
            while time.monotonic() < end and _in_the_lookup(main):
                threading.Event().wait(0.01)
            if not _in_the_lookup(main):
                return
    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="Linux's /proc")
def test_requests_interrupted_in_a_lookup_that_does_not_end_leave_one_thread(
        emulator, local_state, monkeypatch):
    from drivestage.drive import connect

    emulator.add_file("data/a.txt", b"hello")
    resolver = _HungResolver(monkeypatch, emulator)
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "600")   # the Ctrl-C ends each wait
    store = connect(api_root=resolver.url, token="test-token")
    threads, sockets = _ours(), _sockets()
    try:
        for _ in range(20):
            ctrl_c = _main_waits_in_a_slice(resolver.asked)
            try:
                with pytest.raises(KeyboardInterrupt):
                    store.resolve("data/a.txt")
            finally:
                ctrl_c.join(60)
        left = _ours() - threads
        assert len(left) <= 1, f"{len(left)} threads left waiting for the same lookup"
        assert resolver.calls == 1
        assert _sockets() <= sockets + 1
    finally:
        resolver.let_go.set()
    for thread in _ours() - threads:
        thread.join(30)
    assert not _ours() - threads
    # Once the resolver answers, the next request is answered, and nothing was sent before.
    assert emulator.requests == []
    assert store.resolve("data/a.txt").size == 5
    assert _sockets() <= sockets + 2   # (the kept-alive connection: both its ends, here)


def test_a_lookup_that_does_not_end_fails_the_request_after_the_http_timeout(
        emulator, local_state, monkeypatch):
    """Retried as a lost connection, a bounded number of times, each waiting for the same
    lookup: one line names the host, and no thread is added per attempt."""
    from drivestage.drive import connect
    from drivestage.errors import RemoteError

    resolver = _HungResolver(monkeypatch, emulator)
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "0.3")
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    store = connect(api_root=resolver.url, token="test-token")
    threads = _ours()
    let_go_late = threading.Timer(30, resolver.let_go.set)   # (a guard: the lookup never ends)
    let_go_late.start()
    try:
        with pytest.raises(RemoteError) as failed:
            store.resolve("data/a.txt")
        assert not resolver.let_go.is_set(), \
            "the request waited for the lookup past the HTTP timeout, until it ended"
        assert len(_ours() - threads) <= 1 and resolver.calls == 1
    finally:
        let_go_late.cancel()
        resolver.let_go.set()
    message = str(failed.value)
    assert "\n" not in message and f"the name lookup of {HUNG} took more than 0.3 s" \
        in message, message
    for thread in _ours() - threads:
        thread.join(30)


def test_lookups_of_many_hosts_a_resolver_never_answers_stay_few(monkeypatch):
    """A download's signed hosts vary from file to file: each new host's lookup, stuck,
    was one more thread for good. Past ``MAX_UNDER_WAY`` none is begun: it fails at once."""
    from drivestage.drive import lookups

    let_go, real = threading.Event(), socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if not str(host).endswith(".hung.test"):
            return real(host, *args, **kwargs)
        assert let_go.wait(60)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    threads = _ours()
    try:
        for i in range(lookups.MAX_UNDER_WAY):
            with pytest.raises(lookups.LookupTimeout, match="took more than"):
                lookups.addresses(f"h{i}.hung.test", 443, 0.01)
        with pytest.raises(lookups.LookupTimeout, match="16 others are under way"):
            lookups.addresses("one-more.hung.test", 443, 60)
        assert len(_ours() - threads) == lookups.MAX_UNDER_WAY
    finally:
        let_go.set()
    for thread in _ours() - threads:
        thread.join(30)
    assert lookups.under_way() == 0
    # Ended, a lookup's failure is each later caller's own, and a new one is begun.
    with pytest.raises(socket.gaierror):
        lookups.addresses("h0.hung.test", 443, 30)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_process_forked_while_a_lookup_is_under_way_looks_the_name_up_itself(monkeypatch):
    """The child has no thread of its parent's: it waited for the parent's lookup until
    the timeout, every time."""
    from drivestage.drive import lookups

    parent, let_go, real = os.getpid(), threading.Event(), socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "fork.hung.test":
            if os.getpid() == parent:
                assert let_go.wait(60)
            host = "127.0.0.1"
        return real(host, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(lookups.LookupTimeout):
        lookups.addresses("fork.hung.test", 443, 0.01)   # (under way from now on)
    try:
        pid = os.fork()
        if pid == 0:   # the child: its own lookup, at once
            code = 1
            try:
                code = 0 if lookups.addresses("fork.hung.test", 443, 10) else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child waited for its parent's lookup"
    finally:
        let_go.set()
    for thread in _ours():
        if thread.name == "drivestage-lookup":
            thread.join(30)
