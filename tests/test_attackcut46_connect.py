"""A pull stopped while a stream is still making its connection (attackcut46): the cut of the
stopped download's connections (stuckconn46) reached only a connection that had its socket,
and a stream connection gets its socket once made, TLS handshake done. A stream sent to a
host whose TLS handshake never answers (a signed download link's host behind a stalled
network) sat in the handshake up to the HTTP timeout (120 s) after the stopped call
returned, its socket open: in a notebook beside the next call.

The server here takes the TCP connection and reads the client's hello, never answering it;
the stop comes once the hello is in (the stream is in its handshake): the client's end must
be seen closed, and every thread of the pull end, within the bound."""
from __future__ import annotations

import hashlib
import os
import socket
import threading

from _leaks import our_threads
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)
from test_stuckconn46_cut import _BOUND, _open_on, _stopped_in_thread

import drivestage

KiB = 1024


class _SilentTLS:
    """A server that takes one connection, reads the TLS hello (:attr:`hello` set) and
    answers nothing; :attr:`gone` is set once the client's end closes."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.hello, self.gone = threading.Event(), threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name="test-silent-tls",
                                        daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError:   # (closed by close())
            return
        self._conns.append(conn)
        conn.settimeout(120)
        try:
            if conn.recv(1 << 16):
                self.hello.set()
            while conn.recv(1 << 16):
                pass
            self.gone.set()
        except socket.timeout:   # (the client never closed: gone stays unset)
            return
        except OSError:   # a reset: the client's end closed too
            self.gone.set()

    def close(self) -> None:
        self._server.close()
        for conn in self._conns:
            conn.close()


def test_a_pull_stopped_in_a_stalled_tls_handshake_ends_it(emulator, local_state, drive_env,
                                                           tmp_path):
    data = os.urandom(256 * KiB)
    emulator.add_file("d/f0.bin", data)
    silent = _SilentTLS()
    emulator.faults.redirect_media(307, times=1, origin=f"https://127.0.0.1:{silent.port}")
    dest = tmp_path / "data"
    before = our_threads()
    try:
        exc = _stopped_in_thread(lambda: drivestage.pull(
            "drive:d/f0.bin", str(dest), quiet=True, jobs=1), silent.hello)
        assert isinstance(exc, KeyboardInterrupt), repr(exc)
        assert silent.gone.wait(_BOUND), "the connection in its handshake was left open"
        for thread in our_threads() - before:
            thread.join(_BOUND)
            assert not thread.is_alive(), f"{thread.name} outlived the stopped pull"
        assert _open_on(".partial") == []
    finally:
        silent.close()
    drivestage.pull("drive:d/f0.bin", str(dest), quiet=True)
    assert hashlib.md5((dest / "f0.bin").read_bytes()).hexdigest() == \
        hashlib.md5(data).hexdigest()


def _syn_sent_to(port: int) -> int:
    """This machine's TCP sockets still connecting (SYN sent, unanswered) to ``port``."""
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(1 for r in rows if r[3] == "02" and int(r[2].split(":")[1], 16) == port)


def test_a_pull_stopped_in_a_connect_the_network_holds_ends_it(emulator, local_state,
                                                               drive_env, tmp_path):
    """A host that takes no more connections (its queue full: the SYN is dropped, as a
    network that drops it does): the stream sits in its connect until the stop."""
    data = os.urandom(256 * KiB)
    emulator.add_file("d/f0.bin", data)
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))   # (the queue's one place)
    emulator.faults.redirect_media(307, times=1, origin=f"http://127.0.0.1:{port}")
    connecting = threading.Event()

    def watch() -> None:
        while not connecting.is_set() and not done.is_set():
            if _syn_sent_to(port):
                connecting.set()
            done.wait(0.02)

    done = threading.Event()
    watcher = threading.Thread(target=watch, name="test-syn-watch")
    watcher.start()
    dest = tmp_path / "data"
    before = our_threads()
    try:
        exc = _stopped_in_thread(lambda: drivestage.pull(
            "drive:d/f0.bin", str(dest), quiet=True, jobs=1), connecting)
        assert isinstance(exc, KeyboardInterrupt), repr(exc)
        for thread in our_threads() - before:
            thread.join(_BOUND)
            assert not thread.is_alive(), f"{thread.name} outlived the stopped pull"
        assert _syn_sent_to(port) == 0
    finally:
        done.set()
        watcher.join()
        filler.close()
        full.close()
    drivestage.pull("drive:d/f0.bin", str(dest), quiet=True)
    assert (dest / "f0.bin").read_bytes() == data
