"""A pull stopped while Drive holds a download's answer mid-body cuts that connection: the
stream thread reading it ends at once, the emulator sees the connection closed, no
descriptor of the partial is left open and the partial does not change once the call has
returned; a rerun completes md5-exact. Before stuckconn46 the stream went on waiting for the
held answer up to the HTTP timeout (120 s), in a notebook beside the next call.

In-process: the library's pull in a thread of the test, stopped as the code's own stop
stops a thread (``pool.stoppable``: what ``Mirror.abandon`` does; ``pool.check`` raises at
the thread's next wait). As a CLI process: SIGTERM."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time

import pytest

import drivestage
from drivestage import pool
from drivestage.interrupts import Flag

from _archives import a_zip
from _cli import child_env, run
from _forkcli import PIPE, cli_server
from _leaks import open_targets, our_threads
from _signal_env import _cli_server, _fast  # noqa: F401  (autouse fixtures)

KiB = 1024
#: Generous bounds on what must happen at once (the held answer would last 60 s).
_BOUND = 15.0


def _open_on(path_part: str) -> list[str]:
    """This process's descriptors open on a file whose path holds ``path_part``."""
    return [target for target in open_targets() if path_part in target]


def _snapshot(folder) -> dict:
    """Every file under ``folder``: its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _stopped_in_thread(call, reached) -> BaseException:
    """Run ``call()`` under ``pool.stoppable`` in a thread; stop it once ``reached`` (an
    event) is set; what it raised, once it returned (within :data:`_BOUND`)."""
    stop = Flag()
    got: list[BaseException] = []

    def body() -> None:
        with pool.stoppable(stop):
            try:
                call()
            except BaseException as exc:   # (what the stop raised: looked at below)
                got.append(exc)

    thread = threading.Thread(target=body, name="test-pull")
    thread.start()
    try:
        assert reached.wait(60), "the download never reached the hold"
    finally:
        stop.set()
        thread.join(_BOUND)
    assert not thread.is_alive(), "the stopped pull did not return"
    assert len(got) == 1, got
    return got[0]


_CASES = ["file", "folder", "zip-x"]


@pytest.mark.parametrize("case", _CASES)
def test_a_stopped_pull_cuts_the_held_connection_in_process(emulator, local_state, drive_env,
                                                            tmp_path, case):
    data = os.urandom(512 * KiB)
    if case == "zip-x":
        members = {f"ds/m{i}.bin": os.urandom(64 * KiB) for i in range(8)}
        data = a_zip(members)
        emulator.add_file("d/set.zip", data)
        name, src, kwargs = "set.zip", "drive:d/set.zip", {"extract": True}
    elif case == "folder":
        for i in range(1, 4):
            emulator.add_file(f"d/f{i}.bin", os.urandom(64 * KiB))
        emulator.add_file("d/f0.bin", data)
        name, src, kwargs = "f0.bin", "drive:d", {"jobs": 4}
    else:
        emulator.add_file("d/f0.bin", data)
        name, src, kwargs = "f0.bin", "drive:d/f0.bin", {"jobs": 1}
    fid = emulator.find(f"d/{name}")["id"]
    dest = tmp_path / "data"
    before = our_threads()
    held = emulator.faults.hold(fid, len(data) // 2)
    try:
        exc = _stopped_in_thread(
            lambda: drivestage.pull(src, str(dest), quiet=True, **kwargs), held.reached)
        assert isinstance(exc, KeyboardInterrupt), repr(exc)
        # The held answer's connection is closed (its client's end, seen by the server) ...
        assert held.hung_up.wait(_BOUND), "the held connection was left open"
        # ... and the streams that read it ended: joined, not waited for by the clock.
        for thread in our_threads() - before:
            thread.join(_BOUND)
            assert not thread.is_alive(), f"{thread.name} outlived the stopped pull"
        assert _open_on(".partial") == []
        left = _snapshot(dest)
        partials = [p for p in left if p.endswith(".partial") and f".{name}." in p]
        assert len(partials) == 1, sorted(left)
        # What its record vouches for is there, and is the file's (a zip's tail too,
        # fetched first): the rerun's start.
        kept = left[partials[0]]
        done = json.loads(left[partials[0][:-len(".partial")] + ".ranges"])["done"]
        assert all(kept[a:b] == data[a:b] for a, b in done), done
        assert len(kept) <= len(data) and kept != data
        held.release()   # (what the server would send now reaches no one)
        assert _snapshot(dest) == left
    finally:
        held.release()
    drivestage.pull(src, str(dest), quiet=True, **kwargs)
    got = (dest / "d" / name) if case == "folder" else (dest / name)
    assert hashlib.md5(got.read_bytes()).hexdigest() == hashlib.md5(data).hexdigest()
    assert not [p for p in dest.rglob("*") if p.name.endswith(".partial")]


def test_an_answer_that_ends_with_its_connection_is_cut_too(emulator, local_state, drive_env,
                                                           tmp_path, monkeypatch):
    """Through a proxy that answers with ``Connection: close`` (no length: the body ends
    with the connection), which http.client lets go of as the answer begins: the answer's
    own socket is cut."""
    from _proxy import Proxy, held_half

    data = os.urandom(512 * KiB)
    emulator.add_file("d/f0.bin", data)
    reached, gate = threading.Event(), threading.Event()
    held = held_half(reached, gate)

    dest = tmp_path / "data"
    before = our_threads()
    with Proxy(emulator.url) as proxy:
        proxy.on("GET", r"alt=media", held, times=1)
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        try:
            exc = _stopped_in_thread(lambda: drivestage.pull(
                "drive:d/f0.bin", str(dest), quiet=True, jobs=1), reached)
            assert isinstance(exc, KeyboardInterrupt), repr(exc)
            for thread in our_threads() - before:
                thread.join(_BOUND)
                assert not thread.is_alive(), f"{thread.name} outlived the stopped pull"
            assert _open_on(".partial") == []
        finally:
            gate.set()
        drivestage.pull("drive:d/f0.bin", str(dest), quiet=True)
    assert (dest / "f0.bin").read_bytes() == data


def test_a_stream_waiting_out_a_retry_after_ends_with_the_stop(emulator, local_state,
                                                              drive_env, tmp_path):
    """Drive answered the stream 503 with Retry-After: 60 (its connection kept): stopped in
    that wait, the stream ends with the call, not a minute later, and asks nothing more."""
    import logging

    data = os.urandom(256 * KiB)
    emulator.add_file("d/f0.bin", data)
    emulator.faults.inject("GET", r"alt=media", status=503, retry_after=60, times=1)
    waiting = threading.Event()

    class _Said(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "retry 1/" in record.getMessage():
                waiting.set()   # (said right before the backoff's wait)

    said = _Said()
    logger = logging.getLogger("drivestage.drive.retry")
    logger.addHandler(said)
    dest = tmp_path / "data"
    before = our_threads()
    try:
        exc = _stopped_in_thread(lambda: drivestage.pull(
            "drive:d/f0.bin", str(dest), quiet=True, jobs=1), waiting)
    finally:
        logger.removeHandler(said)
    assert isinstance(exc, KeyboardInterrupt), repr(exc)
    asked = len([r for r in emulator.requests if r.kind == "media.download"])
    for thread in our_threads() - before:
        thread.join(_BOUND)
        assert not thread.is_alive(), f"{thread.name} outlived the stopped pull"
    assert len([r for r in emulator.requests if r.kind == "media.download"]) == asked == 1
    drivestage.pull("drive:d/f0.bin", str(dest), quiet=True)
    assert (dest / "f0.bin").read_bytes() == data


def test_a_pull_stopped_by_sigterm_closes_the_held_connection(emulator, local_state,
                                                             drive_env, tmp_path):
    """As a CLI process: the server sees the held connection closed, exit 143 within the
    bound, the rerun exact."""
    data = os.urandom(512 * KiB)
    emulator.add_file("d/f0.bin", data)
    dest = tmp_path / "data"
    held = emulator.faults.hold(emulator.find("d/f0.bin")["id"], len(data) // 2)
    try:
        proc = cli_server().popen(["pull", "drive:d/f0.bin", str(dest), "-q"],
                                  env=child_env(emulator), stdout=PIPE, stderr=PIPE)
        try:
            deadline = time.monotonic() + 60
            while not held.reached.wait(0.05):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the download never reached the hold"
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=_BOUND)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert held.hung_up.wait(_BOUND)
    finally:
        held.release()
    assert (proc.returncode, err.decode()) == (143, "Interrupted by SIGTERM.\n")
    rc, out, err = run("pull", "drive:d/f0.bin", str(dest), "-q")
    assert (rc, err) == (0, "")
    assert (dest / "f0.bin").read_bytes() == data
