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

import itertools
import json
import os
import threading

import pytest
from _archives import a_tar, a_tgz, a_zip, tree
from _download_fixtures import _fast, out, passes, small_splits, store  # noqa: F401

from _cli import run
from drivestage import download as dl
from drivestage import streams

KiB, MiB = 1024, 1 << 20

#: Every combination below with DRIVESTAGE_TEST_SWEEP=all (about a minute on 2 cores); by
#: default a few that cover each value (this file must stay under 15 s in CI).
_ALL = os.environ.get("DRIVESTAGE_TEST_SWEEP") == "all"


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


# -- SIGKILL at the moments of the whole-answer path, then a rerun -------------------------

_KILLED = r"""
import os, signal, sys, threading
from drivestage import download as dl, streams
from drivestage.drive import connect

moment, target, jobs, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
store = connect()
entry = store.resolve("k.bin")


def kill(run):
    with run.lock:  # the record as the next save would write it, then the kill
        run.done.save()
    os.kill(os.getpid(), signal.SIGKILL)


ranges_ignored, extend, write = streams.Pass.ranges_ignored, streams.Pass.extend, \
    streams.Pass.write


def on_ranges_ignored(self, piece):
    ranges_ignored(self, piece)
    if moment == "retired" and any(p.retired for p in self.pieces):
        kill(self)
    whole.set()


def on_extend(self, piece):
    end = piece.end
    extend(self, piece)
    if moment == "extended" and piece.end != end:
        kill(self)


def on_write(self, piece, offset, data):
    # Before the block: one that starts half-way over the bytes here already (some block
    # does: each is at most 1 MiB). After it, the block had to end before them too: a
    # loaded machine's reads are whole MiBs, none did, and the download ended (exit 0).
    if moment == "skipping" and piece.skip_to // 2 < offset < piece.skip_to:
        kill(self)
    write(self, piece, offset, data)


claim, second, whole = streams.Pass.claim, threading.Event(), threading.Event()


def on_claim(self):  # "retired": the first stream asks once the second has its piece, which
    piece = claim(self)  # asks once the first answer is in (which then gives it up)
    if moment == "retired" and piece is not None and piece.pos == 0:
        _waited(second, "the second stream never took its piece")
    elif moment == "retired" and piece is not None and not self.whole:
        second.set()
        _waited(whole, "the first answer never came whole")
    return piece


def _waited(event, what):  # (a wait run out ended here: the moment went by, the test passed)
    if not event.wait(10):
        sys.stderr.write(what + "\n")
        sys.stderr.flush()
        os._exit(3)


streams.Pass.ranges_ignored, streams.Pass.extend, streams.Pass.write, streams.Pass.claim = \
    on_ranges_ignored, on_extend, on_write, on_claim
dl.download(store, entry, target, jobs=jobs, chunk_size=chunk or None)
"""


@pytest.mark.parametrize("moment,jobs,chunk,resumed", [
    ("retired", 2, 2 * MiB, False),     # the first whole answer gave up the piece ahead
    ("extended", 1, 0, True),           # a whole answer took the next range to read on into
    ("skipping", 1, 0, True),           # ... and is half-way over the bytes here already
])
def test_a_kill_in_the_whole_answer_path_leaves_a_record_the_rerun_trusts(
        emulator, drive_env, store, tmp_path, moment, jobs, chunk, resumed):
    """SIGKILL at the moment named (the record saved just before, as the streams save it):
    the record names only bytes that are in the partial; the rerun, the server honouring
    Range again, asks only for the others, and the file is the exact bytes, verified."""
    from _forkcli import cli_server
    import sys

    data = os.urandom(4 * MiB)
    fid = emulator.add_file("k.bin", data)
    entry = store.resolve("k.bin")
    target = str(tmp_path / "k.bin")
    partial = dl.partial_path(target, entry)
    if resumed:  # a rerun's partial: bytes 1-2.5 MiB here (the whole answer skips them)
        here = (MiB, 2 * MiB + MiB // 2)
        with open(partial, "wb") as fh:
            fh.seek(here[0])
            fh.write(data[here[0]:here[1]])
        with open(dl.ranges_path(partial), "w") as fh:
            json.dump({"size": len(data), "done": [list(here)]}, fh)
    emulator.faults.throttle(per_connection=32 * MiB)
    emulator.faults.ignore_range()
    env = dict(os.environ, **drive_env, DRIVESTAGE_RETRY_BASE="0.001",
               DRIVESTAGE_RETRY_JITTER="0")
    # (forked with drivestage imported, tests/_forkcli.py: not a fresh interpreter each case)
    child = cli_server().run([moment, target, str(jobs), str(chunk)], script=_KILLED, env=env,
                             timeout=60)
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    recorded = _record_holds(partial, data)
    kept = sum(b - a for a, b in recorded)
    emulator.faults.clear()
    emulator.clear_requests()
    res = _bounded(lambda: dl.download(store, entry, target, jobs=2), [])
    assert open(target, "rb").read() == data and res.md5 == entry.md5
    assert (res.resumed_from, res.fetched) == (kept, len(data) - kept)
    asked = [int(r.split("=")[1].split("-")[0]) for r, _ in _media_gets(emulator, fid)]
    assert not any(a <= s < b for s in asked for a, b in recorded), (asked, recorded)


# -- failures while a whole answer reads on ----------------------------------------------

def _resumed(data: bytes, target: str, entry, here: tuple[int, int]) -> str:
    """A partial holding ``data[here[0]:here[1]]``, with its record (what a failed run left)."""
    partial = dl.partial_path(target, entry)
    with open(partial, "wb") as fh:
        fh.seek(here[0])
        fh.write(data[here[0]:here[1]])
    with open(dl.ranges_path(partial), "w") as fh:
        json.dump({"size": len(data), "done": [list(here)]}, fh)
    return partial


def test_a_whole_answer_broken_for_good_while_it_reads_on_keeps_what_came(
        emulator, store, out, passes, monkeypatch):
    """Every answer breaks after 3.5 MiB (and each one starts at byte 0): the first brings
    its piece and reads on into the next one; the retries then give up. The error names
    the download; the record names only bytes that came (a reset loses what the socket
    held: not all 3.5 MiB arrive); the rerun fetches the rest once and verifies."""
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    data = os.urandom(4 * MiB)
    fid = emulator.add_file("d.bin", data)
    entry = store.resolve("d.bin")
    target = str(out / "d.bin")
    emulator.faults.ignore_range()
    emulator.faults.throttle(per_connection=32 * MiB)  # read as sent: little lost in a reset
    emulator.faults.drop("GET", fid, after_bytes=3 * MiB + MiB // 2, times=None)
    with pytest.raises(Exception) as failed:
        _bounded(lambda: dl.download(store, entry, target, jobs=1, chunk_size=MiB), passes)
    assert "d.bin" in str(failed.value), failed.value
    partial = dl.partial_path(target, entry)
    (a, b), = _record_holds(partial, data)
    assert a == 0 and MiB < b <= 3 * MiB + MiB // 2, b  # it read on past its piece
    emulator.faults.clear()
    res = _bounded(lambda: dl.download(store, entry, target, jobs=1), [])
    assert open(target, "rb").read() == data
    assert (res.resumed_from, res.fetched) == (b, len(data) - b)


def test_a_ctrl_c_while_a_whole_answer_reads_on_leaves_a_record_the_rerun_trusts(
        emulator, store, out, passes, monkeypatch):
    """The Ctrl-C lands just as the whole answer took the next range to read on into (over
    bytes a failed run left): KeyboardInterrupt, promptly; the record names only bytes
    that are there; the rerun verifies."""
    import _thread

    data = os.urandom(4 * MiB)
    emulator.add_file("c.bin", data)
    entry = store.resolve("c.bin")
    target = str(out / "c.bin")
    partial = _resumed(data, target, entry, (MiB, 2 * MiB))
    emulator.faults.ignore_range()
    emulator.faults.throttle(per_connection=32 * MiB)
    original = streams.Pass.extend
    hit: list[int] = []

    def extend(self, piece):
        end = piece.end
        original(self, piece)
        if not hit and piece.end != end:
            hit.append(piece.end)
            _thread.interrupt_main()

    monkeypatch.setattr(streams.Pass, "extend", extend)
    with pytest.raises(KeyboardInterrupt):
        dl.download(store, entry, target, jobs=1)
    assert hit
    recorded = _record_holds(partial, data)
    monkeypatch.setattr(streams.Pass, "extend", original)
    emulator.faults.clear()
    res = _bounded(lambda: dl.download(store, entry, target, jobs=2), [])
    assert open(target, "rb").read() == data and res.md5 == entry.md5
    assert res.resumed_from == sum(b - a for a, b in recorded)


def test_the_hash_failing_while_a_whole_answer_skips_ends_the_download(
        emulator, store, out, passes, monkeypatch):
    """Another program truncates the partial as the whole answer reads on over the bytes a
    failed run left, before the hash reads those back: the hash fails, and the download
    ends with that error, promptly (the stream is held before its next bytes land until
    then: they would make the file long again)."""
    data = os.urandom(4 * MiB)
    emulator.add_file("h.bin", data)
    entry = store.resolve("h.bin")
    target = str(out / "h.bin")
    partial = _resumed(data, target, entry, (MiB, 3 * MiB))
    emulator.faults.ignore_range()
    truncated = threading.Event()
    original_extend, original_read_back = streams.Pass.extend, streams.Pass._read_back

    def extend(self, piece):
        end = piece.end
        original_extend(self, piece)
        if piece.end != end and not truncated.is_set():
            os.truncate(partial, MiB)
            truncated.set()

    def read_back(self, buf, pos):
        if pos + len(buf) > MiB:  # a read-back reaching the bytes a failed run left
            assert truncated.wait(10)
        return original_read_back(self, buf, pos)

    def when(run, piece, offset, n):
        if offset + n > 3 * MiB:  # the first block bringing missing bytes
            with run.lock:
                assert run.lock.wait_for(lambda: run.stopped, 10), _state(run)

    monkeypatch.setattr(streams.Pass, "extend", extend)
    monkeypatch.setattr(streams.Pass, "_read_back", read_back)
    _on_stream_write(monkeypatch, when)
    with pytest.raises(Exception) as failed:
        _bounded(lambda: dl.download(store, entry, target, jobs=1), passes)
    assert "got shorter" in str(failed.value) and "h.bin" in str(failed.value), failed.value


# -- the measuring's stop, decided while the first whole answer arrived ---------------------

def test_the_measurings_stop_right_after_a_whole_answer_keeps_the_record_saved(
        emulator, store, out, small_splits, passes, monkeypatch):
    """The measuring waits (the lock released) as the first whole answer gives up the
    piece ahead; it wakes and stops the stream it added, as it did not pay: the very call
    it makes, here at that moment. The stream it stops must be a live one, not one given up
    already (counted twice, the download stopped waiting for its streams while the whole
    answer read on: no record was saved from then on, and a kill lost it all). The record
    on disk follows the whole answer while it reads on."""
    import time

    data = os.urandom(4 * MiB)
    emulator.add_file("m.bin", data)
    entry = store.resolve("m.bin")
    target = str(out / "m.bin")
    partial = dl.partial_path(target, entry)
    emulator.faults.ignore_range(times=1)
    emulator.faults.throttle(per_connection=8 * MiB)
    second, whole = threading.Event(), threading.Event()
    original_claim, original_ignored = streams.Pass.claim, streams.Pass.ranges_ignored

    def claim(self):  # the first stream asks once the second has its piece; that one asks
        piece = original_claim(self)  # once the first answer is in
        if piece is not None and piece.pos == 0:
            assert second.wait(10)
        elif piece is not None and not whole.is_set():
            second.set()
            assert whole.wait(10)
        return piece

    stopped: list[int] = []

    def ranges_ignored(self, piece):
        original_ignored(self, piece)
        with self.lock:
            if not stopped and any(p.retired for p in self.pieces):
                self.retire(1)  # what stream_count.measure calls
                stopped.append(self.streams - self.retiring)
        whole.set()

    monkeypatch.setattr(streams.Pass, "claim", claim)
    monkeypatch.setattr(streams.Pass, "ranges_ignored", ranges_ignored)
    saved: list[int] = []

    def when(run, piece, offset, n):
        if not saved and piece.whole and offset >= 3 * MiB:
            deadline = time.monotonic() + 5  # ten times the record's period
            while True:
                with open(dl.ranges_path(partial)) as fh:
                    done = json.load(fh)["done"]
                here = done[0][1] if done and done[0][0] == 0 else 0
                if here >= 2 * MiB or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            saved.append(here)

    _on_stream_write(monkeypatch, when)
    res = _bounded(lambda: dl.download(store, entry, target, jobs=2, chunk_size=2 * MiB),
                   passes)
    assert open(target, "rb").read() == data and res.md5 == entry.md5
    assert stopped == [1] and saved and saved[0] >= 2 * MiB, (stopped, saved)


# -- sweeps: a server that ignores Range sometimes, answers broken mid-way, extraction --------

_TIMES, _JOBS, _CHUNKS = (1, 2, 3, None), (1, 2, 4, 8, None), (None, 256 * KiB)
_DROPS = (None, (100 * KiB, 1), (3 * MiB // 2, 3))   # (after bytes, answers broken)
_DOWNLOADS = list(itertools.product(_TIMES, _JOBS, _CHUNKS, _DROPS)) if _ALL else [
    (1, 4, 256 * KiB, None), (3, None, None, (3 * MiB // 2, 3)),
    (None, 8, 256 * KiB, (100 * KiB, 1)), (2, 2, None, (100 * KiB, 1))]


@pytest.mark.parametrize("times,jobs,chunk,drop", _DOWNLOADS)
def test_a_server_ignoring_range_at_times_gives_the_exact_file(
        emulator, store, out, small_splits, passes, times, jobs, chunk, drop):
    """The next ``times`` answers (None: all) ignore Range, the others honour it; answers
    break mid-way (``drop``); streams fixed or measured, pieces of ``chunk`` or split: the
    exact file, verified, in time; from a server that ignores every Range, a request per
    stream and per broken answer at most."""
    data = os.urandom(4 * MiB)
    fid = emulator.add_file("s.bin", data)
    entry = store.resolve("s.bin")
    emulator.faults.throttle(per_connection=32 * MiB)  # streams overlap
    emulator.faults.ignore_range(times=times)
    if drop is not None:
        emulator.faults.drop("GET", fid, after_bytes=drop[0], times=drop[1])
    emulator.clear_requests()
    res = _bounded(lambda: dl.download(store, entry, str(out / "s.bin"), jobs=jobs,
                                       chunk_size=chunk), passes)
    assert open(out / "s.bin", "rb").read() == data and res.md5 == entry.md5
    gets = _media_gets(emulator, fid)
    if times is None:
        assert len(gets) <= (jobs or 2) + (drop[1] if drop else 0), gets


def _members(n: int, size: int) -> dict[str, bytes]:
    return {f"d/m{i:04d}.bin": os.urandom(size) for i in range(n)}


#: name -> (members, archive of them); the big zip's member list is longer than the tail
#: fetched first, so that a second range is fetched before the streams' bytes.
_KINDS = {"a.zip": (lambda m: a_zip(m), (40, 100 * KiB)),
          "big.zip": (lambda m: a_zip(m), (1200, 10)),
          "a.tar": (a_tar, (40, 100 * KiB)),
          "a.tar.gz": (a_tgz, (40, 100 * KiB))}
_EXTRACTS = list(itertools.product(sorted(_KINDS), (1, 3, None), (1, 4, None))) if _ALL else [
    ("big.zip", None, 4), ("a.zip", 1, None), ("a.tar.gz", 3, 1), ("a.tar", None, None)]


@pytest.mark.parametrize("name,times,jobs", _EXTRACTS)
def test_pull_extract_through_a_server_ignoring_range_at_times(
        emulator, drive_env, tmp_path, small_splits, passes, name, times, jobs):
    """``pull --extract``, the members extracted while the bytes arrive (a zip's member
    list fetched first, from its end): exit 0, exactly the members and the archive, and
    from a server that ignores every Range a request per stream, plus the zip's tail and
    its member list, at most."""
    build, (n, size) = _KINDS[name]
    members = _members(n, size)
    archive = build(members)
    fid = emulator.add_file(name, archive)
    emulator.faults.throttle(per_connection=32 * MiB)
    emulator.faults.ignore_range(times=times)
    emulator.clear_requests()
    args = ["pull", f"drive:{name}", str(tmp_path / "dest"), "-x"] + \
        (["-j", str(jobs)] if jobs else [])
    code, _, err = _bounded(lambda: run(*args), passes, 30)
    assert code == 0, err
    assert tree(tmp_path / "dest") == {**members, name: archive}
    if times is None:
        assert len(_media_gets(emulator, fid)) <= (jobs or 2) + 2
