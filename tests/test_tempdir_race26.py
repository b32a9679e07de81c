"""An extraction making its temporary folder in DEST while another extraction into DEST
sweeps stale ones (a folder pull extracts its archives at once; two pulls into one DEST).

The owner lock was made under its name, then locked: a sweep that looked in that moment could
lock it, took the new folder for a dead extraction's, emptied it and let the lock go before it
removed the lock's name and the folder. The new extraction, locking it in between, found its
lock in place and wrote into a folder about to vanish: `FileNotFoundError: … 'VOCdevkit'`
(six extractions into one DEST at once: about 1 in 100, found by
test_extract_concurrency under load). The lock now gets its name only once it is held.

The two moments are set with events, in this process: the sweep runs while the new
folder's lock file exists and is not yet held, and the new extraction takes its lock while
the sweep is between letting the lock go and removing its name."""
from __future__ import annotations

import os
import threading

import pytest

from drivestage.extract import tempdir


@pytest.mark.skipif(not hasattr(os, "fork"), reason="flock (POSIX)")
def test_a_sweep_never_removes_a_temporary_folder_being_made(tmp_path, monkeypatch):
    dest = tmp_path / "dest"
    dest.mkdir(mode=0o755)
    paused, go, made = threading.Event(), threading.Event(), threading.Event()
    just_made, remove_at = tempdir._just_made, tempdir._remove_at

    def pause_before_the_lock(fd, lock):
        paused.set()                    # the lock file exists, not held yet: the sweep now
        assert go.wait(30)
        return just_made(fd, lock)

    def between_unlock_and_unlink(dir_fd, name):
        if name == tempdir.OWNER_LOCK and threading.current_thread() is sweeper:
            go.set()                    # the sweep let the lock go: the new one takes it now
            assert made.wait(30)
        return remove_at(dir_fd, name)

    monkeypatch.setattr(tempdir, "_just_made", pause_before_the_lock)
    monkeypatch.setattr(tempdir, "_remove_at", between_unlock_and_unlink)
    got: list = []

    def make() -> None:
        try:
            got.append(tempdir.make_temp(str(dest)))
        finally:
            made.set()

    def sweep() -> None:
        assert paused.wait(30)
        try:
            tempdir.remove_stale_temps(str(dest))
        finally:
            go.set()

    maker, sweeper = threading.Thread(target=make), threading.Thread(target=sweep)
    maker.start()
    sweeper.start()
    maker.join(60)
    sweeper.join(60)
    ((temp, lock),) = got
    try:
        assert os.path.isdir(temp.path), "the sweep removed the folder an extraction holds"
        os.mkdir("VOCdevkit", dir_fd=temp.fd)    # what the extraction writes next
        assert os.path.isdir(os.path.join(temp.path, "VOCdevkit"))
    finally:
        tempdir.remove_temp(temp, lock)
    assert os.listdir(dest) == []
