"""stage23: `pull -x` of a local archive, extracted where it lies.

1. a first pull reads the original once to hash it and once to extract it (it read it three
   times: the listing's md5, the md5 checked against its identity, the extraction; since
   original25 once, hashed as it is extracted: tests/test_original25.py), and a
   rerun on an unchanged original reads none of it (it hashed it whole to say "already
   staged");
2. the original's identity holds its ctime, which no user sets: bytes rewritten with the
   mtime put back after a killed pull are staged anew; a chmod or a new hard link between
   two pulls (a ctime change only) costs a hash, never a refusal nor an extraction;
3. the transient stage lock's re-check is bounded (a file system whose inode numbers change
   spun there for ever).

Bytes read are counted by the kernel (``rchar`` of /proc/self/io: the pull runs in this
process, its reaped extraction workers are added to it), never timed.
"""
from __future__ import annotations

import io
import os
import signal
import threading
import time
import zipfile

import pytest

from _forkcli import PIPE, cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture: the fork server)
from test_attack22_stage import _tree
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


# ------------------------------------------------ 1. the original read once, not three times

@needs_proc_io
def test_a_first_pull_hashes_the_original_once_and_a_rerun_reads_none_of_it(
        local_state, tmp_path):
    """A 20 GB Kaggle input was read three times by a first `pull -x` (60 GB through the
    input's mount) and once more by every rerun that found it "already staged"."""
    members = _members()
    archive, dest = _setup(tmp_path, members)
    first = _reads(archive, dest)
    assert first < 1.1, first        # hashed as extracted (was 3.0, then 2.0: original25)
    assert _tree(dest) == members
    again = _reads(archive, dest)
    assert again < 0.05, again                            # was 1.0: hashed to say "cached"
    (dest / "ds/f03.bin").unlink()                        # a member put back: no hash either
    assert _reads(archive, dest) < 0.5
    assert _tree(dest) == members


@needs_proc_io
def test_a_new_version_of_the_original_is_hashed_once_too(local_state, tmp_path):
    archive, dest = _setup(tmp_path, _members())
    assert _pull(archive, dest).exit_code == 0
    v2 = _members()
    archive.write_bytes(_zip(v2))
    assert 1.95 < _reads(archive, dest) < 2.2
    assert _tree(dest) == v2


@needs_proc_io
def test_a_rerun_of_a_local_copy_pull_reads_none_of_the_source(local_state, tmp_path):
    """`pull /kaggle/input/x/w.bin ./data` (no -x: a copy): its rerun on the staged copy
    hashed the source whole to find it unchanged. The stamp now records the source's
    identity with its md5; a source rewritten with its mtime put back is copied again."""
    (tmp_path / "input").mkdir()
    source = tmp_path / "input" / "voc.zip"
    source.write_bytes(_zip(_members()))
    dest = tmp_path / "data"
    assert 1.95 < _copy_reads(source, dest) < 2.2          # hashed, then copied (hashing)
    assert _copy_reads(source, dest) < 0.05                 # was 1.0
    st = source.stat()
    v2 = _zip(_members())
    with open(source, "r+b") as fh:
        fh.write(v2)
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _copy_reads(source, dest) > 1.95
    assert (dest / "voc.zip").read_bytes() == v2


@needs_proc_io
def test_a_rerun_of_a_local_folder_pull_reads_none_of_its_files(local_state, tmp_path):
    """`pull /kaggle/input/x ./data`: the rerun listed the folder, hashing every file whole
    (1.0x the folder), to find each copy staged; now the stamps' md5s stand for the files'
    identities. A file rewritten with its mtime put back is copied again, alone."""
    src = tmp_path / "input" / "x"
    (src / "sub").mkdir(parents=True)
    files = {"a.bin": os.urandom(1 << 20), "sub/b.bin": os.urandom(1 << 20),
             "sub/c.bin": os.urandom(1 << 20)}
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    dest = tmp_path / "data"
    total = sum(len(d) for d in files.values())

    def reads() -> float:
        before = _rchar()
        r = _drivestage("pull", str(src), str(dest), "-q")
        assert r.exit_code == 0, r.output
        return (_rchar() - before) / total

    assert 1.95 < reads() < 2.2
    assert reads() < 0.05                                     # was 1.0
    st = (src / "sub/b.bin").stat()
    new = os.urandom(1 << 20)
    (src / "sub/b.bin").write_bytes(new)
    os.utime(src / "sub/b.bin", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert 0.6 < reads() < 0.75                               # that file: hashed, copied
    assert (dest / "x/sub/b.bin").read_bytes() == new
    assert (dest / "x/a.bin").read_bytes() == files["a.bin"]


def _copy_reads(source, dest) -> float:
    before = _rchar()
    r = _drivestage("pull", str(source), str(dest), "-q")
    assert r.exit_code == 0, r.output
    return (_rchar() - before) / source.stat().st_size


# ------------------------------------------------ 2. ctime in the identity

@pytest.mark.parametrize("moment", ["stamp written", "first member merged"])
def test_a_rewrite_with_its_mtime_put_back_after_a_killed_pull_is_staged_anew(
        moment, local_state, tmp_path):
    """SIGKILL during a first `pull -x`, then the original rewritten in place (same size,
    other bytes) and its mtime put back with os.utime: size, mtime and inode all say
    "unchanged"; only the ctime (which utime itself moves) tells. The rerun stages the new
    bytes, never the killed run's nor a cached md5 of the old ones."""
    v1 = {f"ds/f{i:03d}.bin": bytes([65 + i % 20]) * 250_000 for i in range(60)}
    v0 = {f"ds/f{i:03d}.bin": bytes([97 + i % 20]) * 250_000 for i in range(60)}
    archive, dest = _setup(tmp_path, v1)
    proc = cli_server().popen(["pull", str(archive), str(dest), "-x", "-q"], stdout=PIPE,
                              stderr=PIPE)
    state = dest / ".drivestage"
    if moment == "stamp written":
        ready = lambda: state.is_dir() and any(  # noqa: E731
            n.endswith(".json") for n in os.listdir(state))
    else:
        ready = lambda: (dest / "ds").is_dir()  # noqa: E731
    # Killed there, or (the extraction of 15 MB is short: a busy poller may miss it) done:
    # either way the rewrite below must be what the rerun stages.
    try:
        deadline = time.monotonic() + 30
        while not ready() and proc.poll() is None:
            assert time.monotonic() < deadline, "the pull never got there"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    st = archive.stat()
    with open(archive, "r+b") as fh:
        fh.write(_zip(v0))
    os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert archive.stat().st_size == st.st_size
    r = _pull(archive, dest)
    assert r.exit_code == 0, r.output
    assert _tree(dest) == v0
    r = _drivestage("pull", str(archive), str(dest), "-x")
    assert r.exit_code == 0 and "already staged" in r.stderr, r.output


@needs_proc_io
@pytest.mark.parametrize("change", ["chmod", "hard link"])
def test_a_chmod_or_a_new_link_of_the_original_costs_a_hash_not_a_refusal(
        change, local_state, tmp_path):
    """A chmod or a new hard link moves only the ctime: the rerun hashes the original again
    (the bytes may have changed with the mtime put back: nothing else tells), finds the
    same md5 and keeps every member in place: nothing extracted, exit 0."""
    members = _members(4)
    archive, dest = _setup(tmp_path, members)
    assert _pull(archive, dest).exit_code == 0
    inodes = {p: os.stat(dest / p).st_ino for p in members}
    if change == "chmod":
        os.chmod(archive, 0o444)
    else:
        os.link(archive, tmp_path / "twin.zip")
    assert 0.95 < _reads(archive, dest) < 1.2                 # one hash, no extraction
    assert {p: os.stat(dest / p).st_ino for p in members} == inodes
    assert _reads(archive, dest) < 0.05                       # and then cached again


def test_a_chmod_of_the_original_during_the_extraction_is_refused_then_staged(
        local_state, tmp_path, monkeypatch):
    """A chmod during the extraction moves the ctime only, as bytes written and put back
    (mtime too) would: a hash after it cannot say what the extraction read meanwhile, so
    it is refused like a write; the rerun stages it."""
    import drivestage.stage_original as stage_original

    members = _members(4, 1000)
    archive, dest = _setup(tmp_path, members)
    real = stage_original.Extraction

    class Chmodding(real):  # type: ignore[misc,valid-type]
        def __call__(self, *args, **kwargs):
            os.chmod(archive, 0o400)
            return super().__call__(*args, **kwargs)

    monkeypatch.setattr(stage_original, "Extraction", Chmodding)
    r = _pull(archive, dest)
    assert r.exit_code == 1 and "changed while it was read" in r.output, r.output
    monkeypatch.setattr(stage_original, "Extraction", real)
    assert _pull(archive, dest).exit_code == 0
    assert _tree(dest) == members
    r = _drivestage("pull", str(archive), str(dest), "-x")
    assert r.exit_code == 0 and "already staged" in r.stderr, r.output


def test_a_write_during_the_extraction_with_the_mtime_put_back_is_still_refused(
        local_state, tmp_path, monkeypatch):
    """Held beside the chmod: same size, other bytes, mtime put back while the members are
    extracted: the hash after says so, and the pull fails in one line."""
    import drivestage.stage_original as stage_original

    v1 = {f"ds/m{i}.bin": bytes([65 + i]) * 100 for i in range(5)}
    v0 = {f"ds/m{i}.bin": bytes([97 + i]) * 100 for i in range(5)}
    archive, dest = _setup(tmp_path, v1)
    real = stage_original.Extraction

    class Rewriting(real):  # type: ignore[misc,valid-type]
        def __call__(self, *args, **kwargs):
            st = archive.stat()
            with open(archive, "r+b") as fh:
                fh.write(_zip(v0))
            os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns))
            return super().__call__(*args, **kwargs)

    monkeypatch.setattr(stage_original, "Extraction", Rewriting)
    r = _pull(archive, dest)
    assert r.exit_code == 1 and "changed while it was read" in r.output, r.output
    monkeypatch.setattr(stage_original, "Extraction", real)
    assert _pull(archive, dest).exit_code == 0
    assert _tree(dest) == v0


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
    # Not at the first: one re-check is the usual race (test_attack23_stage).
    assert replacer.rounds == statedir.LOCK_RECHECK_MIN < statedir.LOCK_RECHECKS


# ------------------------------------------------ 2b. push's md5 cache: the same rule

def test_push_notices_a_same_size_rewrite_with_its_mtime_put_back(local_state, tmp_path):
    """The persistent md5 cache (DRIVESTAGE_STATE_DIR/md5-cache.json) was keyed by size and
    mtime: a file rewritten with the same size and its mtime put back kept its old md5, so
    `push` called it unchanged and the new bytes never left the machine. Its ctime (and
    inode) now count too."""
    from drivestage import push

    src, dest = tmp_path / "logs", tmp_path / "mount" / "logs"
    src.mkdir()
    (src / "results.csv").write_bytes(b"epoch,map\n1,0.10\n")
    assert push(str(src), str(dest)).uploaded == ["results.csv"]
    st = (src / "results.csv").stat()
    (src / "results.csv").write_bytes(b"epoch,map\n1,0.90\n")
    os.utime(src / "results.csv", ns=(st.st_atime_ns, st.st_mtime_ns))
    again = push(str(src), str(dest))
    assert again.uploaded == ["results.csv"]
    assert (dest / "results.csv").read_bytes() == b"epoch,map\n1,0.90\n"
    assert push(str(src), str(dest)).uploaded == []           # then cached again


def test_the_md5_cache_keeps_its_entries_across_a_chmod_only_as_a_hash(local_state, tmp_path):
    """A chmod moves the ctime: the file is hashed again (the same md5), never trusted
    blindly; an entry of the old form ([size, mtime, md5]) is hashed once, then kept."""
    import hashlib
    import json

    from drivestage.state import Md5Cache

    f = tmp_path / "ckpt.pt"
    f.write_bytes(b"a" * 1000)
    state = tmp_path / "md5.json"
    st = f.stat()
    state.write_text(json.dumps({str(f): [st.st_size, st.st_mtime_ns,
                                          hashlib.md5(b"a" * 1000).hexdigest()]}))
    cache = Md5Cache(state)
    assert cache.get(str(f)) is None                             # the old form: not trusted
    assert cache.md5(str(f)) == hashlib.md5(b"a" * 1000).hexdigest()
    assert cache.get(str(f)) == hashlib.md5(b"a" * 1000).hexdigest()
    os.chmod(f, 0o600)
    assert cache.get(str(f)) is None
