"""attack43: a process forked while another thread of its parent pushed (a notebook's
``multiprocessing`` pool, forked while a push ran in a thread) and whose own push went into
the same place waited for ever: the push's per-place thread lock (:func:`drivestage.locks.place_lock`,
held for the whole push, minutes for a big checkpoint) stayed held in the child, where the
thread holding it does not exist; it said "another push into … is running in this process;
waiting for it". attacksig42 freed the module locks in forks (its walk of module globals
finds a lock, not a dict of them made as pushes run). Real PyDrive2 stack against the
emulator."""
from __future__ import annotations

import hashlib

import drivestage
from drivestage import locks
from drivestage.drive import connect

from test_attacksig42_fork_locks import _forked_holding


def test_a_child_forked_while_a_thread_pushed_into_the_same_place_pushes(emulator, env, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    store = connect(api_root=emulator.url, token="t")
    drivestage.push(str(src), "drive:runs", store=store)   # (makes the place's thread lock)
    held = list(locks._THREAD_LOCKS.values())
    assert held   # the thread lock a second push into drive:runs takes, held by a thread
    (src / "b.txt").write_text("b")
    said = _forked_holding(held, lambda: drivestage.push(
        str(src), "drive:runs", store=connect(api_root=emulator.url, token="t")) and None,
        bound_s=30)   # (a whole push in the child: room for a loaded machine)
    assert said == "ok"
    assert sorted((f["title"], f["md5Checksum"]) for f in emulator.files()
                  if not f["mimeType"].endswith(".folder")) == [
        ("a.txt", hashlib.md5(b"a").hexdigest()), ("b.txt", hashlib.md5(b"b").hexdigest())]
