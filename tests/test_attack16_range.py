"""Attacks on the download's answer to a server that ignores ``Range`` (a proxy that
strips it: ``200`` and the whole file from byte 0; tests/test_range_ignored.py). One such
answer makes the pass ``whole``: the piece that got it reads on past its end into the ranges
no stream has taken (``Pass.extend``), over the bytes here already (``Piece.skip_to``), and
the pieces ahead are given up. Each test makes the hostile server, a caller's urgent fetch
(``Download.fetch_first``), a SIGKILL, a Ctrl-C or a failure land at the exact moment named,
from a hook at that moment. What a user relies on: the exact bytes, verified; a record that
names only bytes that are there; a rerun that asks only for the rest; a bounded number of
requests; and an end (every wait here is bounded: a hang fails with the pass's state)."""
from __future__ import annotations

import json
import os
import threading

import pytest
from _download_fixtures import _fast, out, passes, small_splits, store  # noqa: F401

from drivestage import download as dl
from drivestage import streams

KiB, MiB = 1024, 1 << 20


# -- helpers -----------------------------------------------------------------------------

def _state(run: streams.Pass) -> dict:
    """What a hang is reported with."""
    with run.lock:
        return {"todo": list(run.todo), "streams": run.streams, "retiring": run.retiring,
                "whole": run.whole, "hashed": run.hashed, "stopped": run.stopped,
                "done": list(zip(run.done.starts, run.done.ends)),
                "pieces": [(p.pos, p.end, p.skip_to, p.whole, p.retired, p.urgent)
                           for p in run.pieces]}


def _bounded(fn, runs: list, seconds: float = 20.0):
    """``fn()`` in a thread, which must end within ``seconds``; a hang fails with the
    passes' state (and stops them, so that the thread ends)."""
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # raised again below, in the test's thread
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        states = [_state(r) for r in runs]
        for r in runs:
            with r.lock:
                r.error = r.error or AssertionError("stopped by the test's watchdog")
                r.stopped = True
                r.lock.notify_all()
        t.join(10)
        pytest.fail(f"the download did not end in {seconds:.0f}s: {states}")
    if "error" in box:
        raise box["error"]
    return box.get("result")


def _media_gets(emulator, fid: str) -> list[tuple[str, int]]:
    return [(r.headers.get("Range", ""), r.status) for r in emulator.requests
            if r.method == "GET" and r.path.endswith(fid) and r.query.get("alt") == "media"]


def _record_holds(partial: str, data: bytes) -> list[list[int]]:
    """The partial's record, each range of which must hold the file's very bytes."""
    with open(dl.ranges_path(partial)) as fh:
        recorded = json.load(fh)["done"]
    with open(partial, "rb") as fh:
        for a, b in recorded:
            fh.seek(a)
            assert fh.read(b - a) == data[a:b], (a, b)
    return recorded


def _on_stream_write(monkeypatch, when):
    """Call ``when(run, piece, offset, length)`` as a stream's block reaches ``Pass.write``
    (read from the answer, nothing of it taken yet); an urgent piece's writes pass."""
    original = streams.Pass.write

    def write(self, piece, offset, data):
        if not piece.urgent:
            when(self, piece, offset, len(data))
        return original(self, piece, offset, data)

    monkeypatch.setattr(streams.Pass, "write", write)


def _fetch_first_now(d: dl.Download, start: int, end: int) -> None:
    """The caller's urgent fetch, in a thread of its own (as the main thread would), done
    before this returns."""
    box: list = []
    t = threading.Thread(target=lambda: box.append(d.fetch_first(start, end)), daemon=True)
    t.start()
    t.join(15)
    assert box == [None], "the urgent fetch did not end"


# -- a fetch_first before the streams begin ------------------------------------------------

def test_a_range_fetched_first_from_an_ignoring_server_leaves_streams_for_the_rest(
        emulator, store, out, passes):
    """``fetch_first`` (no ``begin``) gets the whole file for its range: the pass is
    ``whole``. The download run then must still start a stream for the rest (it started
    none, and waited for the hash for good)."""
    data = os.urandom(4 * MiB)
    emulator.add_file("f.bin", data)
    entry = store.resolve("f.bin")
    emulator.faults.ignore_range(times=1)
    d = dl.Download(store, entry, str(out / "f.bin"))
    d.fetch_first(MiB, 2 * MiB)
    res = _bounded(d.run, [d._run])
    assert open(out / "f.bin", "rb").read() == data and res.md5 == entry.md5
    assert res.fetched == len(data)


# -- an extension that starts behind where the answer has got to --------------------------

def test_an_urgent_fetch_cutting_a_whole_answers_block_in_flight_loses_no_bytes(
        emulator, store, out, passes, monkeypatch):
    """A whole answer reads on past its piece; a caller's urgent fetch takes a few bytes
    just inside the block the answer is bringing (after the block was read, before it is
    written): the block is cut there, the urgent bytes come, and the piece may read on only
    from where its answer is, not from the end of the urgent range, which lies behind it
    (the bytes between were read off the answer and thrown away; no one fetched them)."""
    data = os.urandom(4 * MiB)
    emulator.add_file("a.bin", data)
    entry = store.resolve("a.bin")
    emulator.faults.ignore_range(times=1)
    d = dl.Download(store, entry, str(out / "a.bin"), jobs=1, chunk_size=MiB)
    cut: list[tuple[int, int, int]] = []

    def when(run, piece, offset, n):
        if not cut and piece.whole and offset >= MiB + 64 * KiB and n >= 8 * KiB:
            cut.append((offset, offset + 2 * KiB, offset + 4 * KiB))
            _fetch_first_now(d, offset + 2 * KiB, offset + 4 * KiB)

    _on_stream_write(monkeypatch, when)
    res = _bounded(d.run, [d._run])
    assert cut and open(out / "a.bin", "rb").read() == data and res.md5 == entry.md5


def test_an_urgent_fetch_of_bytes_here_inside_a_whole_answers_skip_loses_no_bytes(
        emulator, store, out, passes, monkeypatch):
    """A resumed download (bytes 1 MiB to 2 MiB + 300001 here): the whole answer for the
    first piece reads on over those (skipping them) into the rest. A caller's urgent fetch
    of bytes here already, inside the block that crosses from the skipped bytes into the
    missing ones, cuts the piece short: the missing bytes that block brought must not be
    lost (the piece read on from the end of the urgent range, behind its answer)."""
    data = os.urandom(4 * MiB)
    emulator.add_file("y.bin", data)
    entry = store.resolve("y.bin")
    target = str(out / "y.bin")
    here = (MiB, 2 * MiB + 300_001)
    partial = dl.partial_path(target, entry)
    with open(partial, "wb") as fh:
        fh.truncate(here[1])
        fh.seek(here[0])
        fh.write(data[here[0]:here[1]])
    with open(dl.ranges_path(partial), "w") as fh:
        json.dump({"size": len(data), "done": [list(here)]}, fh)
    emulator.faults.ignore_range(times=1)
    d = dl.Download(store, entry, target, jobs=1)
    cut: list[int] = []

    def when(run, piece, offset, n):
        if not cut and piece.whole and offset < here[1] < offset + n:
            cut.append(offset)
            _fetch_first_now(d, offset + 1, here[1] - 1)

    _on_stream_write(monkeypatch, when)
    res = _bounded(d.run, [d._run])
    assert cut and open(target, "rb").read() == data and res.md5 == entry.md5
