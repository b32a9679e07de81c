"""Killing a child process at a real moment of its work (no sleeps to guess it)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Callable


def sigkill_when(proc: subprocess.Popen, ready: Callable[[], bool],
                 what: str = "the child never got there") -> None:
    """SIGKILL ``proc`` as soon as ``ready()``; fail if it exits first or nothing happens
    within 120 s. Closes the child's pipes.

    The bound only catches a child that hangs: a trainer child on a loaded 2-core machine
    took over 30 s to reach its first mid-epoch autosave (it failed so at -n 2 beside
    other jobs); a child that gets there sooner is killed as soon."""
    try:
        deadline = time.monotonic() + 120
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, what
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert proc.returncode == -signal.SIGKILL


def sigkill_once_file_has(proc: subprocess.Popen, path: str, nbytes: int,
                          what: str = "the download never started") -> None:
    """SIGKILL ``proc`` as soon as ``path`` holds at least ``nbytes``."""
    sigkill_when(proc, lambda: os.path.exists(path) and os.path.getsize(path) >= nbytes, what)


def sigkill_push_in_its_upload(emulator, env: dict, *args: str) -> None:
    """``drivestage push ARGS`` in a child, SIGKILLed once its first upload request is in (the
    emulator holds that request's answer for 2 s, so the kill lands before it ends). The child
    is forked with drivestage imported (tests/_forkcli.py), as ``python -m drivestage`` runs."""
    from _forkcli import PIPE, cli_server

    emulator.clear_requests()
    emulator.faults.latency(2.0, path=r"^/upload/", times=1)
    proc = cli_server().popen(["push", *args], env=env, stdout=PIPE, stderr=PIPE)
    sigkill_when(proc, lambda: any(r.path.startswith("/upload/") for r in emulator.requests),
                 "the push never began its upload")


def _closed_by_client(port: int) -> int:
    """How many TCP connections to ``port`` of this machine their client closed and the
    server has not (CLOSE_WAIT, 08 in /proc/net/tcp): a killed client's, accepted or not;
    -1 where the kernel does not say (no /proc/net/tcp)."""
    found, read_any = 0, False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                lines = fh.readlines()[1:]
        except OSError:
            continue
        read_any = True
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "08":
                found += 1
    return found if read_any else -1


def wait_heard_out(emulator, bound_s: float = 30.0) -> None:
    """Wait until ``emulator`` has read all that a killed client sent it, so that a request
    it sent just before its kill is not logged after a snapshot (or ``clear_requests()``)
    taken for the next run: the server reads a dead client's bytes late (its connection
    still in the accept queue, or its thread not yet scheduled, on a loaded machine), then
    finds the connection closed and closes it. Fails after ``bound_s`` (a request held by a
    fault: release it first). Where the kernel does not say, waits for the requests being
    served (:meth:`Emulator.wait_idle`)."""
    deadline = time.monotonic() + bound_s
    while True:
        left = _closed_by_client(emulator.port)
        if left <= 0:
            break
        assert time.monotonic() < deadline, \
            f"{left} connection(s) of a killed client still unread by the emulator"
        time.sleep(0.01)
    assert emulator.wait_idle(max(0.0, deadline - time.monotonic())), \
        "the emulator still serves a killed client's request"
