"""A server that ignores ``Range`` (a proxy or a mirror that strips it) answers every
download with ``200`` and the whole file from byte 0. Each request then costs the bytes
before the range asked for too: a download that asks for many ranges (pieces of
``--chunk-size``, a split for a new stream, the next missing range) pays for the front of
the file again each time, about n²/2 pieces' worth for n pieces. What a user relies on:
the bytes and the checksum, and a download that asks such a server for the file a bounded
number of times (here: the requests and the bytes each one cost, counted by the emulator).
"""
from __future__ import annotations

import hashlib
import io
import os
import zipfile

import pytest
from _download_fixtures import _fast, out, small_splits, store  # noqa: F401

from _cli import run
from drivestage import download as dl

KiB, MiB = 1024, 1024 * 1024


def _gets(emulator, fid: str) -> list[tuple[int, int]]:
    """(start asked, bytes the answer held) of each download of ``fid``; the answer to a
    request the server did not honour holds the whole file, from byte 0."""
    out = []
    for r in emulator.requests:
        if r.method == "GET" and r.path.endswith(fid) and r.query.get("alt") == "media":
            start = int(r.headers["Range"].split("=")[1].split("-")[0]) \
                if "Range" in r.headers else 0
            out.append((start, r.status))
    return out


def _cost(gets: list[tuple[int, int]], size: int) -> int:
    """Bytes the server had to send, at least, for ``gets``: each answer from byte 0 up to
    where its request started, and (all of them together) the file once."""
    return sum(start for start, _ in gets) + size


def test_the_emulator_can_ignore_range(emulator, store):
    """The fault itself: 200, the whole file, whatever the Range; ``times`` counts."""
    data = os.urandom(100 * KiB)
    emulator.add_file("f.bin", data)
    entry = store.resolve("f.bin")
    emulator.faults.ignore_range(times=1)
    assert store.fetch_range(entry, 1000, 2000) == data[1000:2000]
    assert store.fetch_range(entry, 3000, 4000) == data[3000:4000]
    assert [r.status for r in emulator.requests if r.query.get("alt") == "media"] == [200, 206]


@pytest.mark.parametrize("chunk", [256 * KiB, None], ids=["chunks", "streams"])
def test_a_download_asks_a_range_ignoring_server_for_the_file_a_bounded_number_of_times(
        emulator, store, out, small_splits, chunk):
    """Pieces of 256 KiB of a 16 MiB file (64 requests, about 32 times the file's bytes,
    before), or four streams that split each other's pieces: the download goes on with the
    one answer that holds the whole file, and ends with the file, verified."""
    data = os.urandom(16 * MiB)
    fid = emulator.add_file("f.bin", data)
    entry = store.resolve("f.bin")
    emulator.faults.ignore_range()
    emulator.clear_requests()
    res = dl.download(store, entry, str(out / "f.bin"), jobs=4, chunk_size=chunk)
    assert open(out / "f.bin", "rb").read() == data and res.md5 == entry.md5
    gets = _gets(emulator, fid)
    assert {status for _, status in gets} == {200}
    # Four requests at most: the streams' first ones, sent before the first answer came
    # (those ahead of the first answer are then given up, and it reads on over them).
    assert len(gets) <= 4, gets
    if chunk:  # and pieces of 256 KiB asked for first cost little
        assert _cost(gets, len(data)) <= 2 * len(data), gets


def test_a_resumed_download_from_a_range_ignoring_server_verifies(emulator, store, out):
    """The rerun after a failure asks from where the partial stopped; the answer from byte 0
    is skipped up to there (there is no other way to get the rest), once."""
    data = os.urandom(4 * MiB)
    fid = emulator.add_file("r.bin", data)
    entry = store.resolve("r.bin")
    target = str(out / "r.bin")
    with open(dl.partial_path(target, entry), "wb") as fh:  # what a failed run kept
        fh.write(data[:3 * MiB])
    emulator.faults.ignore_range()
    emulator.clear_requests()
    res = dl.download(store, entry, target)
    assert open(target, "rb").read() == data and res.md5 == entry.md5
    assert (res.resumed_from, res.fetched) == (3 * MiB, MiB)
    assert _gets(emulator, fid) == [(3 * MiB, 200)]


def _zip(n: int, size: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n):
            zf.writestr(f"d/m{i:03d}.bin", os.urandom(size))
    return buf.getvalue()


def test_pull_extract_and_a_chunked_folder_pull_through_a_range_ignoring_proxy(
        emulator, drive_env, tmp_path):
    """The command: a folder with a zip (its member list fetched first, from the end) and a
    file larger than ``--chunk-size``. Exit 0, every byte in place, and the server asked
    for each file a few times, not once per piece."""
    archive = _zip(40, 100 * KiB)
    big = os.urandom(6 * MiB)
    zid = emulator.add_file("ds/a.zip", archive)
    bid = emulator.add_file("ds/big.bin", big)
    emulator.faults.ignore_range()
    emulator.clear_requests()
    code, _, err = run("pull", "drive:ds", str(tmp_path / "dest"), "-x",
                       "--chunk-size", "256KiB")
    assert code == 0, err
    root = tmp_path / "dest" / "ds"
    assert (root / "big.bin").read_bytes() == big
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        for name in zf.namelist():
            assert (root / name).read_bytes() == zf.read(name), name
    assert hashlib.md5((root / "big.bin").read_bytes()).hexdigest() == \
        hashlib.md5(big).hexdigest()
    for fid, size in ((zid, len(archive)), (bid, len(big))):
        gets = _gets(emulator, fid)
        assert len(gets) <= 4 and _cost(gets, size) <= 2 * size, (fid, gets)
