"""A pull and a push interrupted (Ctrl-C) at the start of each drivestage function they
call, in turn, in a process that lives on (a notebook): the next one does its work at once,
and nothing is lost or left behind."""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
import time

import pytest

import drivestage
from drivestage.stage import pull
from drivestage.upload_tree import push
from _archives import a_zip, tree
from test_interrupt_locks import _InterruptAt


def _drivestage_threads(besides: set) -> list[str]:
    return [t.name for t in threading.enumerate()
            if t.name.startswith("drivestage-") and t not in besides]


def _none_left(seconds: float, besides: set) -> list[str]:
    """drivestage's threads still running ``seconds`` on, but those in ``besides``."""
    deadline = time.monotonic() + seconds
    while _drivestage_threads(besides) and time.monotonic() < deadline:
        time.sleep(0.01)
    return _drivestage_threads(besides)


def _interrupted_then_rerun(k: int, root: str, before: set, call) -> "str | None":
    """``call()`` with a Ctrl-C at its ``k``-th drivestage call, then its threads' end and
    ``call()`` again, timed: where the Ctrl-C landed, or None when ``call()`` ended first."""
    tracer = _InterruptAt(k, only_under=root)
    sys.settrace(tracer)
    try:
        call()
    except BaseException:
        if tracer.calls < k:
            raise
    else:
        return None
    finally:
        sys.settrace(None)
    where = f"a Ctrl-C at call {k}: {tracer.where}"
    assert _none_left(10, before) == [], f"threads left running after {where}"
    began = time.monotonic()
    call()
    assert time.monotonic() - began < 10, f"the rerun after {where} waited"
    return where


@pytest.mark.slow
def test_a_ctrl_c_at_any_call_of_a_pull_extract_then_a_rerun(emulator, drive_env, tmp_path,
                                                             monkeypatch):
    """``pull --extract`` of a zip that is extracted as it downloads, interrupted at the
    start of each drivestage function it calls, in turn: every thread it started ends, and
    the next pull, in the same process (a notebook), stages exactly the archive at once and
    leaves nothing else in DEST."""
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "20")
    members = {f"set/{i:02d}.bin": os.urandom(3000 + i) for i in range(12)}
    blob = a_zip(members)
    emulator.add_file("d/set.zip", blob)
    store = drivestage.connect()
    root = os.path.dirname(drivestage.__file__)
    landed = 0
    before = set(threading.enumerate())  # another test's, in this worker process
    for k in range(1, 5000):
        dest = tmp_path / f"d{k}"
        where = _interrupted_then_rerun(k, root, before, lambda: pull(
            "drive:d/set.zip", str(dest), extract=True, quiet=True, store=store))
        if where is None:
            break
        landed += 1
        assert tree(dest) == {"set.zip": blob, **members}, f"after {where}"
        # What a Ctrl-C at the wrong moment left (a temporary folder) the rerun removed.
        assert [p.name for p in dest.glob(".drivestage-*")] == [], f"after {where}"
        shutil.rmtree(dest)
    assert landed > 200


@pytest.mark.slow
def test_a_ctrl_c_at_any_call_of_a_push_then_a_rerun(emulator, drive_env, tmp_path,
                                                     monkeypatch):
    """``push`` of a run folder interrupted at the start of every 4th drivestage function
    it calls, in turn: the threads it started end, and the next push, in the same process,
    finishes at once with Drive holding exactly the folder's files, once each (a lock left
    held made every later push into the place wait for good)."""
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "20")
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "state"))
    src = tmp_path / "run"
    src.mkdir()
    files = {f"f{i}.txt": os.urandom(2000 + i) for i in range(3)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    store = drivestage.connect()
    root = os.path.dirname(drivestage.__file__)
    landed = 0
    before = set(threading.enumerate())
    for k in range(1, 5000, 4):  # every 4th call: each one costs two pushes (105 s for all)
        place = f"runs/r{k}"
        where = _interrupted_then_rerun(k, root, before, lambda: push(
            str(src), place, store=store, jobs=2))
        if where is None:
            break
        landed += 1
        on_drive = sorted((e.name, e.md5) for e in store.list(store.resolve(place)))
        assert on_drive == sorted((n, hashlib.md5(d).hexdigest()) for n, d in files.items()), \
            f"after {where}"
    assert landed > 100 // 4
