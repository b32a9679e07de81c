"""`pull --extract` extracts an archive while it downloads (issue 15): a zip's central
directory is fetched first, members are written into the temporary folder as their bytes
arrive, and nothing reaches DEST before the archive's md5 is verified."""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time

import pytest

import drivestage
from drivestage import download as dl

from _archives import a_tgz, a_zip, tree
from _tmpfs import small_disk  # noqa: F401 (a fixture)
from _cli import run
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

MEMBERS = {f"ds/part{i:02d}.bin": os.urandom(256 << 10) for i in range(16)}
MEMBERS["ds/notes.txt"] = b"hello " * 1000


def media_ranges(emulator):
    return [r.headers.get("Range") for r in emulator.requests if r.query.get("alt") == "media"]


@pytest.mark.parametrize("name, build", [("set.zip", a_zip), ("set.tar.gz", a_tgz)])
def test_members_are_written_while_the_archive_downloads(emulator, drive_env, tmp_path, name,
                                                         build):
    blob = build(MEMBERS)
    fid = emulator.add_file(f"d/{name}", blob)
    entry = drivestage.connect().resolve(f"d/{name}")
    dest = tmp_path / "data"
    partial = dl.partial_path(str(dest / name), entry)
    # The download held at three quarters until a member is seen written (or 30 s: then none
    # was, and the test fails), on any machine; not a throttle to 2 MiB/s (2 s a case).
    # (A zip's central directory, fetched first, is in its last 2 kB.)
    held = emulator.faults.hold(fid, len(blob) * 3 // 4, timeout=30)
    emulator.clear_requests()
    seen = {}
    done = threading.Event()

    def watch():  # a member in the temporary folder while the partial is still partial
        while not done.is_set():
            temps = list(dest.glob(".drivestage-extract-*/ds/*")) if dest.exists() else []
            if temps and os.path.exists(partial):
                seen["early"] = (len(temps), os.path.getsize(partial))
                seen["dest"] = (dest / "ds").exists()
                held.release()
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        code, out, err = run("pull", f"drive:d/{name}", str(dest), "-x", "--json", "-q")
    finally:
        done.set()
        watcher.join()
        held.release()
    assert code == 0, err
    assert "early" in seen, "no member was written before the download ended"
    assert seen["dest"] is False  # and none had reached DEST
    assert tree(dest) == {name: blob, **MEMBERS}
    assert not list(dest.glob(".drivestage-extract-*"))
    ranges = media_ranges(emulator)
    if name.endswith(".zip"):  # the central directory in one request, the front meanwhile
        ends = [r for r in ranges if r.endswith(f"-{len(blob) - 1}")]
        assert len(ends) == 1, ranges
        tail = int(ends[0].split("=")[1].split("-")[0])
        assert tail > 0 and f"bytes=0-{tail - 1}" in ranges, ranges
    summary = json.loads(out)
    assert summary["extracted"] and summary["members"] == len(MEMBERS)
    assert summary["fetched"] == len(blob)


@pytest.mark.parametrize("name, build", [("set.zip", a_zip), ("set.tar.gz", a_tgz)])
def test_a_corrupted_download_leaves_nothing_extracted(emulator, drive_env, tmp_path, name,
                                                       build):
    blob = build(MEMBERS)
    fid = emulator.add_file(f"d/{name}", blob)
    emulator.faults.corrupt(fid)  # every answer has one byte flipped
    dest = tmp_path / "data"
    code, out, err = run("pull", f"drive:d/{name}", str(dest), "-x", "-q")
    assert code == 1 and "do not match Drive" in err
    assert not (dest / "ds").exists() and not list(dest.glob(".drivestage-extract-*"))
    assert [p for p in os.listdir(dest) if p != ".drivestage"] == []


@pytest.mark.parametrize("name, build", [("set.zip", a_zip), ("set.tar.gz", a_tgz)])
def test_a_restart_after_a_mismatch_extracts_the_verified_archive(emulator, drive_env,
                                                                  tmp_path, name, build):
    blob = build(MEMBERS)
    fid = emulator.add_file(f"d/{name}", blob)
    emulator.faults.corrupt(fid, times=1)  # the first answer with the middle byte is bad
    dest = tmp_path / "data"
    code, out, err = run("pull", f"drive:d/{name}", str(dest), "-x", "--json", "-q")
    assert code == 0, err
    # The download did restart: the bytes were served twice (a zip's directory once more).
    served = sum(r.bytes_out for r in emulator.requests if r.query.get("alt") == "media")
    assert served >= 2 * len(blob) - 1024 * 1024
    assert tree(dest) == {name: blob, **MEMBERS}
    assert not list(dest.glob(".drivestage-extract-*"))
    assert hashlib.md5((dest / name).read_bytes()).hexdigest() == json.loads(out)["md5"]


def test_a_zip_refused_by_the_rules_is_refused_after_it_is_verified(emulator, drive_env,
                                                                    tmp_path):
    blob = a_zip({"ok.txt": b"x" * 300_000, "../escape.txt": b"evil"})
    emulator.add_file("d/bad.zip", blob)
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:d/bad.zip", str(dest), "-x", "-q")
    assert code == 1 and "zip-slip" in err
    assert not (tmp_path / "escape.txt").exists() and not (dest / "ok.txt").exists()
    assert not list(dest.glob(".drivestage-extract-*"))
    assert (dest / "bad.zip").read_bytes() == blob  # the download itself is staged


def test_the_streams_fetch_while_the_member_list_is_checked(emulator, local_state, drive_env,
                                                            small_disk, monkeypatch):
    """A zip's member list is read and checked (about 0.5 s for 20,000 members) while the
    streams already fetch from the front. When the check then refuses (here: the members do
    not fit on DEST's disk), the streams stop: one clear line, no thread's traceback, and the
    partial with a record that holds exactly the bytes it claims, for a rerun."""
    import io
    import shutil
    import zipfile

    from drivestage.partials import Ranges

    disk = small_disk(2048 * 1024)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("ds/noise.bin"), os.urandom(600 << 10),
                    compress_type=zipfile.ZIP_STORED)
        zf.writestr("ds/zeros.bin", b"\0" * (8 << 20))  # a few KiB compressed, 8 MiB out
    data = buf.getvalue()
    fid = emulator.add_file("set.zip", data)
    emulator.clear_requests()

    def from_the_front():
        return [r for r in emulator.requests if r.query.get("alt") == "media" and
                r.headers.get("Range", "").startswith("bytes=0-")]

    real = shutil.disk_usage
    seen_before_check = []

    def disk_usage(path):
        # The member list's space check, after the zip's tail was fetched: by then a stream
        # has asked for the front of the file (waited for as an event, with a bound).
        if any(r.query.get("alt") == "media" for r in emulator.requests):
            deadline = time.monotonic() + 10
            while not from_the_front() and time.monotonic() < deadline:
                time.sleep(0.01)
            seen_before_check.append(bool(from_the_front()))
        return real(path)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    code, out, err = run("pull", "drive:set.zip", str(disk / "data"), "-x", "-q")
    assert code == 1
    assert err.splitlines()[-1].startswith("Error: not enough free disk space") and \
        "to extract set.zip into" in err
    assert "Traceback" not in err and "Exception in thread" not in err
    assert seen_before_check and seen_before_check[0], "no stream asked before the check"
    assert not (disk / "data" / "ds").exists()
    partial = dl.partial_path(str(disk / "data" / "set.zip"),
                              drivestage.connect().resolve("set.zip"))
    record = Ranges.load(partial, len(data))
    assert record is not None
    held, at = [], 0
    for a, b in record.missing() + [(len(data), len(data))]:
        if a > at:
            held.append((at, a))
        at = b
    assert record.total() == sum(b - a for a, b in held)
    # The directory the refusal was read from is not kept: nothing verified it, the rerun
    # fetches it again (else a directory altered once would refuse every rerun).
    assert not record.covers(len(data) - 22, len(data))
    with open(partial, "rb") as fh:
        for a, b in held:
            fh.seek(a)
            assert fh.read(b - a) == data[a:b]
    # The rerun on a disk that fits fetches only the rest.
    monkeypatch.setattr(shutil, "disk_usage", real)
    bigger = small_disk(16 << 20)
    shutil.copytree(disk / "data", bigger / "data")
    emulator.clear_requests()
    code, out, err = run("pull", "drive:set.zip", str(bigger / "data"), "-x", "-q")
    assert code == 0, err
    assert (bigger / "data" / "ds" / "zeros.bin").read_bytes() == b"\0" * (8 << 20)
    assert sum(r.bytes_out for r in emulator.requests if r.query.get("alt") == "media") == \
        len(data) - record.total()
    assert fid
