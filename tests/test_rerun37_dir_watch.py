"""A folder pull's stamp cache lists a state folder again only when the kernel says an entry
other than a lock changed since (drivestage.dir_watch, inotify): a rerun of n archives
listed it n times, each listing as long as the folder (500 archives: half the rerun's time).
Checks that every change a listing would show is still seen at the next use (a stamp
renamed over, made, removed, by this process or another), that locks coming and going are
none, that a lost or overflowed watch and a file system whose changes the kernel cannot
tell (a FUSE or network mount) fall back to a listing at every use."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import pytest

from drivestage import dir_watch, stamp_cache
from drivestage.localfs import atomic_write_at
from tests._cli import run


def _parse(entry, raw, st):
    return json.loads(raw)


def _listing(fd):
    got = stamp_cache.listing(fd, _parse)
    assert got is not None
    return got[0], {entry: stamp["n"] for entry, stamp in got[1]}


@pytest.fixture
def state(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    for i in range(3):
        (folder / f"s{i}@k.json").write_text(json.dumps({"n": i}))
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    yield folder, fd
    os.close(fd)


def test_no_change_no_listing_and_each_change_seen_at_the_next_use(state):
    folder, fd = state
    if dir_watch.watch(fd, lambda n: False) is None:
        pytest.skip("no inotify on this file system here")
    with stamp_cache.scope():
        version, seen = _listing(fd)
        listed = stamp_cache.counts["listed"]
        assert _listing(fd) == (version, seen)
        (folder / "s9.lock").write_text("")            # a lock comes and goes: no change
        (folder / "s9.lock").unlink()
        assert _listing(fd) == (version, seen)
        assert stamp_cache.counts["listed"] == listed  # (read from the cache alone)
        atomic_write_at(fd, "s1@k.json", json.dumps({"n": 11}).encode())  # renamed over
        version2, seen2 = _listing(fd)
        assert version2 != version and seen2["s1@k.json"] == 11
        (folder / "s3@k.json").write_text(json.dumps({"n": 3}))            # made
        assert _listing(fd)[1]["s3@k.json"] == 3
        (folder / "s0@k.json").unlink()                                     # removed
        assert "s0@k.json" not in _listing(fd)[1]
        assert stamp_cache.counts["listed"] == listed + 3


def test_another_process_renaming_a_stamp_over_is_seen(state):
    folder, fd = state
    if dir_watch.watch(fd, lambda n: False) is None:
        pytest.skip("no inotify on this file system here")
    code = ("import os, sys\nfrom drivestage.localfs import atomic_write\n"
            "atomic_write(sys.argv[1], b'{\"n\": 22}')")
    with stamp_cache.scope():
        assert _listing(fd)[1]["s2@k.json"] == 2
        subprocess.run([sys.executable, "-c", code, str(folder / "s2@k.json")], check=True,
                       timeout=60)
        assert _listing(fd)[1]["s2@k.json"] == 22


def test_a_lost_or_overflowed_watch_says_changed_from_then_on():
    read, write = os.pipe()
    os.set_blocking(read, False)
    watch = dir_watch.Watch(read, lambda n: n.endswith(".lock"))
    try:
        assert not watch.changed()
        os.write(write, struct.pack("iIII", 1, 0x100, 0, 16) + b"a.lock".ljust(16, b"\0"))
        assert not watch.changed()                       # a lock: no change
        os.write(write, struct.pack("iIII", 1, 0x80, 0, 16) + b"a@k.json".ljust(16, b"\0"))
        assert watch.changed() and not watch.changed()   # told once
        os.write(write, struct.pack("iIII", -1, 0x4000, 0, 0))   # IN_Q_OVERFLOW
        assert watch.changed() and watch.changed()       # lost: every use lists
    finally:
        watch.close()
        os.close(write)


def test_a_mount_whose_changes_the_kernel_cannot_tell_is_listed_at_each_use(
        state, tmp_path, monkeypatch):
    folder, fd = state
    dev = os.fstat(fd).st_dev
    table = tmp_path / "mountinfo"
    table.write_text(f"36 1 {os.major(dev)}:{os.minor(dev)} / {folder} rw - fuse.rclone "
                     "remote: rw\n")
    monkeypatch.setattr(dir_watch, "MOUNTINFO", str(table))
    assert dir_watch.watch(fd, lambda n: False) is None
    with stamp_cache.scope():
        listed = stamp_cache.counts["listed"]
        _listing(fd)
        _listing(fd)
        assert stamp_cache.counts["listed"] == listed + 2
    monkeypatch.setattr(dir_watch, "MOUNTINFO", str(tmp_path / "none"))   # unreadable
    assert dir_watch.watch(fd, lambda n: False) is None


def test_a_folder_rerun_lists_its_state_folder_once(emulator, drive_env, local_state,
                                                    tmp_path):
    import io
    import zipfile

    for i in range(20):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("ds/x", b"x%d" % i)
            z.writestr(f"ds/own{i}", b"o")
        emulator.add_file(f"F/s{i:02d}.zip", buf.getvalue())
    dest = tmp_path / "d"
    assert run("pull", "drive:F", str(dest), "-x", "-q")[0] == 0
    fd = os.open(dest / "F/.drivestage", os.O_RDONLY | os.O_DIRECTORY)
    try:
        watched = dir_watch.watch(fd, lambda n: False) is not None
    finally:
        os.close(fd)
    before = stamp_cache.counts["listed"]
    code, _out, err = run("pull", "drive:F", str(dest), "-x", "-q")
    assert code == 0, err
    # Once where the kernel tells changes (was once per archive: 20, and 39 before rerun37).
    assert stamp_cache.counts["listed"] - before == (1 if watched else 20)
    assert (dest / "F/ds/x").read_bytes() == b"x19"
