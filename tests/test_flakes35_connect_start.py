"""flakes35: a Ctrl-C that comes while a connection's connect thread is being started.

``interrupts.beside`` runs a connection's making (its name lookup, connect, TLS handshake) in
a thread of its own, started by ``interrupts.start_thread``, which holds a Ctrl-C back until
the thread runs and raises it then. On a loaded machine the new thread was already in its
connect when that Ctrl-C was raised, and it was raised before ``beside`` could mark the
thread abandoned: the thread, once connected, kept the socket it made (nobody's, and never
closed until the collector found it), and the emulator's end of it waited for a request
(tests/test_conn35_abandoned_connect.py's 20 interrupted requests failed, at load 10 and up,
after 60 s with "2 sockets left open").

Here the Ctrl-C is sent from inside the connect thread's ``start()`` once that thread holds
in its connect (a hook on ``threading.Thread.start`` for it and on ``socket.connect``): no
timing. The socket the abandoned connect made must be closed once that thread has ended,
while the KeyboardInterrupt (its traceback: every frame it passed) is still held.
"""
from __future__ import annotations

import os
import signal
import threading

import pytest

from test_conn35_abandoned_connect import _connections, _HeldConnect

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill")
                                or not os.path.exists("/proc/self/net/tcp"),
                                reason="POSIX threads, Linux's /proc")


def _open_to(port: int) -> int:
    """This process's open TCP sockets whose far end is ``port`` on 127.0.0.1 (a client's)."""
    inodes = set()
    with open("/proc/self/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if remote == f"0100007F:{port:04X}" and state != "07":   # (07: closed)
                inodes.add(inode)
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") in {f"socket:[{i}]" for i in inodes}
        except OSError:
            pass
    return count


def test_a_ctrl_c_while_the_connect_thread_starts_leaves_no_socket_open(emulator, store,
                                                                        monkeypatch):
    emulator.add_file("data/a.txt", b"hello")
    hook = _HeldConnect(monkeypatch)
    hook.armed = True
    started: list[threading.Thread] = []
    real_start = threading.Thread.start
    main = threading.main_thread().ident

    def start(thread: threading.Thread) -> None:
        real_start(thread)
        if thread.name == "drivestage-connect" and not started:
            started.append(thread)
            assert hook.holding.wait(60)   # it is in its connect...
            signal.pthread_kill(main, signal.SIGINT)   # ...and start() has not returned
    monkeypatch.setattr(threading.Thread, "start", start)
    before = _open_to(emulator.port)
    try:
        with pytest.raises(KeyboardInterrupt) as cut:
            store.resolve("data/a.txt")
    finally:
        hook.let_go.set()
    assert hook.done.wait(60)
    started[0].join(60)
    assert not started[0].is_alive()
    assert emulator.requests == [], "nothing was sent: the connection was being made"
    assert _open_to(emulator.port) == before, \
        "the abandoned connect's socket was left open"
    del cut
    # The store goes on: one request, on a connection of its own.
    assert store.resolve("data/a.txt").size == 5
    assert len(emulator.requests) == 2 and len(set(_connections(emulator))) == 1
