"""A worker's error is noticed as soon as the worker answers, not once the next batch's
bytes have arrived: over a slow link that took seconds, and when the download stalled
(Drive stops sending) the failed extraction's workers and temporary folder stayed until
the stall ended. The error ends the waits for bytes, the workers and the threads that feed
them, and the members written so far go at once."""
from __future__ import annotations

import io
import logging
import os
import threading
import zipfile

import pytest

from drivestage.errors import ArchiveError
from drivestage.extract import workers
from drivestage.extract.copying import Progress
from drivestage.extract.job import Job
from drivestage.extract.members import EOCD_TAIL, list_members
from drivestage.extract.tempdir import TEMP_PREFIX
from drivestage.interrupts import Flag

from _cli import run
from test_extract_workers import worker_pids

#: Enough members that workers pay (each file counts as 256 KiB of work).
COUNT = 600
#: The member whose CRC-32 fails: in the first batch.
BAD = 5
#: How long a test waits for what must happen at once (a loaded machine: generous).
PROMPT = 20.0


def members(count: int = COUNT) -> dict[str, bytes]:
    """Small members, and a last one bigger than the zip's tail that a followed download
    fetches first (with the central directory): no batch but the first ones can be all
    there while the front of the download is held."""
    out = {f"set/{i % 7}/m{i:04d}.bin": os.urandom(200 + (i * 37) % 1500)
           for i in range(count - 1)}
    out["set/last.bin"] = os.urandom(256 << 10)
    return out


def bad_zip(data: dict[str, bytes]) -> tuple[bytes, str, dict[str, int]]:
    """A stored zip of ``data`` whose member ``BAD`` fails its CRC-32 check (a byte of its
    data flipped); the member's name, and each member's local header offset."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in data.items():
            zf.writestr(zipfile.ZipInfo(name, (2023, 5, 6, 7, 8, 10)), body)
        offsets = {i.filename: i.header_offset for i in zf.infolist()}
    blob = bytearray(buf.getvalue())
    name = list(data)[BAD]
    at = offsets[name] + 30 + len(name.encode()) + 10
    blob[at] ^= 0xFF
    return bytes(blob), name, offsets


def drivestage_threads(besides: set) -> list[str]:
    """Extraction threads alive now but those in ``besides`` (what ran before the test: a
    test that failed earlier in this worker may have left one)."""
    return [t.name for t in threading.enumerate()
            if t.name.startswith("drivestage-extract") and t.is_alive() and t not in besides]


def test_a_workers_error_ends_the_writing_while_the_next_bytes_are_held(tmp_path):
    """The download 'stalls' after the first batch, which holds a member that fails its
    CRC-32 check. ``write_in_processes`` raises that error without the rest of
    the bytes (it set ``stop``, which ends the waits for them), and leaves no worker and
    no thread behind."""
    before = set(threading.enumerate())
    data = members()
    blob, name, offsets = bad_zip(data)
    archive = tmp_path / "bad.zip"
    archive.write_bytes(blob)
    job = Job(str(archive), str(tmp_path / "dest"))
    files = job.check(list_members(str(archive))[1])
    # From the second batch's start on: whichever feeder takes it waits for its bytes
    # before it reads the first batch's answer (the other waits for the third).
    held_from = offsets[list(data)[workers._BATCH_FILES]]
    stop, released = Flag(), threading.Event()

    def wait(start: int, end: int) -> None:  # as Overlapped's: ends once stop is set
        if end <= held_from:
            return
        stop.wait(60)
        if stop.is_set() and not released.is_set():
            raise ArchiveError("the download stopped")

    afd = os.open(archive, os.O_RDONLY)
    errors: list[BaseException] = []

    def writing() -> None:
        try:
            workers.write_in_processes("zip", afd, len(blob), job.root, files, 2,
                                       Progress(None), label=str(archive),
                                       hold_fd=job.owner_fd, wait=wait, stop=stop)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=writing, daemon=True)
    t.start()
    try:
        t.join(PROMPT)
        ended = not t.is_alive()
    finally:
        released.set()
        stop.set()  # what the download's end does: the test ends either way
        t.join(60)
        os.close(afd)
        job.close()
    assert ended, "the worker's error waited for bytes that had not arrived"
    assert len(errors) == 1 and isinstance(errors[0], ArchiveError), errors
    assert f"member {name!r} of {archive} fails its CRC-32 check" in str(errors[0])
    assert stop.is_set()
    assert worker_pids(os.getpid()) == []
    assert drivestage_threads(before) == []
    assert os.listdir(tmp_path / "dest") == []


def test_pull_extract_stops_its_workers_when_a_member_fails_while_the_download_stalls(
        emulator, drive_env, tmp_path, fast_retries):
    """``pull --extract`` of a big zip whose early member fails its CRC-32 check; the
    download stalls (one stream, its body held just after the first batch's bytes: each
    feeder then waits for bytes before it reads an answer). While it is held, the
    extraction stops: its workers are gone and nothing extracted is left in DEST (seen as
    it says so, in its debug log). Once the download ends, the pull fails with the CRC-32
    error (the verified archive extracted the usual way says it) and DEST holds the staged
    archive and nothing extracted."""
    data = members()
    blob, name, offsets = bad_zip(data)
    fid = emulator.add_file("d/set.zip", blob)
    hold = emulator.faults.hold(fid, offsets[list(data)[workers._BATCH_FILES]] + 100)
    dest = tmp_path / "data"
    seen: dict[str, object] = {}
    stopped = threading.Event()

    class Watch(logging.Handler):
        """What the extraction says, and what is there as it says it (in its thread)."""

        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if "in 2 worker processes" in text:
                seen["workers"] = True
            elif text.startswith("stopped extracting") and not stopped.is_set():
                seen["while held"] = not hold.released and not (dest / "set.zip").exists()
                seen["workers left"] = worker_pids(os.getpid())
                seen["temporary folders"] = [p.name for p in dest.glob(TEMP_PREFIX + "*")]
                seen["why"] = text
                stopped.set()

    def watch() -> None:
        try:
            if hold.reached.wait(60):
                stopped.wait(PROMPT)
        finally:
            hold.release()

    watcher = threading.Thread(target=watch, daemon=True)
    handler = Watch(logging.DEBUG)
    loggers = [logging.getLogger(f"drivestage.extract.{m}") for m in ("workers", "overlapped")]
    for logger in loggers:
        logger.addHandler(handler)
    watcher.start()
    try:
        code, out, err = run("-vv", "pull", "drive:d/set.zip", str(dest), "-x", "-q", "-j", "1")
    finally:
        hold.release()
        watcher.join(60)
        for logger in loggers:
            logger.removeHandler(handler)
    assert seen.get("workers") and "why" in seen, seen
    assert seen["while held"], "the extraction stopped only once the download went on"
    assert seen["workers left"] == [] and seen["temporary folders"] == [], seen
    assert f"member {name!r} of {dest / 'set.zip'} fails its CRC-32 check" in str(seen["why"])
    assert code == 1
    assert f"member {name!r} of {dest / 'set.zip'} fails its CRC-32 check" in err, err
    assert sorted(p for p in os.listdir(dest) if p != ".drivestage") == ["set.zip"]
    assert worker_pids(os.getpid()) == []


def test_two_threads_following_a_small_zip_end_each_others_wait_for_bytes(tmp_path):
    """A small zip is written by two threads as its bytes arrive. One waits for bytes
    that have not arrived when the other's member fails its CRC-32 check: the failure
    ends that wait (the follower's stop), so the extraction ends with the error at once
    and its temporary folder goes, while the download is still held."""
    from drivestage.extract.overlapped import Overlapped

    data = members(40)
    blob, name, offsets = bad_zip(data)
    archive = tmp_path / "set.zip"
    archive.write_bytes(blob)
    dest = tmp_path / "dest"
    dest.mkdir()
    here = offsets[list(data)[BAD + 1]]  # the bytes before the member after the bad one
    bad_start = offsets[name]
    tail = len(blob) - EOCD_TAIL  # what the pull fetches first, with the central directory
    waiting, stop = threading.Event(), Flag()

    def first_arrived(spans) -> int:
        for i, (a, b) in enumerate(spans):
            if b <= here:
                return i
        waiting.set()  # the rest is held: this thread waits, as the download's do
        stop.wait(60)
        return -1

    def arrived(start: int, end: int) -> bool:
        if start == bad_start and end > start + 30 + len(name):  # the bad member's data
            assert waiting.wait(60)  # the other thread waits for bytes first
        if end <= here or start >= tail:
            return True
        # Held bytes: only the stop ends this wait (a wait that timed out would let the
        # extraction go on as if they had arrived, and the test pass a minute late).
        assert stop.wait(PROMPT), f"bytes {start}-{end} waited for past the stop"
        return False

    job = Overlapped.zip(str(archive), len(blob), str(dest), arrived,
                         first_arrived=first_arrived, stop=stop)
    assert job is not None and job.thread is not None
    try:
        ended = job.thread.join(PROMPT)
        temps = [p.name for p in dest.glob(TEMP_PREFIX + "*")]
    finally:
        stop.set()  # what the download's end does: the test ends either way
        job.abandon()
    assert ended, "the failure waited for bytes that had not arrived"
    assert isinstance(job.error, ArchiveError), job.error
    assert f"member {name!r} of {archive} fails its CRC-32 check" in str(job.error)
    assert temps == []
    assert os.listdir(dest) == []


def test_the_emulator_holds_a_body_right_before_its_byte_until_released(emulator):
    """The fault the pull test stalls its download with: an answer sends every byte before
    the offset, waits there (``reached``) until ``release()``, then the rest."""
    import http.client
    from urllib.parse import urlsplit

    data = os.urandom(300_000)
    fid = emulator.add_file("h.bin", data)
    hold = emulator.faults.hold(fid, 100_000)
    url = urlsplit(emulator.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request("GET", f"/drive/v2/files/{fid}?alt=media",
                     headers={"Authorization": "Bearer test-token"})
        body = conn.getresponse()
        assert body.status == 200
        got = b""
        while len(got) < 100_000:
            chunk = body.read1(1 << 20)
            assert chunk
            got += chunk
        assert hold.reached.wait(30)
        assert got == data[:100_000]
        assert emulator.faults.describe()["holds"] == [
            {"file_id": fid, "offset": 100_000, "reached": True, "released": False}]
        hold.release()
        assert got + body.read() == data
    finally:
        hold.release()
        conn.close()
