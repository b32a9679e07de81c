"""A process forked while a thread of its parent held one of drivestage's module locks (a
``multiprocessing`` pool's fork worker, a DataLoader's, in a program that pulls in another
thread): that thread is not in the child, so the lock stayed held there, and the child's
first pull (the folder listings' lock, :mod:`drivestage.partials`), push (where its locks go,
:mod:`drivestage.lockdir`) or extraction (the member lists', :mod:`drivestage.extract.members`)
waited for it for good. Each module lock is free in the child now
(:func:`drivestage.fork_drop.free_in_forks`, or a module's own at-fork hook).

The child reports through a pipe, read with a bound (select). Real PyDrive2 + googleapiclient
+ httplib2 against the emulator."""
from __future__ import annotations

import hashlib
import importlib
import io
import os
import pkgutil
import select
import signal
import sys
import tarfile
import threading
from contextlib import ExitStack
from typing import Any, Callable

import pytest

import drivestage
from drivestage.drive import connect

LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


def _forked(work: Callable[[], Any], bound_s: float = 10.0) -> str:
    """What ``work()`` in a forked child said: "ok", or its error's text; "hung" when it
    had not ended after ``bound_s`` (then killed)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # (the child: never back into pytest)
        os.close(read)
        try:
            said = (work() or "ok").encode()
        except BaseException as exc:
            said = f"{type(exc).__name__}: {exc}".encode()[:2000]
        os.write(write, said)
        os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], bound_s)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            return "hung"
        return os.read(read, 4096).decode()
    finally:
        os.close(read)
        os.waitpid(pid, 0)


def _forked_holding(locks: list[Any], work: Callable[[], Any], bound_s: float = 10.0) -> str:
    """``_forked(work, bound_s)`` while a thread of this process holds each of ``locks``."""
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with ExitStack() as stack:
            for lock in locks:
                assert lock.acquire(timeout=10)
                stack.callback(lock.release)
            held.set()
            done.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(20)
        return _forked(work, bound_s)
    finally:
        done.set()
        holder.join(20)


def _module_locks() -> list[tuple[str, str]]:
    """(module, name) of every lock a module of drivestage holds in a global (the emulator,
    a server process of its own, aside)."""
    found = []
    for info in pkgutil.walk_packages(drivestage.__path__, "drivestage."):
        if info.name.startswith("drivestage.emulator") or info.name == "drivestage.__main__":
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, LOCK_TYPES):
                found.append((info.name, name))
    return found


def test_every_module_lock_is_free_in_a_forked_child():
    found = _module_locks()
    assert ("drivestage.partials", "_listed_lock") in found   # (the walk finds them)

    def taken() -> str:
        stuck = [f"{m}.{n}" for m, n in found
                 if not getattr(sys.modules[m], n).acquire(timeout=0.5)]
        return " ".join(stuck) or "ok"

    assert _forked_holding([getattr(sys.modules[m], n) for m, n in found], taken) == "ok"


def _tgz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("set/a.txt")
        info.size = 1000
        tf.addfile(info, io.BytesIO(b"x" * 1000))
    return buf.getvalue()


def test_a_child_forked_while_a_pull_looked_up_its_listing_pulls(emulator, env, tmp_path):
    from drivestage import partials

    emulator.add_file("d/set.tar.gz", _tgz())
    said = _forked_holding([partials._listed_lock], lambda: drivestage.pull(
        "drive:d/set.tar.gz", str(tmp_path / "dest"), extract=True, quiet=True,
        store=connect(api_root=emulator.url, token="t")) and None)
    assert said == "ok"
    assert (tmp_path / "dest" / "set" / "a.txt").read_bytes() == b"x" * 1000


def test_a_child_forked_while_a_push_chose_its_locks_folder_pushes(emulator, env, tmp_path):
    from drivestage import lockdir

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    said = _forked_holding([lockdir._GUARD], lambda: drivestage.push(
        str(src), "drive:runs", store=connect(api_root=emulator.url, token="t")) and None)
    assert said == "ok"
    assert [(f["title"], f["md5Checksum"]) for f in emulator.files()
            if not f["mimeType"].endswith(".folder")] == [("a.txt", hashlib.md5(b"a").hexdigest())]


def test_a_child_forked_while_a_member_list_was_copied_extracts(tmp_path):
    from drivestage.extract import extract_archive, members

    (tmp_path / "set.tar.gz").write_bytes(_tgz())
    said = _forked_holding([members._LISTINGS_LOCK], lambda: extract_archive(
        tmp_path / "set.tar.gz", tmp_path / "out") and None)
    assert said == "ok"
    assert (tmp_path / "out" / "set" / "a.txt").read_bytes() == b"x" * 1000
