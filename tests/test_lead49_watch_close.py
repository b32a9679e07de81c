"""A folder pull's directory watch (drivestage.dir_watch) is closed without waiting on the
kernel: closing an inotify descriptor waits an RCU grace period for the watches removed
before it (8-30 ms a pull on a busy machine; a seventh of the interrupt sweeps' time, parked
closes included). A process has one inotify descriptor, never closed: a watch's close
removes its watch alone, the events of each folder go to its own watches, and a forked
child never reads nor changes its parent's descriptor."""
from __future__ import annotations

import os

import pytest

from drivestage import dir_watch


def _watches(fd: int) -> int:
    """How many watches the inotify descriptor ``fd`` holds (its fdinfo's lines)."""
    with open(f"/proc/self/fdinfo/{fd}") as fh:
        return sum(line.startswith("inotify wd:") for line in fh)


@pytest.fixture
def folder_fd(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield tmp_path, fd
    os.close(fd)


def _a_watch(fd):
    watch = dir_watch.watch(fd, lambda name: False)
    if watch is None:
        pytest.skip("no inotify on this file system here")
    return watch


def test_a_closed_watch_is_removed_at_once_and_the_descriptor_kept_for_the_next(folder_fd):
    folder, fd = folder_fd
    watch = _a_watch(fd)
    inotify = watch._fd
    held = _watches(inotify)
    (folder / "a@k.json").write_text("{}")
    assert watch.changed()
    watch.close()
    assert _watches(inotify) == held - 1             # removed now
    assert "inotify" in os.readlink(f"/proc/self/fd/{inotify}")   # not closed (no wait)
    (folder / "b@k.json").write_text("{}")
    assert not watch.changed()                       # closed: says nothing
    again = _a_watch(fd)
    assert again._fd == inotify and _watches(inotify) == held   # the same descriptor
    again.close()


def test_each_folder_s_events_go_to_its_own_watches(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fa = os.open(tmp_path / "a", os.O_RDONLY | os.O_DIRECTORY)
    fb = os.open(tmp_path / "b", os.O_RDONLY | os.O_DIRECTORY)
    try:
        a, b, a2 = _a_watch(fa), _a_watch(fb), _a_watch(fa)
        (tmp_path / "b" / "x").write_text("")
        assert not a.changed()                       # (it read b's event: handed to b)
        assert b.changed() and not b.changed()
        assert not a2.changed()
        (tmp_path / "a" / "y").write_text("")
        a.close()                                    # one folder, one kernel watch: kept
        assert a2.changed()
        (tmp_path / "a" / "z").write_text("")
        assert a2.changed() and not b.changed()
        a2.close()
        b.close()
    finally:
        os.close(fa)
        os.close(fb)


def test_a_forked_child_neither_reads_nor_removes_the_parents_watch(folder_fd):
    folder, fd = folder_fd
    watch = _a_watch(fd)
    inotify = watch._fd
    (folder / "a@k.json").write_text("{}")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # (the child: what its inherited watch says, then its own watch's fd)
        said = watch.changed()
        watch.close()
        own = dir_watch.watch(fd, lambda name: False)
        os.write(write, f"{said} {own is not None and own._fd != inotify}".encode())
        os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 32) == b"True True"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert watch.changed()                           # the event still the parent's
    (folder / "b@k.json").write_text("{}")
    assert watch.changed()                           # and the watch still held
    watch.close()
