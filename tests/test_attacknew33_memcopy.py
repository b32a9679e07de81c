"""A private copy kept in memory when the temporary folder has no room
(:func:`drivestage.sidecar_copy.private`), attacked (attacknew33)."""
from __future__ import annotations

import os
import tempfile

import pytest

from _tmpfs import small_disk  # noqa: F401  (fixture)
from drivestage import snapshots
from test_attack18_train import _fill

pytestmark = pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd: Linux")


def _memfds() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:")
        except OSError:
            pass
    return n


@pytest.fixture
def full_tmp(small_disk, monkeypatch):
    disk = small_disk(1 << 20)
    (disk / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(disk / "tmp"))
    _fill(disk)
    return disk / "tmp"


def test_a_changing_log_sent_from_memory_is_sent_whole(full_tmp, tmp_path):
    """A log that kept changing is sent from a private copy; with the temporary folder full,
    the copy in the temporary folder read the log's first megabyte, failed to write it, and
    the copy in memory went on from there: Drive got the log without its first megabyte (an
    empty file for a log under 1 MiB), verified, as the log's snapshot."""
    log = tmp_path / "train.log"
    data = b"".join(b"step %d\n" % i for i in range(200_000))  # 1.4 MB: more than a chunk
    log.write_bytes(data)
    sent = []
    snapshots.upload(lambda p: sent.append(open(p, "rb").read()), str(log), copy=True,
                     changing={str(log)})
    assert len(sent) == 1 and sent[0] == data, (len(sent[0]), len(data))
    assert os.listdir(full_tmp) == []


def test_a_log_too_large_for_a_copy_in_memory_leaves_no_memory_behind(
        full_tmp, tmp_path, monkeypatch):
    """A log over the copy limit, found so while its copy was made in memory: the memory
    file stayed open (and held) for the life of the process, once per period."""
    monkeypatch.setattr(snapshots, "MAX_BYTES", 3 << 20)
    log = tmp_path / "train.log"
    log.write_bytes(os.urandom(4 << 20))
    before = _memfds()
    sent = []
    snapshots.upload(lambda p: sent.append(p), str(log), copy=True, changing={str(log)})
    assert sent == [str(log)]          # too large for a copy: sent as any such file
    assert _memfds() == before


def test_a_log_of_a_long_non_ascii_name_is_sent_from_memory(full_tmp, tmp_path):
    """The copy in memory is named after the file, cut at 240 characters; the kernel takes
    249 bytes, and a name of 84 characters, 80 of them Japanese (244 bytes; a file's name
    may have 255), made ``memfd_create`` fail with ``[Errno 22] Invalid argument``: the
    push's error for that file."""
    log = tmp_path / ("学習ログ" * 20 + ".log")   # 244 bytes
    log.write_bytes(b"step 1\n" * 1000)
    sent = []
    snapshots.upload(lambda p: sent.append(open(p, "rb").read()), str(log), copy=True,
                     changing={str(log)})
    assert sent == [log.read_bytes()]


def test_a_ctrl_c_at_any_point_of_a_sidecars_copy_in_memory_leaves_none_open(
        full_tmp, tmp_path):
    """The copy in memory is closed as the push's sidecar upload ends; a Ctrl-C between its
    removal from the copies' list and its close (or as the failed write's clean-up began)
    left it open for the life of the notebook's process."""
    from drivestage import sidecar_copy
    from drivestage.store import RemoteEntry
    from test_interrupt_locks import _each_ctrl_c

    tempfile._get_candidate_names()   # (see the sweep of the copy in the temporary folder)
    side = tmp_path / "epoch_001.json"
    side.write_bytes(b'{"epoch": 1, "iteration": 4, "md5": "%s"}' % (b"a" * 32))
    sent = [RemoteEntry(id="x", name="epoch_001.pt", is_dir=False, md5="a" * 32)]

    def work() -> None:   # what a push does with the sidecar it sends
        with sidecar_copy.checked(str(side), sent, sent) as copy:
            assert copy is not None and copy.startswith("/proc/self/fd/")

    work()
    before = _memfds()
    landed, left = 0, []
    for point in _each_ctrl_c(work, only_under=os.path.dirname(sidecar_copy.__file__)):
        landed += 1
        if _memfds() != before or sidecar_copy._IN_MEMORY:
            left.append(str(point))
            for fd in [*sidecar_copy._IN_MEMORY.values()]:
                os.close(fd)
            sidecar_copy._IN_MEMORY.clear()
            before = _memfds()
    assert landed >= 50
    assert left == []
    assert os.listdir(full_tmp) == []


def test_a_process_forked_while_a_copy_is_in_memory_does_not_hold_it(full_tmp, tmp_path):
    """The trainer forks its DataLoader's workers from the training thread at each epoch
    while its push thread sends a sidecar or a log from a copy in memory: each worker got
    the copy's descriptor (close-on-exec ends it only at an exec) and held its memory (up to
    64 MiB for a log) for the worker's life."""
    from drivestage import sidecar_copy

    with sidecar_copy.private(str(tmp_path / "train.log"), b"step 1\n" * 1000) as copy:
        assert copy.startswith("/proc/self/fd/")
        fd = int(copy.rsplit("/", 1)[1])
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:   # (the worker: says whether it holds the copy, and ends)
            try:
                held = os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:")
            except OSError:
                held = False
            os.write(w, b"1" if held else b"0")
            os._exit(0)
        os.close(w)
        try:
            said = os.read(r, 1)
        finally:
            os.close(r)
            os.waitpid(pid, 0)
    assert said == b"0"
