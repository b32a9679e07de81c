"""A push lock's file replaced by something else in the locks folder (a state folder others
can write, a program gone wrong): a link, a FIFO, a folder. A link was followed: the lock
made the file it led to (as root, anywhere), and locked that (lock28). Now each is refused
with one line naming the entry; nothing is made elsewhere, and nothing hangs."""
from __future__ import annotations

import hashlib
import os

import pytest

from drivestage.errors import LocalFileError
from drivestage.locks import place_lock, tree_lock

ODD = {"link": lambda p, t: os.symlink(t / "made-by-the-lock", p),
       "fifo": lambda p, t: os.mkfifo(p), "folder": lambda p, t: os.mkdir(p)}


def _lock_file(state, kind: str, place: str):
    digest = hashlib.sha256(place.encode()).hexdigest()[:32]
    return state / "locks" / f"{kind}-{digest}.lock"


@pytest.mark.parametrize("odd", ODD)
def test_a_tree_lock_whose_file_is_not_a_plain_file_is_refused(tmp_path, monkeypatch, odd):
    state = tmp_path / "state"
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(state))
    (state / "locks").mkdir(parents=True)
    path = _lock_file(state, "tree", "dir|/runs")
    ODD[odd](path, tmp_path)
    with pytest.raises(LocalFileError) as caught:
        with tree_lock([("dir|/runs/exp1", "/runs/exp1"), ("dir|/runs", "/runs")]):
            pass
    assert str(caught.value) == (
        f"cannot lock /runs/exp1 for this push: {path}, a lock file of drivestage, is a link, "
        "a folder or another user's file; is another program writing there? Remove it (a "
        "lock file holds nothing) and push again")
    assert not (tmp_path / "made-by-the-lock").exists()
    os.rmdir(path) if odd == "folder" else os.unlink(path)
    with tree_lock([("dir|/runs/exp1", "/runs/exp1"), ("dir|/runs", "/runs")]):
        pass   # (removed: it locks again)


def test_a_place_lock_whose_file_is_a_link_says_so(tmp_path, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(state))
    (state / "locks").mkdir(parents=True)
    path = _lock_file(state, "push", "test:place")
    ODD["link"](path, tmp_path)
    with pytest.raises(LocalFileError) as caught:
        with place_lock("test:place", "drive:runs"):
            pass
    assert str(caught.value) == (
        f"cannot lock drive:runs for this push: {path}, a lock file of drivestage, is a link, "
        "a folder or another user's file; is another program writing there? Remove it (a "
        "lock file holds nothing) and push again")
    assert not (tmp_path / "made-by-the-lock").exists()
