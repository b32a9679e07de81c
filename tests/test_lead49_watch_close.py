"""A folder pull's directory watch (drivestage.dir_watch) is closed without waiting on the
kernel: closing an inotify descriptor that still holds a watch waits an RCU grace period
(8-30 ms a pull on a busy machine; a seventh of the interrupt sweeps' time). The watch is
removed at close (the kernel frees it in the background) and the descriptor closed at a
later close or watch once freed; a forked child never closes its parent's numbers."""
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


def test_a_closed_watch_is_removed_at_once_and_its_descriptor_closed_later(folder_fd,
                                                                           monkeypatch):
    folder, fd = folder_fd
    dir_watch.close_parked(everything=True)
    watch = _a_watch(fd)
    inotify = watch._fd
    assert _watches(inotify) == 1
    (folder / "a@k.json").write_text("{}")
    assert watch.changed()
    watch.close()
    # Removed now (nothing more is queued), the descriptor kept until the kernel freed it.
    assert _watches(inotify) == 0
    assert [fd for _, fd in dir_watch._parked] == [inotify]
    (folder / "b@k.json").write_text("{}")
    assert not watch.changed()                      # closed: says nothing
    monkeypatch.setattr(dir_watch, "PARKED_S", 0.0)
    dir_watch.close_parked()
    assert dir_watch._parked == []
    assert not os.path.exists(f"/proc/self/fd/{inotify}") or \
        "inotify" not in os.readlink(f"/proc/self/fd/{inotify}")


def test_the_next_watch_closes_what_waited_long_enough_and_at_most_a_few_wait(folder_fd,
                                                                              monkeypatch):
    _, fd = folder_fd
    dir_watch.close_parked(everything=True)
    monkeypatch.setattr(dir_watch, "PARKED_S", 3600.0)   # (never due by time here)
    closed = []
    for _ in range(dir_watch.PARKED_MAX + 1):
        watch = _a_watch(fd)
        closed.append(watch._fd)
        watch.close()
    assert len(dir_watch._parked) == 0               # one over the bound: all closed
    watch = _a_watch(fd)
    watch.close()
    assert len(dir_watch._parked) == 1
    monkeypatch.setattr(dir_watch, "PARKED_S", 0.0)
    _a_watch(fd).close()                             # (the next watch closes the due one)
    assert len(dir_watch._parked) <= 1
    dir_watch.close_parked(everything=True)
    assert dir_watch._parked == []


def test_a_forked_child_forgets_the_parents_parked_descriptors(folder_fd, monkeypatch):
    _, fd = folder_fd
    dir_watch.close_parked(everything=True)
    monkeypatch.setattr(dir_watch, "PARKED_S", 3600.0)
    _a_watch(fd).close()
    assert len(dir_watch._parked) == 1
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:   # (the child: says what it would close, and goes)
        os.write(write, str(len(dir_watch._parked)).encode())
        os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 16) == b"0"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    dir_watch.close_parked(everything=True)
