"""stage23: `pull -x` of a local archive, extracted where it lies.

1. a first pull reads the original once to hash it and once to extract it (it read it three
   times: the listing's md5, the md5 checked against its identity, the extraction), and a
   rerun on an unchanged original reads none of it (it hashed it whole to say "already
   staged");
2. the original's identity holds its ctime, which no user sets: bytes rewritten with the
   mtime put back after a killed pull are staged anew; a chmod (a ctime change only) costs
   a hash, never a refusal;
3. the transient stage lock's re-check is bounded (a file system whose inode numbers change
   spun there for ever).

Bytes read are counted by the kernel (``rchar`` of /proc/self/io: the pull runs in this
process, its reaped extraction workers are added to it), never timed.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import zipfile

import pytest

from _kill import sigkill_when
from test_attack22_stage import ROOT, _tree
from test_messages_walk20 import _drivestage

needs_proc_io = pytest.mark.skipif(not os.path.exists("/proc/self/io"),
                                   reason="counts bytes read with /proc/self/io")


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # stored: the archive is as big as its members
        for path, data in members.items():
            zf.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _members(n: int = 8, size: int = 1 << 20) -> dict[str, bytes]:
    return {f"ds/f{i:02d}.bin": os.urandom(size) for i in range(n)}


def _setup(tmp_path, members):
    (tmp_path / "input").mkdir()
    archive = tmp_path / "input" / "voc.zip"
    archive.write_bytes(_zip(members))
    return archive, tmp_path / "data"


def _pull(archive, dest, *more):
    return _drivestage("pull", str(archive), str(dest), "-x", "-q", *more)


def _rchar() -> int:
    with open("/proc/self/io") as fh:
        return int(dict(line.split(": ") for line in fh.read().splitlines())["rchar"])


def _reads(archive, dest, *more) -> float:
    """A pull in this process: what it read, in sizes of the archive (``rchar``: every byte
    read, the page cache's too; the stamps and the state folder are a few KB)."""
    before = _rchar()
    r = _pull(archive, dest, *more)
    assert r.exit_code == 0, r.output
    return (_rchar() - before) / archive.stat().st_size


# ------------------------------------------------ 3. the stage lock's re-check, bounded

class _Replacer:
    """Another thread that replaces the lock file (a new inode under its name) each time the
    lock's holder is between its two stats: what a file system whose inode numbers change
    from one look to the next shows. Event-driven: the holder waits until it is done."""

    def __init__(self, folder: str, name: str):
        self.path = os.path.join(folder, ".drivestage", name)
        self.go, self.done = threading.Event(), threading.Event()
        self.rounds = 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            self.go.wait()
            self.go.clear()
            if self.stop:
                return
            tmp = self.path + ".new"
            with open(tmp, "wb"):
                pass
            os.replace(tmp, self.path)
            self.rounds += 1
            self.done.set()

    def between_stats(self, *args, **kwargs):
        self.done.clear()
        self.go.set()
        assert self.done.wait(10)
        return os.stat(*args, **kwargs)

    def close(self) -> None:
        self.stop = True
        self.go.set()
        self.thread.join(10)


@pytest.fixture
def replacer(tmp_path, monkeypatch):
    from drivestage.extract import statedir

    r = _Replacer(str(tmp_path), "x.lock")
    monkeypatch.setattr(statedir, "_lookup", r.between_stats)
    yield r
    r.close()


def test_a_lock_whose_file_never_stays_the_same_fails_in_one_line(tmp_path, replacer):
    from drivestage.errors import DestChangedError
    from drivestage.extract import statedir

    with pytest.raises(DestChangedError) as info:
        with statedir.state_lock(str(tmp_path), "x.lock", lambda: None, transient=True):
            pytest.fail("the lock was held on a file its name does not lead to")
    lock = os.path.join(str(tmp_path), ".drivestage", "x.lock")
    assert str(info.value) == (
        f"cannot hold the lock {lock}: the file locked was not the one of that name "
        f"{statedir.LOCK_RECHECKS} times in a row (a file system whose inode numbers change, "
        "such as some FUSE or network mounts?); pull into a DEST on a local disk")
    assert replacer.rounds == statedir.LOCK_RECHECKS            # bounded in count


def test_the_recheck_is_bounded_in_time_too(tmp_path, replacer, monkeypatch):
    from drivestage.errors import DestChangedError
    from drivestage.extract import statedir

    monkeypatch.setattr(statedir, "LOCK_RECHECK_S", 0.0)      # every round is over time
    with pytest.raises(DestChangedError, match="in a row"):
        with statedir.state_lock(str(tmp_path), "x.lock", lambda: None, transient=True):
            pass
    assert replacer.rounds == 1
