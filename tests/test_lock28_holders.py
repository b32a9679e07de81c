"""Who holds a push lock (lock28): a push that waits names the other process (pid, host,
since when, its command), and says when it is stopped (Ctrl-Z in another terminal: the wait
would not end by itself). A holder killed (SIGKILL: its holder file stays) is never named,
and the next process that holds the lock alone sweeps its file."""
from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from contextlib import ExitStack

import pytest

from drivestage.locks import place_lock, tree_lock

from test_push27_nested import _Waits

HOLDER = """
import sys
from drivestage.locks import {kind}
with {kind}({args}):
    print("held", flush=True)
    sys.stdin.readline()
"""
LINEAGE = [("dir|/runs/exp1", "/runs/exp1"), ("dir|/runs", "/runs")]


def _holder(tmp_path, kind: str, args: str) -> subprocess.Popen:
    script = tmp_path / "holder.py"
    script.write_text(HOLDER.format(kind=kind, args=args))
    child = subprocess.Popen([sys.executable, str(script), "--for", "a test"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=os.environ)
    assert child.stdout.readline() == b"held\n"
    return child


def _said_while_waiting(work) -> tuple[threading.Thread, _Waits]:
    waits = threading.Event()
    handler = _Waits(waits)
    logging.getLogger("drivestage").addHandler(handler)
    thread = threading.Thread(target=work)
    thread.start()
    assert waits.wait(60), "it never said it waits"
    logging.getLogger("drivestage").removeHandler(handler)
    return thread, handler


def _who(child, stopped: str = "") -> str:
    return (rf"\(pid {child.pid} on {re.escape(socket.gethostname())}, since "
            rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC{re.escape(stopped)}: "
            rf"holder\.py --for 'a test'\)")


def test_a_push_waiting_for_a_stopped_process_names_it_and_says_it_is_stopped(
        tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    child = _holder(tmp_path, "tree_lock", repr(LINEAGE))

    def wait() -> None:   # (a push into the folder above)
        with tree_lock(LINEAGE[1:]):
            pass
    try:
        os.kill(child.pid, signal.SIGSTOP)   # (Ctrl-Z)
        os.waitpid(child.pid, os.WUNTRACED)   # (until it is stopped: the signal is async)
        thread, handler = _said_while_waiting(wait)
    finally:
        os.kill(child.pid, signal.SIGCONT)
        child.communicate(b"\n", timeout=60)
    thread.join(60)
    assert re.fullmatch(r"another push into /runs or a folder inside it is running on this "
                        r"machine " + _who(child, ", stopped (Ctrl-Z: fg it, or end it)")
                        + "; waiting for it", handler.said[0]), handler.said


def test_a_push_waiting_for_a_place_names_the_holder_and_never_a_killed_one(
        tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    killed = _holder(tmp_path, "place_lock", "'test:place', 'drive:runs'")
    killed.kill()   # (SIGKILL: its holder file stays)
    killed.wait(60)
    locks = tmp_path / "state" / "locks"
    assert len(list(locks.glob("push-*.who"))) == 1
    child = _holder(tmp_path, "place_lock", "'test:place', 'drive:runs'")
    assert len(list(locks.glob("push-*.who"))) == 1   # (the killed one's swept)

    def wait() -> None:
        with place_lock("test:place", "drive:runs"):
            pass
    try:
        thread, handler = _said_while_waiting(wait)
    finally:
        child.communicate(b"\n", timeout=60)
    thread.join(60)
    assert not thread.is_alive()
    assert re.fullmatch(r"another push into drive:runs is running on this machine "
                        + _who(child) + "; waiting for it", handler.said[0]), handler.said
    assert list(locks.glob("push-*.who")) == []   # (each removed its own)



@pytest.mark.parametrize("kind", ["tree", "push"])
def test_a_child_forked_inside_a_lock_leaves_its_parent_s_lock_and_holder_file(
        tmp_path, monkeypatch, kind):
    """A process forked inside a lock's block that goes on through its end (os.fork in a
    push's thread, then the child returns as the parent would): the parent still holds the
    lock, and its holder file still names it."""
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    locks = tmp_path / "state" / "locks"
    lock = (lambda: tree_lock(LINEAGE[1:])) if kind == "tree" else (
        lambda: place_lock("test:place", "drive:runs"))
    held = ExitStack()
    held.enter_context(lock())
    mine = sorted(p.name for p in locks.glob(f"{kind}-*.who"))
    assert len(mine) == 1 and mine[0].endswith(f"-{os.getpid()}.who")
    pid = os.fork()
    if pid == 0:   # pragma: no cover - the child: leaves the block, then ends
        try:
            held.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    try:
        assert sorted(p.name for p in locks.glob(f"{kind}-*.who")) == mine
        probe = subprocess.run([sys.executable, "-c", HOLDER_PROBE.format(
            kind=kind, path=str(locks))], capture_output=True, text=True)
        assert probe.stdout == "held\n", probe.stderr   # (by the parent, still)
    finally:
        held.close()
    assert list(locks.glob(f"{kind}-*.who")) == []


HOLDER_PROBE = """
import fcntl, glob, os
for path in glob.glob(os.path.join({path!r}, "{kind}-*.lock")):
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("free")
    except BlockingIOError:
        print("held")
"""
