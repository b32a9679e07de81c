"""attack23stage: what stage23's stamps and md5 caches trusted that they should not.

1. A file on a FUSE mount (rclone, gcsfuse, google-drive-ocamlfuse, Colab's Drive) has the
   identity its daemon reports: the ctime is the mtime, the inode the path's, and a rewrite
   made elsewhere (another machine, through the remote) moves neither when it keeps the size
   and the mtime (``rclone copy`` and ``cp -p`` keep it). The stamp's identity vouched for
   the old md5 there, so a rerun said "already staged" over the old bytes (it hashed the
   file before stage23, and saw the new ones). Simulated on this disk by a mount table that
   names the source's device a FUSE one (``localfs.MOUNTINFO``) and the stamp's recorded
   identity set to the rewritten file's (what such a mount reports for it).
"""
from __future__ import annotations

import glob
import json
import os

import pytest

from test_attack22_stage import _tree
from test_stage23 import _members, _rchar, _zip, needs_proc_io
from test_messages_walk20 import _drivestage


def _as_fuse(tmp_path, monkeypatch, folder, kind: str = "fuse.rclone gdrive:") -> None:
    """A mount table in which ``folder``'s file system is an rclone FUSE mount (or
    ``kind``: type and source)."""
    import drivestage.localfs as localfs

    dev = os.stat(folder).st_dev
    table = tmp_path / "mountinfo"
    table.write_text(f"36 25 0:21 / /proc rw - proc proc rw\n"
                     f"99 25 {os.major(dev)}:{os.minor(dev)} / {folder} rw,nosuid - "
                     f"{kind} rw,user_id=0\n")
    monkeypatch.setattr(localfs, "MOUNTINFO", str(table), raising=False)


def _rewrite_keeping_identity(source, data: bytes, dest) -> int:
    """Rewrite ``source`` in place (same size), its mtime put back, and make every stamp
    of DEST that records its identity record the new one: what a FUSE mount shows after
    such a rewrite made through the remote (the same inode, size, mtime and ctime)."""
    st = os.stat(source)
    with open(source, "r+b") as fh:
        fh.write(data)
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
    now = os.stat(source)
    ident = [now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns, now.st_ctime_ns]
    edited = 0
    for path in glob.glob(os.path.join(str(dest), "**", ".drivestage", "*.json"),
                          recursive=True):
        with open(path) as fh:
            stamp = json.load(fh)
        if stamp.get("path") == str(source) and "original" in stamp:
            stamp["original"] = ident
            with open(path, "w") as fh:
                json.dump(stamp, fh)
            edited += 1
    return edited


@pytest.mark.parametrize("kind", ["extract", "copy", "folder"])
@pytest.mark.parametrize("mount", ["fuse.rclone gdrive:", "nfs4 nas:/data"])
def test_a_rewrite_on_a_fuse_mount_that_keeps_its_identity_is_staged(
        kind, mount, local_state, tmp_path, monkeypatch):
    """(NFS: the client answers a stat from its attribute cache, up to 60 s old; a rewrite
    by another client shows the old identity meanwhile. The hash's open() revalidated it.)"""
    src = tmp_path / "input" / "x"
    src.mkdir(parents=True)
    _as_fuse(tmp_path, monkeypatch, str(tmp_path / "input"), mount)
    v1, v2 = _members(3, 1000), _members(3, 1000)
    source = src / "voc.zip"
    source.write_bytes(_zip(v1))
    dest = tmp_path / "data"
    args = {"extract": [str(source), str(dest), "-x"], "copy": [str(source), str(dest)],
            "folder": [str(src), str(dest)]}[kind]
    assert _drivestage("pull", *args, "-q").exit_code == 0
    assert _rewrite_keeping_identity(source, _zip(v2), dest) == 1
    r = _drivestage("pull", *args)
    assert r.exit_code == 0, r.output
    if kind == "extract":
        assert _tree(dest) == v2, r.output                  # was v1: "already staged"
    else:
        copy = dest / ("x/voc.zip" if kind == "folder" else "voc.zip")
        assert copy.read_bytes() == _zip(v2), r.output


def test_the_fuse_devices_are_read_from_the_mount_table(tmp_path):
    from drivestage.localfs import fuse_devices

    table = tmp_path / "mountinfo"
    table.write_text("22 27 0:21 / /proc rw,relatime - proc proc rw\n"
                     "40 27 0:45 / /content/drive rw,nosuid shared:12 master:3 - fuse.drive "
                     "drive rw,user_id=0\n"
                     "41 27 0:46 / /mnt/s3 rw - fuse rclone rw\n"
                     "42 27 8:1 / /mnt/ntfs rw - fuseblk /dev/sdb1 rw\n"
                     "43 27 8:2 / /kaggle/input ro - ext4 /dev/sdc ro\n"
                     "44 27 0:50 / /mnt/nas rw - nfs4 nas:/data rw\n"
                     "broken line\n")
    assert fuse_devices(str(table)) == {os.makedev(0, 45), os.makedev(0, 46),
                                        os.makedev(8, 1), os.makedev(0, 50)}
    assert fuse_devices(str(tmp_path / "absent")) == frozenset()


@pytest.mark.parametrize("kind", ["extract", "copy", "folder"])
def test_a_rewrite_in_the_tick_of_the_hashed_write_is_staged_by_the_rerun(
        kind, local_state, tmp_path, monkeypatch):
    """A write stamps the ctime at the clock's granularity (a few ms on most kernels before
    6.13; a whole second on ext3, ext4 with small inodes, some network mounts): a source
    hashed right after it was written, then rewritten in the same tick with the same size
    (the mtime too), keeps its identity. The stamp recorded that identity with the first
    md5, and every rerun said "already staged" over the old bytes (git's "racily clean"
    files). Here every hash is in the tick of the write (RACY_NS); the rewrite's identity is
    set in the stamp, as such a file system shows it."""
    import drivestage.state as state

    monkeypatch.setattr(state, "RACY_NS", 10 ** 15, raising=False)
    src = tmp_path / "input" / "x"
    src.mkdir(parents=True)
    v1, v2 = _members(3, 1000), _members(3, 1000)
    source = src / "voc.zip"
    source.write_bytes(_zip(v1))
    dest = tmp_path / "data"
    args = {"extract": [str(source), str(dest), "-x"], "copy": [str(source), str(dest)],
            "folder": [str(src), str(dest)]}[kind]
    assert _drivestage("pull", *args, "-q").exit_code == 0
    _rewrite_keeping_identity(source, _zip(v2), dest)
    r = _drivestage("pull", *args)
    assert r.exit_code == 0, r.output
    if kind == "extract":
        assert _tree(dest) == v2, r.output                  # was v1: "already staged"
    else:
        copy = dest / ("x/voc.zip" if kind == "folder" else "voc.zip")
        assert copy.read_bytes() == _zip(v2), r.output


@needs_proc_io
@pytest.mark.parametrize("kind", ["extract", "copy"])
def test_a_source_hashed_in_the_tick_of_its_write_is_hashed_once_more_then_never(
        kind, local_state, tmp_path, monkeypatch):
    import drivestage.state as state

    monkeypatch.setattr(state, "RACY_NS", 10 ** 15, raising=False)
    archive = tmp_path / "input" / "voc.zip"
    archive.parent.mkdir()
    archive.write_bytes(_zip(_members(4, 1 << 19)))
    dest = tmp_path / "data"
    args = [str(archive), str(dest), "-q"] + (["-x"] if kind == "extract" else [])

    def reads() -> float:
        before = _rchar()
        r = _drivestage("pull", *args)
        assert r.exit_code == 0, r.output
        return (_rchar() - before) / archive.stat().st_size

    assert reads() > (0.95 if kind == "extract" else 1.9)  # (-x: hashed as extracted)
    monkeypatch.setattr(state, "RACY_NS", 0)               # the write's tick is over
    assert 0.95 < reads() < 1.2                               # hashed once more, kept
    assert reads() < 0.05                                     # then recorded


# ------------------------------------------------ 3. the lock's time bound and a lone re-check

class _ReplaceOnce:
    """The classic race of a transient lock, once: the previous holder removes the file
    between this process's open and its look at the name (the lock is let go and taken
    again, on the new file). Done in the look itself: no thread, no timing."""

    def __init__(self, path: str):
        self.path, self.rounds = path, 0

    def __call__(self, *args, **kwargs):
        if self.rounds == 0:
            self.rounds += 1
            os.replace(self._new(), self.path)
        return os.stat(*args, **kwargs)

    def _new(self) -> str:
        tmp = self.path + ".new"
        with open(tmp, "wb"):
            pass
        return tmp


def test_one_legit_recheck_after_a_slow_start_holds_the_lock(tmp_path, monkeypatch):
    """The time bound (10 s without a wait) counted from the loop's start: a pull whose
    first round took that long (a slow network mount, a notebook's VM paused) and then met
    the usual race once - another pull's holder removed the file it had opened - failed
    with 'not the one of that name 1 times in a row (a file system whose inode numbers
    change?)'. Every round here is over time (LOCK_RECHECK_S = 0): one re-check holds."""
    from drivestage.extract import statedir

    once = _ReplaceOnce(os.path.join(str(tmp_path), ".drivestage", "x.lock"))
    monkeypatch.setattr(statedir, "_lookup", once)
    monkeypatch.setattr(statedir, "LOCK_RECHECK_S", 0.0)
    with statedir.state_lock(str(tmp_path), "x.lock", lambda: None, transient=True) as held:
        assert held
    assert once.rounds == 1
    assert not os.path.exists(once.path)                      # removed by its holder


# ------------------------------------------------ 4. a copy's stamp follows its source's identity

@needs_proc_io
@pytest.mark.parametrize("kind", ["copy", "folder"])
@pytest.mark.parametrize("change", ["chmod", "hard link", "same bytes anew"])
def test_a_source_whose_identity_alone_changed_is_hashed_once_not_at_every_rerun(
        kind, change, local_state, tmp_path, monkeypatch):
    """A chmod, a new hard link, the same bytes written anew (a dataset mounted again, a
    checkout): the copy's stamp kept the identity of the first pull, so every rerun after
    it hashed the source whole (a 20 GB folder read at each run of the cell), found the
    copy staged and wrote nothing down. Now the first such rerun records the new one."""
    import drivestage.state as state

    src = tmp_path / "input" / "x"
    src.mkdir(parents=True)
    data = os.urandom(1 << 21)
    source = src / "w.bin"
    source.write_bytes(data)
    dest = tmp_path / "data"
    args = [str(source) if kind == "copy" else str(src), str(dest), "-q"]

    def reads() -> float:
        before = _rchar()
        r = _drivestage("pull", *args)
        assert r.exit_code == 0, r.output
        return (_rchar() - before) / len(data)

    assert reads() > 1.9
    assert reads() < 0.05
    if change == "chmod":
        os.chmod(source, 0o444)
    elif change == "hard link":
        os.link(source, tmp_path / "twin.bin")
    else:
        source.write_bytes(data)
    monkeypatch.setattr(state, "RACY_NS", 0)               # past its write's tick
    assert 0.95 < reads() < 1.2                               # hashed once: the same bytes
    assert reads() < 0.05                                     # was 1.0 at every rerun
    copy = dest / ("w.bin" if kind == "copy" else "x/w.bin")
    assert copy.read_bytes() == data


# ------------------------------------------------ 5. push's md5 cache: the same tick

def test_push_caches_no_md5_hashed_in_the_tick_of_the_write(local_state, tmp_path,
                                                            monkeypatch):
    """push's md5 cache (md5-cache.json) kept a file hashed right after it was written: a
    rewrite in the same tick (a trainer's metrics file saved twice in a second, on a file
    system keeping whole seconds) has the same size, mtime, inode and ctime, and the next
    push called it unchanged: its new bytes never left the machine. Here every hash is in
    the tick; the rewrite's identity is set in the cache, as such a file system shows it."""
    import drivestage.state as state
    from drivestage import push

    monkeypatch.setattr(state, "RACY_NS", 10 ** 15)
    src, dest = tmp_path / "logs", tmp_path / "mount" / "logs"
    src.mkdir()
    csv = src / "results.csv"
    csv.write_bytes(b"epoch,map\n1,0.10\n")
    assert push(str(src), str(dest)).uploaded == ["results.csv"]
    st = csv.stat()
    csv.write_bytes(b"epoch,map\n1,0.90\n")
    os.utime(csv, ns=(st.st_atime_ns, st.st_mtime_ns))
    now = csv.stat()
    cache = tmp_path / "state" / "md5-cache.json"
    entries = json.loads(cache.read_text()) if cache.exists() else {}
    if str(csv) in entries:                                   # the same identity, as shown
        entries[str(csv)] = [now.st_size, now.st_mtime_ns, entries[str(csv)][2],
                             now.st_ino, now.st_ctime_ns]
        cache.write_text(json.dumps(entries))
    assert push(str(src), str(dest)).uploaded == ["results.csv"]
    assert (dest / "results.csv").read_bytes() == b"epoch,map\n1,0.90\n"


# ------------------------------------------------ 6. a local folder that was a DEST

def test_a_local_folder_that_was_a_dest_is_pulled_without_drivestage_s_own_state(
        local_state, tmp_path):
    """`pull /content/data /kaggle/working/data` where /content/data was itself a DEST (it
    holds .drivestage folders, perhaps a partial download): the walk took drivestage's own
    state for data and failed, exit 2, with 'the name .drivestage is … ; rename that item on
    Drive'. Its state is not data: left out, the files are copied."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "b.bin").write_bytes(b"y" * 1000)
    first = tmp_path / "data"
    assert _drivestage("pull", str(src), str(first), "-q").exit_code == 0
    (first / "in" / ".c.bin.0123456789abcdef.partial").write_bytes(b"half")
    assert (first / "in" / ".drivestage").is_dir()
    other = tmp_path / "other"
    r = _drivestage("pull", str(first), str(other), "-q")
    assert r.exit_code == 0, r.output
    assert (other / "data" / "in" / "b.bin").read_bytes() == b"y" * 1000
    copied = {os.path.relpath(os.path.join(d, f), other / "data")
              for d, _dirs, files in os.walk(other / "data") for f in files
              if ".drivestage" not in d}
    assert copied == {os.path.join("in", "b.bin")}
    assert _drivestage("pull", str(first), str(other), "-q").exit_code == 0


# ------------------------------------------------ 7. guards: the original moved over

def _moved_over(archive, data: bytes) -> None:
    """Another file of the same size and mtime renamed over the original (a new inode)."""
    st = os.stat(archive)
    new = str(archive) + ".new"
    with open(new, "wb") as fh:
        fh.write(data)
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(new, archive)


def test_an_original_moved_over_between_the_lookup_and_the_lock_is_refused_then_staged(
        local_state, tmp_path, monkeypatch):
    """The listing hashed v1; v2 (same size and mtime, another inode) is renamed over it
    before the extraction begins: the identity says so, the pull fails in one line with
    nothing of either staged as v1; the rerun stages v2. Since original25 the listing of an
    archive to extract reads nothing (the extraction hashes what it reads): v2 is what is
    read, hashed and staged, under its own md5, at once."""
    import hashlib

    import drivestage.stage_file as stage_file

    v1, v2 = _members(3, 1000), _members(3, 1000)
    src = tmp_path / "input"
    src.mkdir()
    archive = src / "voc.zip"
    archive.write_bytes(_zip(v1))
    dest = tmp_path / "data"
    real = stage_file.FromOriginal

    class MovedOver(real):  # type: ignore[misc,valid-type]
        def stage(self, entry):
            _moved_over(archive, _zip(v2))
            return super().stage(entry)

    monkeypatch.setattr(stage_file, "FromOriginal", MovedOver)
    r = _drivestage("pull", str(archive), str(dest), "-x", "-q", "--json")
    assert r.exit_code == 0, r.output
    assert hashlib.md5(_zip(v2)).hexdigest() in r.output    # v2's md5, never v1's
    assert _tree(dest) == v2
    monkeypatch.setattr(stage_file, "FromOriginal", real)
    assert _drivestage("pull", str(archive), str(dest), "-x", "-q").exit_code == 0
    assert _tree(dest) == v2


@needs_proc_io
def test_an_original_moved_over_between_two_pulls_is_hashed_and_staged(local_state,
                                                                        tmp_path):
    v1, v2 = _members(4, 1 << 18), _members(4, 1 << 18)
    archive = tmp_path / "input" / "voc.zip"
    archive.parent.mkdir()
    archive.write_bytes(_zip(v1))
    dest = tmp_path / "data"
    assert _drivestage("pull", str(archive), str(dest), "-x", "-q").exit_code == 0
    _moved_over(archive, _zip(v2))
    before = _rchar()
    assert _drivestage("pull", str(archive), str(dest), "-x", "-q").exit_code == 0
    assert (_rchar() - before) / archive.stat().st_size > 1.9   # hashed, extracted
    assert _tree(dest) == v2


@needs_proc_io
def test_a_file_pushed_the_moment_it_is_saved_is_not_hashed_again_by_the_next_push(
        local_state, tmp_path, monkeypatch):
    """The trainer saves a checkpoint and flushes its mirror at once: the push hashed it in
    the tick of its last write, so (3) kept no md5 for it and the next push read it whole
    again. A hash that would begin in that tick waits for its end (here 0.3 s, the tick of a
    coarse file system; 50 ms by default): cached at once, the next push reads nothing."""
    import drivestage.state as state
    from drivestage import push

    monkeypatch.setattr(state, "RACY_NS", 300_000_000)
    src = tmp_path / "logs"
    src.mkdir()
    size = 4 << 20
    (src / "last.pt").write_bytes(os.urandom(size))
    assert push(str(src), str(tmp_path / "mnt")).uploaded == ["last.pt"]
    before = _rchar()
    assert push(str(src), str(tmp_path / "mnt")).uploaded == []
    assert (_rchar() - before) / size < 0.05                  # was 1.0
