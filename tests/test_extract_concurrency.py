"""Extractions into one DEST at the same time (threads and processes): every member of every
archive lands with its bytes, nothing fails, and decompression still overlaps."""
from __future__ import annotations

import fcntl
import os
import random
import tarfile
import threading
import zipfile

import pytest

from drivestage.errors import ArchiveError, UnsafeArchiveError
from drivestage.extract import MERGE_LOCK, extract_archive
from tests._kill import sigkill_when
from tests._ramdisk import tmp_path  # noqa: F401  (a fixture: thousands of files)
from tests.test_extract import make_tar, make_zip, snapshot
from _forkcli import PIPE, cli_server
from _signal_env import _cli_server  # noqa: F401  (the fork server, started before the leak check)


def voc_archives(tmp_path, count: int, shared: int = 300) -> list[tuple[str, dict[str, bytes]]]:
    """``count`` archives that share ``VOCdevkit/`` and, each a random half of, ``shared``
    folders below it (the VOC pattern), alternately zip and tar, each with its own file in
    each of its shared folders: so the merges keep meeting folders that another archive is
    creating at that moment."""
    rng = random.Random(count * 1000 + shared)
    out = []
    for k in range(count):
        files = {f"VOCdevkit/VOC20{k:02d}/JPEGImages/000.jpg": os.urandom(100)}
        for j in range(shared):
            if rng.random() < 0.5:
                files[f"VOCdevkit/s{j:03d}/Annotations/{k:02d}.xml"] = f"<a k={k} j={j}/>".encode()
        if k % 2:
            path = make_tar(tmp_path / f"part{k}.tar", sorted(files.items()))
        else:
            path = make_zip(tmp_path / f"part{k}.zip", [(n, d, None) for n, d in sorted(files.items())])
        out.append((path, files))
    return out


def user_view(dest) -> dict:
    """The snapshot of DEST without drivestage's state folder."""
    return {k: v for k, v in snapshot(dest).items() if not k.startswith(".drivestage")}


def assert_all_present(dest, archives, user_files):
    files = {k: v for k, v in user_view(dest).items() if isinstance(v, bytes)}
    expected = dict(user_files)
    for _, members in archives:
        expected.update(members)
    assert files == expected
    assert not [n for n in os.listdir(dest) if n.startswith(".drivestage-")]


def test_threads_merging_archives_that_share_vocdevkit(tmp_path):
    archives = voc_archives(tmp_path, 6)
    for r in range(5):
        dest = tmp_path / f"dest{r}"
        (dest / "VOCdevkit").mkdir(parents=True)
        (dest / "mine.txt").write_bytes(b"the user's")
        start = threading.Barrier(len(archives))
        errors: list[BaseException] = []

        def one(path):
            start.wait()
            try:
                extract_archive(path, dest, jobs=1)
            except BaseException as exc:  # reported below, with the round
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(p,)) for p, _ in archives]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == [], f"round {r}"
        assert_all_present(dest, archives, {"mine.txt": b"the user's"})


CHILD = r"""
import sys
from drivestage.extract import extract_archive
extract_archive(sys.argv[1], sys.argv[2], jobs=1)
"""


def test_processes_merging_archives_that_share_vocdevkit(tmp_path):
    archives = voc_archives(tmp_path, 5)
    for r in range(4):
        dest = tmp_path / f"dest{r}"
        dest.mkdir()
        (dest / "VOCdevkit/common").mkdir(parents=True)
        (dest / "VOCdevkit/common/mine.txt").write_bytes(b"the user's")
        procs = [cli_server().popen([str(path), str(dest)], script=CHILD, stdout=PIPE, stderr=PIPE)
                 for path, _ in archives]
        results = [(p.wait(60), p.communicate()[1].decode()) for p in procs]
        assert [rc for rc, _ in results] == [0] * len(procs), results
        assert_all_present(dest, archives, {"VOCdevkit/common/mine.txt": b"the user's"})


# --- the merge lock: held for the merge only, and everything re-checked under it ---------------

class HeldLock:
    """The merge lock of ``dest``, taken by the test as another extraction would."""

    def __init__(self, dest):
        path = os.path.join(dest, MERGE_LOCK)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def extract_in_thread(archive, dest, total: int):
    """Start ``extract_archive`` in a thread; return (thread, decompressed event, outcome)."""
    written = threading.Event()
    seen = [0]
    outcome: dict = {}

    def progress(n):
        seen[0] += n
        if seen[0] >= total:
            written.set()

    def run():
        try:
            outcome["members"] = extract_archive(archive, dest, progress=progress, jobs=1)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            written.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, written, outcome


def test_decompression_overlaps_a_merge_in_progress(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    data = os.urandom(200_000)
    archive = make_zip(tmp_path / "a.zip", [("VOCdevkit/a.bin", data, None)])
    lock = HeldLock(dest)
    try:
        thread, written, outcome = extract_in_thread(archive, dest, len(data))
        assert written.wait(30), "decompression waited for the merge lock"
        assert "error" not in outcome
        assert not (dest / "VOCdevkit").exists()  # the merge itself waits
        assert thread.is_alive()
    finally:
        lock.release()
    thread.join(30)
    assert outcome == {"members": ["VOCdevkit/a.bin"]}
    assert (dest / "VOCdevkit/a.bin").read_bytes() == data


def test_a_folder_appearing_before_the_merge_is_still_never_replaced(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    archive = make_zip(tmp_path / "a.zip", [("new.txt", b"n", None), ("data", b"a file", None)])
    lock = HeldLock(dest)
    try:
        thread, written, outcome = extract_in_thread(archive, dest, 7)
        assert written.wait(30)
        (dest / "data").mkdir()  # another extraction made it while this one decompressed
        (dest / "data/theirs.txt").write_bytes(b"theirs")
    finally:
        lock.release()
    thread.join(30)
    assert isinstance(outcome.get("error"), ArchiveError)
    assert "member data is a file, but" in str(outcome["error"])
    assert user_view(dest) == {"data": None, "data/theirs.txt": b"theirs"}


def test_a_link_appearing_before_the_merge_is_judged(tmp_path):
    """Archive B's ``esc -> d/up/x`` is harmless until another extraction puts a link at
    ``d/up`` that leaves DEST: B is judged against DEST as it is when B merges."""
    dest = tmp_path / "dest"
    dest.mkdir()
    (tmp_path / "outside").mkdir()
    archive = make_tar(tmp_path / "b.tar", [("pad.txt", b"p"), ("esc", tarfile.SYMTYPE, "d/up/x")])
    lock = HeldLock(dest)
    try:
        thread, written, outcome = extract_in_thread(archive, dest, 1)
        assert written.wait(30)
        (dest / "d").mkdir()
        os.symlink("../../outside", dest / "d/up")
    finally:
        lock.release()
    thread.join(30)
    assert isinstance(outcome.get("error"), UnsafeArchiveError)
    assert not os.path.lexists(dest / "esc") and not (dest / "pad.txt").exists()


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_merge_then_a_rerun(tmp_path):
    """Killed while moving members into place: every path holds the old file or the new one
    (never nothing, never a truncated file), the lock dies with the process, and a rerun
    completes the extraction and removes the dead one's temporary folder."""
    n = 2000
    dest = tmp_path / "dest"
    (dest / "VOCdevkit/JPEGImages").mkdir(parents=True)
    (dest / "VOCdevkit/mine.txt").write_bytes(b"the user's")
    names = [f"VOCdevkit/JPEGImages/{i:05d}.jpg" for i in range(n)]
    for name in names:  # an older version of every member: replaced one by one
        (dest / name).write_bytes(b"old")
    archive = make_zip(tmp_path / "v2.zip", [(name, f"new {name}".encode(), None) for name in names],
                       zipfile.ZIP_STORED)
    first, last = dest / names[0], dest / names[-1]
    proc = cli_server().popen([str(archive), str(dest)], script=CHILD, stdout=PIPE,
                              stderr=PIPE)
    sigkill_when(proc, lambda: first.read_bytes() != b"old", "the merge never started")
    assert last.read_bytes() == b"old", "the merge finished before the kill: make it longer"
    assert [n for n in os.listdir(dest) if n.startswith(".drivestage-extract-")]
    for name in names:
        assert (dest / name).read_bytes() in (b"old", f"new {name}".encode())
    assert extract_archive(archive, dest) == names  # would hang if the lock outlived its holder
    files = {k: v for k, v in user_view(dest).items() if isinstance(v, bytes)}
    assert files == {"VOCdevkit/mine.txt": b"the user's",
                     **{name: f"new {name}".encode() for name in names}}
    assert not [n for n in os.listdir(dest) if n.startswith(".drivestage-")]


@pytest.mark.parametrize("before", ["link", "folder"])
def test_a_folder_and_a_link_swapping_before_the_merge(tmp_path, before):
    """What DEST has at a member's folder changes between the early check and the merge: the
    merge goes by what is there then, never through a link, never losing the user's files."""
    dest = tmp_path / "dest"
    dest.mkdir()
    (tmp_path / "outside").mkdir()
    if before == "link":
        os.symlink("../outside", dest / "d")
    else:
        (dest / "d").mkdir()
    archive = make_zip(tmp_path / "a.zip", [("d/x.txt", b"x", None)])
    lock = HeldLock(dest)
    try:
        thread, written, outcome = extract_in_thread(archive, dest, 1)
        assert written.wait(30)
        if before == "link":
            os.unlink(dest / "d")
            (dest / "d").mkdir()
            (dest / "d/mine.txt").write_bytes(b"the user's")
        else:
            os.rmdir(dest / "d")
            os.symlink("../outside", dest / "d")
    finally:
        lock.release()
    thread.join(30)
    assert outcome == {"members": ["d/x.txt"]}
    assert not os.path.islink(dest / "d")
    expected = {"d": None, "d/x.txt": b"x"}
    if before == "link":
        expected["d/mine.txt"] = b"the user's"
    assert user_view(dest) == expected
    assert snapshot(tmp_path / "outside") == {}
