"""A Drive request sent from the main thread, whose answer Drive holds back, must end on a
Ctrl-C the kernel gave another thread (see tests/test_sigthread33.py for the technique: the
signal is sent to a helper thread with ``pthread_kill``).

The main thread blocked in the socket's ``recv`` for the answer: Python runs a signal's handler
in the main thread only when it runs bytecode, so the Ctrl-C was acted on only when the answer
came or the HTTP timeout (``DRIVESTAGE_HTTP_TIMEOUT``, 120 s) passed. The emulator's
``latency`` fault holds the answer here; what the signal may not change is checked too: the
request was sent once, and an answer that comes slowly (in pieces over many of the main
thread's waits) is read whole.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import ssl
import threading
import time
from typing import Callable

import pytest

from _tls import self_signed
from test_sigthread33 import _interrupted_elsewhere
from trainer.stuck import current_frames   # (sys._current_frames() can deadlock: see there)

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX threads")

#: How long Drive holds the answer: the Ctrl-C must end the wait long before.
LONG = 60.0


@pytest.fixture
def tls(tmp_path_factory):
    """A certificate and key for 127.0.0.1 (as test_fidelity28_signed makes them)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    where = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(where)
    return cert, key


def _held(emulator, method: str, path: str) -> threading.Event:
    """Hold the next ``method`` request whose target matches ``path`` for :data:`LONG`; the
    event is set once the emulator has read it (the client then waits for the answer)."""
    arrived = threading.Event()
    plan = emulator.faults.plan

    def planned(command: str, target: str, **kwargs):
        out = plan(command, target, **kwargs)
        if out.latency >= LONG:
            arrived.set()
        return out
    emulator.faults.plan = planned
    emulator.faults.latency(LONG, method=method, path=path, times=1)
    return arrived


#: Where the main thread waits for the socket: a read, a send the server does not take, a
#: connection that is not taken (or, in pieces, a wait for the thread that makes it).
_WAITS = ("readinto", "recv_into", "send", "sendall", "connect", "_sliced")


def _waiting(main: int) -> object:
    """Where thread ``main`` waits for a socket (its innermost Python frame and instruction),
    or None."""
    frame = current_frames().get(main)
    if frame is None or frame.f_code.co_name not in _WAITS:
        return None
    return (id(frame), frame.f_lasti)


def _when_reading(arrived: threading.Event) -> threading.Event:
    """Set once ``arrived`` is and the main thread waits for the socket, at the same place
    for 20 looks in a row (a send that still goes on moves between its blocks): Drive has
    the request before the client is done sending it, and a signal then is acted on at the
    main thread's next bytecode, before the wait this is about."""
    reading, main = threading.Event(), threading.main_thread().ident

    def watch() -> None:
        assert arrived.wait(60)
        end, seen, same = time.monotonic() + 10, None, 0
        while same < 20 and time.monotonic() < end:
            now = _waiting(main)
            same = same + 1 if now is not None and now == seen else 0
            seen = now
            reading.wait(0.002)   # (the main thread's state polled, not slept on)
        reading.set()
    threading.Thread(target=watch, daemon=True).start()
    return reading


def _ends_on_a_ctrl_c_elsewhere(arrived: threading.Event, call: Callable[[], object]) -> float:
    """``call()`` in the main thread, a SIGINT sent to another thread once Drive has the held
    request and the main thread waits for its answer: it must raise KeyboardInterrupt; the
    seconds it took."""
    other = _interrupted_elsewhere(_when_reading(arrived))
    began = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            call()
        return time.monotonic() - began
    finally:
        arrived.set()
        other.join(60)


def _sent(emulator, method: str) -> int:
    return sum(1 for r in emulator.requests if r.method == method)


def test_a_lookup_whose_answer_drive_holds_ends_on_a_ctrl_c_given_elsewhere(emulator, store):
    emulator.add_file("data/a.txt", b"hello")
    arrived = _held(emulator, "GET", r"/files\?")
    took = _ends_on_a_ctrl_c_elsewhere(arrived, lambda: store.resolve("data/a.txt"))
    assert took < LONG / 3, f"the Ctrl-C was acted on after {took:.1f} s, with the answer"
    assert _sent(emulator, "GET") == 1, "the held request was sent again"
    # The store goes on: the next call is answered (on a new connection).
    assert store.resolve("data/a.txt").size == 5


def test_a_folder_made_while_drive_holds_the_answer_is_asked_for_once(emulator, store):
    """A create (not idempotent) stopped by the Ctrl-C was sent once, and the store goes on:
    the folder is there once when Drive lets the held answer go and the push runs again."""
    emulator.add_folder("runs")
    arrived = _held(emulator, "POST", r"/files")
    took = _ends_on_a_ctrl_c_elsewhere(arrived, lambda: store.make_folders("runs/new"))
    assert took < LONG / 3, f"the Ctrl-C was acted on after {took:.1f} s, with the answer"
    assert _sent(emulator, "POST") == 1, "the held create was sent again"
    emulator.faults.release_holds()     # Drive answers the held create now
    emulator.faults.serving()
    store.forget_folders()
    made = store.make_folders("runs/new")
    assert [e.id for e in store.list(store.resolve("runs"))] == [made.id]


def test_a_sidecar_read_whose_bytes_drive_holds_ends_on_a_ctrl_c_given_elsewhere(emulator,
                                                                                 store):
    emulator.add_file("runs/a.json", b'{"epoch": 1}')
    entry = store.resolve("runs/a.json")
    arrived = _held(emulator, "GET", r"alt=media")
    took = _ends_on_a_ctrl_c_elsewhere(arrived, lambda: store.fetch_range(entry, 0, 12))
    assert took < LONG / 3, f"the Ctrl-C was acted on after {took:.1f} s, with the bytes"
    assert store.fetch_range(entry, 0, 12) == b'{"epoch": 1}'


def test_a_token_refresh_whose_answer_the_token_server_holds(emulator_factory, local_state,
                                                             tmp_path, monkeypatch):
    """A main-thread call whose token had expired refreshed it first; the token server held
    its answer, and the Ctrl-C waited for it."""
    from drivestage.drive import connect
    from test_auth import FRESH, TokenServer, _token_file

    for name in ("DRIVESTAGE_API_ROOT", "DRIVESTAGE_TOKEN", "DRIVESTAGE_CREDENTIALS",
                 "DRIVESTAGE_TOKEN_FILE", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    emu = emulator_factory(token=FRESH)
    emu.add_file("data/a.txt", b"hello")
    server = TokenServer()
    store = connect(api_root=emu.url, credentials=_token_file(tmp_path / "token.json", server.uri))
    answer, arrived, let_go = server.answer, threading.Event(), threading.Event()

    def held(form: dict):
        arrived.set()
        let_go.wait(20)
        return answer(form)
    server.answer = held
    try:
        took = _ends_on_a_ctrl_c_elsewhere(arrived, lambda: store.resolve("data/a.txt"))
        assert not let_go.is_set() and took < 15, \
            f"the Ctrl-C was acted on after {took:.1f} s, once the token server answered"
        let_go.set()
        server.answer = answer
        assert store.resolve("data/a.txt").size == 5
    finally:
        let_go.set()
        server.stop()


def test_an_answer_in_slow_pieces_is_read_whole_by_the_main_thread(emulator, store):
    """The main thread waits for an answer in short waits: one that starts late and whose
    body comes late again, after its headers, each over several of them, is read whole, and
    sent once."""
    for i in range(6):
        emulator.add_file(f"runs/f{i}.bin", b"x" * i)
    folder = store.resolve("runs")
    before = _sent(emulator, "GET")
    emulator.faults.latency(0.3, method="GET", path=r"/files\?", times=1)
    emulator.faults.throttle(per_connection=32 << 10)   # the listing's 15 kB: 0.5 s
    began = time.monotonic()
    listed = store.list(folder)
    took = time.monotonic() - began
    emulator.faults.throttle(None)
    assert sorted((e.name, e.size) for e in listed) == [(f"f{i}.bin", i) for i in range(6)]
    assert _sent(emulator, "GET") == before + 1
    assert took > 0.5, "the answer was not slow: the test shows nothing"


def test_an_answer_later_than_the_http_timeout_still_times_out(emulator, store, monkeypatch):
    """The timeout is the time without a byte, as the socket's own was: a request Drive
    does not answer within it fails and is retried, not waited for slice after slice."""
    from drivestage.drive import connect

    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "0.5")
    quick = connect(api_root=emulator.url, token="test-token")
    emulator.add_file("data/a.txt", b"hello")
    emulator.faults.latency(LONG, method="GET", path=r"/files\?", times=1)
    began = time.monotonic()
    assert quick.resolve("data/a.txt").size == 5
    took = time.monotonic() - began
    # Two lookups (data, then a.txt), the first of them sent again after the timeout.
    assert _sent(emulator, "GET") == 3 and 0.5 <= took < LONG / 3


def test_a_push_whose_upload_waits_for_drive_s_answer_ends_on_a_ctrl_c_given_elsewhere(
        emulator, drive_env, local_state, tmp_path):
    """A push of one file (or with ``--jobs 1``) uploads in the main thread. The push run
    again sends the file, once."""
    from drivestage import push

    src = tmp_path / "logs"
    src.mkdir()
    (src / "a.bin").write_bytes(b"a" * 1000)
    arrived = _held(emulator, "PUT", r"/upload/")
    took = _ends_on_a_ctrl_c_elsewhere(arrived, lambda: push(str(src), "drive:runs", jobs=1))
    assert took < LONG / 3, f"the push ended {took:.1f} s after the Ctrl-C, with the answer"
    emulator.faults.release_holds()     # Drive answers the held upload now
    emulator.faults.serving()
    result = push(str(src), "drive:runs", jobs=1)
    assert result.uploaded + ["a.bin"] * result.unchanged == ["a.bin"]
    listed = store_of(emulator).list(store_of(emulator).resolve("runs"))
    assert [(e.name, e.md5) for e in listed] == [("a.bin", hashlib.md5(b"a" * 1000).hexdigest())]


def test_a_push_whose_upload_drive_takes_slowly_ends_on_a_ctrl_c_given_elsewhere(
        emulator, drive_env, local_state, tmp_path):
    """The upload's body waited to be sent (Drive stopped taking it: the sockets' buffers
    full) as its answer did."""
    from drivestage import push

    src = tmp_path / "logs"
    src.mkdir()
    (src / "big.bin").write_bytes(b"b" * (24 << 20))   # more than the sockets' buffers hold
    arrived = threading.Event()
    plan = emulator.faults.plan

    def planned(command: str, target: str, **kwargs):
        if command == "PUT":
            arrived.set()
        return plan(command, target, **kwargs)
    emulator.faults.plan = planned
    # The emulator takes a megabyte at a time: at 64 KiB/s, the next one 16 s later.
    emulator.faults.throttle(per_connection=64 << 10)
    try:
        took = _ends_on_a_ctrl_c_elsewhere(arrived, lambda: push(str(src), "drive:runs",
                                                                 jobs=1))
    finally:
        emulator.faults.throttle(None)
    assert took < 6, f"the push ended {took:.1f} s after the Ctrl-C, once Drive took more"


def test_a_ctrl_c_while_a_push_s_upload_thread_waits_for_drive_s_answer_ends_the_push(
        emulator, drive_env, local_state, tmp_path):
    """With ``--jobs 2`` the uploads run in threads of their own, which a Ctrl-C stops at
    their next safe point, and the push waits for them to stop (its lock must not be let go
    while one still sends): an upload waiting for an answer Drive held kept the interrupted
    push, and every further Ctrl-C, "waiting for the transfers under way to stop" for that
    answer or the HTTP timeout (120 s)."""
    from drivestage import push

    src = tmp_path / "logs"
    src.mkdir()
    for name in ("a.bin", "b.bin"):
        (src / name).write_bytes(name.encode() * 500)
    arrived = _held(emulator, "PUT", r"/upload/")
    main = threading.main_thread().ident

    def interrupt() -> None:
        assert arrived.wait(60)
        signal.pthread_kill(main, signal.SIGINT)   # (to the main thread itself)
    other = threading.Thread(target=interrupt)
    other.start()
    began = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            push(str(src), "drive:runs", jobs=2)
        took = time.monotonic() - began
    finally:
        arrived.set()
        other.join(60)
    assert took < LONG / 3, f"the push ended {took:.1f} s after the Ctrl-C, with the answer"
    emulator.faults.release_holds()
    emulator.faults.serving()
    result = push(str(src), "drive:runs", jobs=2)
    assert len(result.uploaded) + result.unchanged == 2
    listed = store_of(emulator).list(store_of(emulator).resolve("runs"))
    assert sorted((e.name, e.md5) for e in listed) == [
        (n, hashlib.md5(n.encode() * 500).hexdigest()) for n in ("a.bin", "b.bin")]


def store_of(emulator):
    from drivestage.drive import connect
    return connect(api_root=emulator.url, token="test-token")


def test_pieces_over_tls_neither_lose_nor_repeat_a_byte(tls, monkeypatch):
    """Drive is reached over TLS: a piece that ends in the middle of a TLS write is sent
    again with the same bytes, and one that ends while a record is half there (or only a
    session ticket came) reads nothing and loses nothing. The server here stops taking the
    body, and stops answering, until the client has seen three pieces end empty."""
    from drivestage import interrupts

    monkeypatch.setattr(interrupts, "SLICE", 0.05)
    cert, key = tls
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    body, answer = os.urandom(8 << 20), os.urandom(1 << 20)
    listener = socket.create_server(("127.0.0.1", 0))
    took_more, answer_more, got = threading.Event(), threading.Event(), {}

    def serve() -> None:
        conn, _ = listener.accept()
        with served.wrap_socket(conn, server_side=True) as tls_conn:
            tls_conn.settimeout(30)
            received = bytearray(tls_conn.recv(1 << 20))   # a first part, then nothing
            assert took_more.wait(30)
            while len(received) < len(body):
                received += tls_conn.recv(1 << 20)
            got["body"] = bytes(received)
            tls_conn.sendall(answer[:1000])    # half a record's worth, then nothing
            assert answer_more.wait(30)
            tls_conn.sendall(answer[1000:])
    server = threading.Thread(target=serve)
    server.start()
    ended = {"send": 0, "read": 0}

    def piece_ended(which: str, then: threading.Event) -> Callable[[], None]:
        def count() -> None:
            ended[which] += 1
            if ended[which] == 3:
                then.set()
        return count
    try:
        client = ssl.create_default_context(cafile=cert).wrap_socket(
            socket.create_connection(listener.getsockname(), timeout=30),
            server_hostname="127.0.0.1")
        with client:
            interrupts.sendall(client, body, 30.0, piece_ended("send", took_more))
            read, buf = bytearray(), bytearray(256 << 10)
            while len(read) < len(answer):
                n = interrupts.recv_into(client, buf, 30.0, piece_ended("read", answer_more))
                assert n, "the server closed early"
                read += buf[:n]
            assert client.gettimeout() == 30.0
    finally:
        took_more.set()
        answer_more.set()
        server.join(30)
        listener.close()
    assert ended["send"] >= 3 and ended["read"] >= 3
    assert got["body"] == body and bytes(read) == answer


def test_a_notebook_abandoning_its_mirror_while_drive_holds_its_upload(emulator, store,
                                                                      tmp_path):
    """``Mirror.abandon`` stops the push under way at its next safe point: a push waiting
    for an answer Drive held was out of its reach, and abandon(timeout) said False (the
    thread still running) until that answer came or the HTTP timeout passed."""
    from drivestage.mirror import Mirror

    src = tmp_path / "logs"
    src.mkdir()
    (src / "a.bin").write_bytes(b"a" * 1000)
    arrived = _held(emulator, "PUT", r"/upload/")
    mirror = Mirror(str(src), "runs", None, store=store, jobs=1).start()
    mirror.sync_now()
    try:
        assert arrived.wait(60)
        began = time.monotonic()
        assert mirror.abandon(LONG / 3), "the mirror's push still waited for Drive's answer"
        assert time.monotonic() - began < LONG / 3
    finally:
        mirror.abandon(60)


def test_a_lookup_whose_connection_drive_does_not_take_ends_on_a_ctrl_c_given_elsewhere(
        local_state, monkeypatch):
    """A connection made in the main thread (its first request, or the next after a lost
    one) whose server does not take it (a network that drops the packets, here a listener
    whose queue is full) held a Ctrl-C given to another thread for the HTTP timeout, as its
    name lookup and TLS handshake would. The connection is made beside the main thread now,
    and closed once made when the caller is gone."""
    from drivestage.drive import connect

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    first = socket.create_connection(listener.getsockname())   # the queue's one place
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", str(LONG))
    store = connect(api_root="http://%s:%d/" % listener.getsockname(), token="test-token")
    at_once = threading.Event()
    at_once.set()
    try:
        took = _ends_on_a_ctrl_c_elsewhere(at_once, lambda: store.resolve("a.txt"))
    finally:
        accepted = listener.accept()[0]   # the queue moves: the connection is made, then let go
        for thread in threading.enumerate():
            if thread.name == "drivestage-connect":
                thread.join(30)
        for sock in (accepted, first, listener):
            sock.close()
    assert took < LONG / 3, f"the Ctrl-C was acted on after {took:.1f} s, at the timeout"
