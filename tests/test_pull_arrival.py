"""`pull --extract` over several streams (issue 15): the streams fill pieces far apart, so
members are written in the order their bytes arrive, not in file order (a member near the
end is not held back by a slow front); the zip's central directory is fetched while the
streams already fetch the rest (a range fetched at once while streams run: no byte asked
twice); and the number of streams is measured from the first stream on, without concluding
anything while the caller still reads the member list."""
from __future__ import annotations

import os
import random
import threading
import time
import types

import pytest
from _download_fixtures import _fast, out, small_splits, store  # noqa: F401

from drivestage import download as dl
from drivestage import stream_count, streams
from drivestage.extract import workers
from drivestage.extract.copying import Progress
from drivestage.interrupts import Monitor
from drivestage.partials import Ranges

from _archives import tree
from _cli import run
from test_extract_workers import big_zip, members, started

MiB = 1 << 20


# ---------------------------------------------------------------- which spans are here

def test_first_covered_is_the_first_span_held_whole():
    """Against the obvious scan, on random ranges and spans."""
    rng = random.Random(7)
    for _ in range(300):
        size = rng.randrange(1, 400)
        cuts = sorted(rng.sample(range(1, size + 1), min(size, rng.randrange(1, 12))))
        spans = list(zip([0] + cuts[:-1], cuts))
        held = Ranges("p", size)
        for _ in range(rng.randrange(0, 6)):
            a = rng.randrange(0, size)
            held.add(a, rng.randrange(a + 1, size + 1))
        expected = next((i for i, (a, b) in enumerate(spans) if held.covers(a, b)), -1)
        assert held.first_covered(spans) == expected, (spans, held.starts, held.ends)


# ---------------------------------------------------------------- arrival order

def test_workers_write_the_members_whose_bytes_arrived_first(tmp_path):
    """The back half of the zip is here, the front is not (a slow first stream): every
    batch of the back half goes to the workers before any of the front, and the front
    arrives only once nothing else is left. Written in file order, the first batch would
    wait for the front for good."""
    data = members(4)
    archive, job, files = started(tmp_path, data)
    size = archive.stat().st_size
    half = size // 2
    front_here = threading.Event()
    taken: list[tuple[int, int]] = []

    def wait(start: int, end: int) -> None:
        if start < half:
            assert front_here.wait(30), "a front member was asked for before the back"

    def first(spans):
        i = next((i for i, (a, b) in enumerate(spans) if a >= half), None)
        if i is None:  # only the front is left: it arrives now
            front_here.set()
            i = 0
        taken.append(spans[i])
        return i

    afd = os.open(archive, os.O_RDONLY)
    try:
        workers.write_in_processes("zip", afd, size, job.root, files, 2, Progress(None),
                                   label=str(archive), hold_fd=job.owner_fd, wait=wait,
                                   first=first)
        job.finish()
    finally:
        os.close(afd)
        job.close()
    back = [a >= half for a, _ in taken]
    assert True in back and False in back
    assert back == sorted(back, reverse=True), "a front batch went before a back one"
    assert tree(tmp_path / "dest") == data


def _hold_front(monkeypatch, until):
    """Hold every stream write below ``until()``'s offset in the streams' pwrite until
    ``until()`` says so (bounded): returns the list the outcome lands in."""
    real = os.pwrite
    outcome: list[bool] = []
    gate = threading.Lock()

    def pwrite(fd, data, offset):
        limit, ready = until()
        if offset < limit and not outcome:
            deadline = time.monotonic() + 30
            while not ready() and time.monotonic() < deadline:
                time.sleep(0.01)
            with gate:
                if not outcome:
                    outcome.append(ready())
        return real(fd, data, offset)

    names = {k: getattr(os, k) for k in dir(os) if not k.startswith("__")}
    monkeypatch.setattr(streams, "os", types.SimpleNamespace(**{**names, "pwrite": pwrite}))
    return outcome


@pytest.mark.parametrize("writers", ["processes", "threads"])
def test_pull_extract_writes_the_back_of_a_zip_while_its_front_is_held(
        emulator, drive_env, tmp_path, small_splits, monkeypatch, writers):
    """Two streams: the second takes the back half. The first one's bytes are held back
    until a member of the back half is in the temporary folder (written by a worker
    process for a big zip, by a thread for a small one): it gets there, and the pull
    verifies and extracts everything exactly."""
    data = members(5)
    if writers == "threads":
        data = {name: os.urandom(16 << 10) for name in list(data)[:40]}
    blob = big_zip(data)
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "data"
    import io
    import zipfile
    infos = zipfile.ZipFile(io.BytesIO(blob)).infolist()
    half = len(blob) // 2
    late = [i.filename for i in infos if i.header_offset > half + len(blob) // 8]

    def back_written() -> bool:
        return any(os.path.exists(t / name) for t in dest.glob(".drivestage-extract-*")
                   for name in late)

    outcome = _hold_front(monkeypatch, lambda: (half, back_written))
    code, out_, err = run("-vv", "pull", "drive:d/set.zip", str(dest), "-x", "-q",
                          "--jobs", "2")
    assert code == 0, err
    assert ("in 2 worker processes" in err) == (writers == "processes"), err
    assert outcome == [True], "no member of the back half was written while the front waited"
    assert tree(dest) == {"set.zip": blob, **data}
    assert not list(dest.glob(".drivestage-extract-*"))


# ---------------------------------------------------------------- a range fetched at once

def test_a_range_fetched_at_once_while_a_stream_reads_cuts_its_piece(
        emulator, store, out, monkeypatch):
    """One stream reads the file from the front, slowly; a range in the middle is fetched at
    once: the stream's piece is cut before it, the bytes after it go back to be taken (and
    are asked for once), and no byte is written twice. The file verifies."""
    data = os.urandom(6 * MiB)
    fid = emulator.add_file("m.bin", data)
    entry = store.resolve("m.bin")
    emulator.faults.throttle(per_connection=4 * MiB)
    emulator.clear_requests()
    d = dl.Download(store, entry, str(out / "m.bin"), jobs=1)
    try:
        d.begin()
        assert d.wait_for(0, 1, d.generation)  # the stream is reading from the front
        d.fetch_first(3 * MiB, 4 * MiB)
        assert d.read(3 * MiB, 4 * MiB) == data[3 * MiB:4 * MiB]
        res = d.run()
    finally:
        d.close()
    assert open(out / "m.bin", "rb").read() == data and res.md5 == entry.md5
    # Each byte written once; the stream's request overshoots its cut only by what was on
    # its way (the server cannot take back what it sent).
    assert res.fetched == len(data)
    ranges = [r.headers["Range"] for r in emulator.requests
              if r.query.get("alt") == "media" and r.path.endswith(fid)]
    assert ranges == [f"bytes=0-{6 * MiB - 1}", f"bytes={3 * MiB}-{4 * MiB - 1}",
                      f"bytes={4 * MiB}-{6 * MiB - 1}"]


def test_the_zip_tail_and_the_front_are_asked_for_at_once(emulator, store, out, monkeypatch):
    """``fetch_first(tail, size, begin=True)``: the streams begin on the rest before the
    tail has come (on Drive each answer waits a tenth of a second or more): the tail's read
    waits here until a stream has asked for the front, which it could not if the streams
    began only after it. Each byte is asked once."""
    data = os.urandom(3 * MiB)
    emulator.add_file("z.bin", data)
    entry = store.resolve("z.bin")
    tail = len(data) - 64 * 1024
    front_asked = threading.Event()
    seen: list[bool] = []
    real = store.read_into

    def read_into(e, start, sink):
        if start == 0:
            front_asked.set()
        elif start == tail:
            seen.append(front_asked.wait(10))
        return real(e, start, sink)

    monkeypatch.setattr(store, "read_into", read_into)
    emulator.clear_requests()
    d = dl.Download(store, entry, str(out / "z.bin"), jobs=1)
    try:
        d.fetch_first(tail, len(data), begin=True)
        res = d.run()
    finally:
        d.close()
    assert seen == [True], "the front was not asked for before the tail came"
    ranges = sorted(r.headers["Range"] for r in emulator.requests
                    if r.query.get("alt") == "media")
    assert ranges == [f"bytes=0-{tail - 1}", f"bytes={tail}-{len(data) - 1}"]
    assert res.fetched == len(data) and open(out / "z.bin", "rb").read() == data


# ---------------------------------------------------------------- the measuring

def test_a_request_body_is_timed_from_its_first_block():
    """The zip's tail on Drive: 0.2 s before its first byte, then 10 MB in 0.1 s: a link
    giving 100 MB/s, not 33 (the wait before the answer is no measure of the link); too
    short a body tells nothing."""
    body = [(5.2, 1 << 20, 5.3, 11 << 20)]
    assert stream_count.body_rate(body, 4 << 20) == pytest.approx((10 << 20) / 0.1)
    assert stream_count.body_rate([(5.2, 1 << 20, 5.21, 3 << 20)], 4 << 20) is None
    assert stream_count.body_rate([(5.2, 8 << 20, 5.2, 8 << 20)], 4 << 20) is None


class _Ticks(Monitor):
    """The link's lock. A wait on it does not wait: it moves the link's clock on by its
    timeout (the measuring's wait between two looks) and does what the test set for that
    moment. The measuring is driven by its own looks, each one a fixed step of the clock,
    not by the wall clock of a loaded machine: a look that a busy machine put off between
    reading the clock and reading the bytes took bytes from that later moment into a rate
    of the earlier one (a stream a third as fast as its tail looked fast enough for a
    second one, under load)."""

    def __init__(self, link: "_Link") -> None:
        super().__init__()
        self.link = link

    def wait(self, timeout=None) -> bool:
        self.link.tick(timeout)
        return False


class _Link:
    """A pass as the measuring sees it, its streams held to ``each`` bytes/s each (Drive's
    way: 20 MB/s), on a machine whose cores let only ``busy`` bytes/s through in all while
    the caller is busy; its clock (``now``, seconds) moves only as the measuring waits.

    ``streamed`` is what the rate brought up to ``now``. ``at`` is what the test does when
    the clock reaches a moment (the caller's member list read, the extraction started):
    (seconds, action) pairs, in order."""

    hash_name = "sha256"
    where = "test"
    whole = False
    _RATE_FIELDS = frozenset({"each", "busy", "settled", "streams", "retiring"})
    #: Looks at most: the measuring ends long before, or the test fails (not hangs).
    _LOOKS = 10_000

    def __init__(self, each: float = 20e6, busy: float = 25e6, at=()) -> None:
        self.now, self.looks, self.at = 0.0, 0, list(at)
        self._brought, self._since = 0.0, 0.0
        self.each, self.busy = each, busy
        self.first_rate = each  # the zip's tail came at one stream's pace
        self.lock = _Ticks(self)
        self.streams, self.retiring, self.silent = 1, 0, 0
        self.stopped = self.settled = False

    def _rate(self) -> float:
        rate = self.each * (self.streams - self.retiring)
        return rate if self.settled else min(rate, self.busy)

    def __setattr__(self, name: str, value) -> None:
        if name in self._RATE_FIELDS and "settled" in self.__dict__:
            # What the old rate brought until now is kept; the new one counts from here.
            self._brought += self._rate() * (self.now - self._since)
            object.__setattr__(self, "_since", self.now)
        object.__setattr__(self, name, value)

    @property
    def streamed(self) -> int:
        return int(self._brought + self._rate() * (self.now - self._since))

    def left(self) -> int:
        return 10 << 30

    def add_streams(self, n: int) -> None:
        with self.lock:
            self.streams += n

    def retire(self, n: int) -> None:
        self.retiring += n

    def tick(self, seconds: float) -> None:
        self.looks += 1
        assert self.looks < self._LOOKS, "the measuring went on past its bound"
        self.now += seconds
        while self.at and self.at[0][0] <= self.now:
            self.at.pop(0)[1]()


def _measure(monkeypatch, link: _Link, cores_busy: float = 0.0) -> None:
    """Run the measuring of ``link`` to its end, on the link's clock; the cores read as
    ``cores_busy`` (idle by default: the reading on which streams may be added)."""
    monkeypatch.setattr(stream_count, "time", types.SimpleNamespace(monotonic=lambda: link.now))
    monkeypatch.setattr(stream_count.cpuload, "busy", lambda before, after: cores_busy)
    stream_count.measure(link, 1)


def _member_list_read(link: _Link, seen: list) -> tuple[float, object]:
    """At 0.6 s on the link's clock (the caller has read its member list): the streams
    then go to ``seen``, and the download ends."""
    def action() -> None:
        seen.append((link.streams, link.retiring))
        link.stopped = True
    return 0.6, action


def test_a_fast_stream_gets_no_second_one_while_the_caller_is_busy(monkeypatch):
    """A server next door: the zip's tail came at 400 MB/s (the cores set that rate). While
    the caller reads the member list, its work slows the stream down to a link's pace
    (150 MB/s): no stream is added on that (it looked like a gain, and a pull next to its
    server went on with 8 streams taking CPU from the hash and the extraction)."""
    seen: list = []
    link = _Link(each=400e6, busy=150e6)  # the caller's work: 150 MB/s, a link's pace
    link.at.append(_member_list_read(link, seen))
    _measure(monkeypatch, link)
    assert seen == [(1, 0)]


def test_a_stream_slowed_by_the_caller_gets_no_second_one(monkeypatch):
    """The tail came at 150 MB/s (a busy machine next to its server, or a fast link); while
    the caller reads the member list the stream brings a third of that: the caller's work,
    not the link, sets that rate, and no stream is added on it (a pull next to its server
    went on with 8 streams in such a state)."""
    seen: list = []
    link = _Link(each=150e6, busy=50e6)
    link.at.append(_member_list_read(link, seen))
    _measure(monkeypatch, link)
    assert seen == [(1, 0)]


def test_a_stream_once_faster_than_a_link_gets_no_second_one_on_busy_cores(monkeypatch):
    """A 2-core machine next to its server: while the caller reads the member list one
    stream brings 150 MB/s, more than any Drive connection gives; once the extraction takes
    the cores (all busy) it brings 140. That is the cores' rate, not a link's: no stream is
    added (the measuring added one, then seven more, each taking CPU from the hash and the
    extraction, because 140 MB/s is below what it called fast)."""
    link = _Link(each=150e6, busy=150e6)
    link.first_rate = None  # the zip's tail was too short to time

    def extraction_runs() -> None:  # the caller waits
        assert link.streamed >= 60e6  # some windows at 150 MB/s while the caller worked
        link.each, link.settled = 140e6, True

    link.at.append((0.4, extraction_runs))
    _measure(monkeypatch, link, cores_busy=0.95)
    assert not link.at and not link.stopped  # it concluded, by itself, after the caller
    assert (link.streams, link.retiring) == (1, 0)


def test_the_measuring_concludes_nothing_while_the_caller_is_busy(monkeypatch):
    """While the caller reads a member list (its cores busy), two streams bring barely more
    than one. The measuring concludes nothing (it concluded 2 streams for good, and a pull
    over such a link took twice as long), then finds the link's 8 streams once the caller
    waits for the download."""
    seen: list = []
    link = _Link()

    def caller_waits() -> None:  # the caller's member list read: the measuring is still at it
        seen.append((link.streams, link.retiring))
        link.settled = True

    link.at.append((0.6, caller_waits))
    _measure(monkeypatch, link)
    assert seen == [(2, 0)] and not link.stopped  # it concluded, by itself
    assert link.streams - link.retiring == stream_count.MAX_STREAMS


def test_a_window_begun_while_the_caller_worked_is_begun_again_once_it_waits(monkeypatch):
    """The caller starts waiting in the middle of a window: the window's rate is part busy
    (25 MB/s for two streams), part not (40): neither. Concluded on, that blend (below 1.5
    times one stream's 20) kept the two streams for good over a link that gives each stream
    its 20 MB/s (1beef681); begun again, the window finds the link's 8. Every moment of a window's length (on the link's clock) is
    tried, so one falls inside a window whatever its phase."""
    found = {}
    for at in [0.5 + i / 100 for i in range(21)]:
        link = _Link()
        link.at.append((at, lambda link=link: setattr(link, "settled", True)))
        _measure(monkeypatch, link)
        found[at] = link.streams - link.retiring
    assert set(found.values()) == {stream_count.MAX_STREAMS}, found


# ---------------------------------------------------------------- stopping the follower

def test_a_ctrl_c_as_the_extraction_starts_does_not_wait_for_the_first_member(
        emulator, store, tmp_path, monkeypatch):
    """A Ctrl-C lands right as the thread that follows the download starts. Its clean-up
    waited for that thread, which waited for the first member's bytes: 12 s here, where the
    stream brings 256 KiB/s and the first member is 3 MiB (minutes for a big member on a
    slow link). The thread now stops with the follower: the download is closed long before
    the stream got to the end of the first member, and nothing is left in DEST."""
    import io
    import zipfile

    from drivestage.extract.overlapped import Overlapped
    from drivestage.unpack import Unpacking

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ds/first.bin", os.urandom(3 * MiB))
        for i in range(5):
            zf.writestr(f"ds/{i}.txt", b"x" * 100)
    blob = buf.getvalue()
    emulator.add_file("slow.zip", blob)
    entry = store.resolve("slow.zip")
    dest = tmp_path / "data"
    dest.mkdir()
    target = str(dest / "slow.zip")
    emulator.faults.throttle(per_connection=256 * 1024)
    original, waiting = Overlapped._start, threading.Event()
    original_first = dl.Download.first_here

    def first_here(self, spans, generation, *cancelled):
        if len(spans) == 1:  # the small members (in the tail, fetched first) are written
            waiting.set()
        return original_first(self, spans, generation, *cancelled)

    def start(self, work):
        original(self, work)
        assert waiting.wait(30)  # the thread waits for the first member's bytes
        raise KeyboardInterrupt  # and the Ctrl-C comes

    monkeypatch.setattr(Overlapped, "_start", start)
    monkeypatch.setattr(dl.Download, "first_here", first_here)
    with pytest.raises(KeyboardInterrupt):
        Unpacking(store, entry, target, str(dest), extract=True, jobs=1, chunk_size=None,
                  progress=None, describe="slow.zip", reserve=0, lock_dir=None)
    record = Ranges.load(dl.partial_path(target, entry), len(blob))
    assert record is not None and record.prefix() < MiB, record.prefix()
    assert sorted(p.name for p in dest.iterdir() if not p.name.startswith(".")) == []
    assert not list(dest.glob(".drivestage-extract-*"))


def test_a_ctrl_c_as_the_follower_is_handed_over_leaves_nothing(emulator, store, tmp_path,
                                                                 monkeypatch):
    """The Ctrl-C lands as ``Overlapped.follow_zip`` returns (the member list read, the
    thread started), before its caller has returned the follower: it is still abandoned (it
    is handed over as it is made, before the zip's tail is fetched):
    no temporary folder in DEST, no extraction thread left, the partial kept for a rerun."""
    from drivestage.extract.overlapped import Overlapped
    from drivestage.unpack import Unpacking

    data = {f"ds/{i}.bin": os.urandom(64 << 10) for i in range(8)}
    blob = big_zip(data)
    emulator.add_file("h.zip", blob)
    entry = store.resolve("h.zip")
    dest = tmp_path / "data"
    dest.mkdir()
    target = str(dest / "h.zip")
    emulator.faults.throttle(per_connection=256 * 1024)  # the download is still running
    original = Overlapped.follow_zip

    def follow_then_ctrl_c(self):
        assert original(self) and list(dest.glob(".drivestage-extract-*"))
        raise KeyboardInterrupt

    monkeypatch.setattr(Overlapped, "follow_zip", follow_then_ctrl_c)
    before = set(threading.enumerate())  # a test that failed earlier may have left one
    with pytest.raises(KeyboardInterrupt):
        Unpacking(store, entry, target, str(dest), extract=True, jobs=1, chunk_size=None,
                  progress=None, describe="h.zip", reserve=0, lock_dir=None)
    assert not list(dest.glob(".drivestage-extract-*"))
    for t in [t for t in threading.enumerate()
              if t.name == "drivestage-extract" and t not in before]:
        t.join(10)  # its work has ended; the thread itself is about to
        assert not t.is_alive()
    assert os.path.exists(dl.partial_path(target, entry))
