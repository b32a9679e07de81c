"""A process forked after drivestage connected (a user's ``multiprocessing`` pool of fork
workers over one store, a fork server) and then sending requests from the child: the
child's connections were the parent's sockets, and with both sending on them, one read the
other's answer (``MalformedAnswerError: … not what Drive sends``), the other waited for an
answer already read. And a lock a thread of the parent held as it forked (googleapiclient's
service being built) was never released in the child: its first connect waited forever.

The child reports through a pipe, read with a bound (select); the emulator's request log
names the TCP connection of each request. Real PyDrive2 + googleapiclient + httplib2."""
from __future__ import annotations

import os
import select
import signal
import threading
from collections import defaultdict

import pytest

from drivestage.drive import connect


@pytest.fixture(autouse=True)
def _fast(fast_retries, monkeypatch):
    """A request whose answer the other process read fails in 2 s, not 120."""
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "2")


def _forked(work, bound_s: float = 20.0):
    """``work()`` in a forked child; what it said: "ok", or its error's text. A child still
    running after ``bound_s`` is killed ("hung")."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # (the child: never back into pytest)
        os.close(read)
        try:
            work()
            said = b"ok"
        except BaseException as exc:
            said = f"{type(exc).__name__}: {exc}".encode()[:2000]
        os.write(write, said)
        os._exit(0)
    os.close(write)

    def result() -> str:
        try:
            ready, _, _ = select.select([read], [], [], bound_s)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                return "hung"
            return os.read(read, 4096).decode()
        finally:
            os.close(read)
            os.waitpid(pid, 0)
    return result


def test_a_forked_child_sends_on_connections_of_its_own_not_its_parents(emulator, env):
    store = connect(api_root=emulator.url, token="t")
    ids = [emulator.add_file(f"f/x{i}.bin", bytes([i]) * 100) for i in range(3)]
    entries = [store.resolve(f"f/x{i}.bin") for i in range(3)]
    assert store.fetch_range(entries[0], 0, 100) == bytes([0]) * 100   # (connections open)
    emulator.clear_requests()

    def reads(i: int) -> None:
        for _ in range(5):
            assert store.stat(entries[i]).id == ids[i]
            assert store.fetch_range(entries[i], 0, 100) == bytes([i]) * 100

    children = [_forked(lambda i=i: reads(i)) for i in (1, 2)]
    reads(0)
    assert [child() for child in children] == ["ok", "ok"]
    named: dict[int, set[str]] = defaultdict(set)
    for r in emulator.requests:
        named[r.connection].add(r.path.split("/files/")[1])
    assert all(len(files) == 1 for files in named.values()), dict(named)


def test_a_child_forked_while_a_thread_built_a_service_connects(emulator_factory, env):
    """A thread of the parent holds the services' lock (a connect building googleapiclient's
    service for a new root) as the process forks: the child's own connect goes through."""
    from drivestage.drive import services

    first, second = emulator_factory(), emulator_factory()
    second.add_file("f/a.bin", b"abc")
    connect(api_root=first.url, token="t").resolve("")   # (built for one root)
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with services._BUILT_LOCK:
            held.set()
            done.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        child = _forked(lambda: connect(api_root=second.url, token="t").resolve("f/a.bin"),
                        bound_s=10)
        assert child() == "ok"
    finally:
        done.set()
        holder.join(10)
