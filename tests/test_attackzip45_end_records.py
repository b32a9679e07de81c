"""`pull --extract` of a zip whose end records say two things: its zip64 record (which
zip readers take where there is one) and its plain end record (what is left when the zip64
record cannot be read). The member list of a zip followed while it downloads was read
from the partial file as it was then: zipfile looks for the zip64 locator and record just
before the end record, and a 64 KiB comment puts them before the tail fetched first; the
streams had not brought them yet, zipfile read zeros there, took the plain end record, and
the pull staged the member list of the bytes it had not read (attackzip45). The tail
fetched first now holds all that zipfile reads of the end records, and the list is read
only from bytes that have arrived (zip_directory's ``wait``: a zip reader that looks
elsewhere, e.g. where the zip64 locator points, waits for those bytes)."""
from __future__ import annotations

import io
import struct
import threading
import zipfile
import zlib

import os

import pytest

from drivestage import download
from drivestage.errors import ArchiveError
from drivestage.extract import job as job_module
from drivestage.extract.members import zip_directory

from _archives import tree
from _cli import run
from _signal_env import _fast  # noqa: F401  (an autouse fixture)

_TAIL = 64 << 10   # the tail of a small zip fetched first, before (unpack._TAIL_MIN)


def _two_faced_zip() -> bytes:
    """A zip whose zip64 end records list ``b.txt`` and whose plain end record lists no
    member, its comment long enough that the end record opens the 64 KiB tail and the
    zip64 locator and record lie just before it."""
    name, data = b"b.txt", b"B"
    crc = zlib.crc32(data)
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, crc, 1, 1,
                        len(name), 0) + name + data
    central = struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, crc, 1, 1,
                          len(name), 0, 0, 0, 0, 0, 0) + name
    cd_at = len(local)
    z64_at = cd_at + len(central)
    z64 = struct.pack("<4sQ2H2I4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 1, 1, len(central),
                      cd_at)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, z64_at, 1)
    end_at = z64_at + len(z64) + len(locator)
    comment = 65510   # the end record lands 4 bytes into the tail; the locator before it
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 0, 0, 0, end_at, comment)
    blob = local + central + z64 + locator + end + b"x" * comment
    tail = len(blob) - _TAIL
    assert end_at >= tail > end_at - 16   # (the locator's signature outside the tail)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:   # what zip readers make of it whole
        assert [(i.filename, zf.read(i)) for i in zf.infolist()] == [("b.txt", b"B")]
    return blob


def test_a_zips_member_list_is_read_from_arrived_bytes_only(emulator, drive_env, tmp_path,
                                                            monkeypatch):
    blob = _two_faced_zip()
    emulator.add_file("d/two.zip", blob)
    # The streams' bytes stop at byte 0 (the tail is fetched whole); they go on once the
    # follower has read its member list (Job.check) or waits for bytes (Download.wait_for).
    hold = emulator.faults.hold(emulator.find("d/two.zip")["id"], 0, timeout=60)
    asked = threading.Event()
    real_check, real_wait = job_module.Job.check, download.Download.wait_for

    def check(self, entries):
        asked.set()
        return real_check(self, entries)

    def wait_for(self, *args, **kwargs):
        asked.set()
        return real_wait(self, *args, **kwargs)

    monkeypatch.setattr(job_module.Job, "check", check)
    monkeypatch.setattr(download.Download, "wait_for", wait_for)

    heard: list[bool] = []

    def release() -> None:
        if hold.reached.wait(30):
            heard.append(asked.wait(30))   # (ran out: let go anyway, the test 30 s late)
        hold.release()

    releaser = threading.Thread(target=release, daemon=True)
    releaser.start()
    try:
        code, out, err = run("pull", "drive:d/two.zip", str(tmp_path / "data"), "-x", "-q")
    finally:
        hold.release()
        releaser.join(30)
    assert code == 0, err
    assert hold.reached.is_set()   # (the test's premise: the front was held)
    assert heard == [True], "the follower neither read its member list nor waited for bytes"
    # What the verified archive holds, as the usual extraction reads it; before: only
    # two.zip, the pull "staged" with no member, and its reruns "already staged".
    assert tree(tmp_path / "data") == {"two.zip": blob, "b.txt": b"B"}


def test_the_member_list_waits_for_every_byte_zipfile_reads(tmp_path):
    """Every byte zipfile reads of a partial is waited for first: bytes that "arrive" only
    when waited for (zeros until then) give the member list of the whole zip; zipfile's own
    reads (the directory, the zip64 records) are not all in the end that the cap looks at."""
    blob = _two_faced_zip()
    part = tmp_path / "two.zip.partial"
    part.write_bytes(bytes(len(blob)))
    fd = os.open(part, os.O_RDWR)

    def arrive(start: int, end: int) -> None:
        os.pwrite(fd, blob[start:end], start)

    try:
        got = zip_directory(str(part), fd, wait=arrive)
        assert [(e.path, e.size) for e in got] == [("b.txt", 1)]
        part.write_bytes(bytes(len(blob)))
        with pytest.raises(ArchiveError):   # (the guard: zeros are no zip)
            zip_directory(str(part), fd)

        def stopped(start: int, end: int) -> None:
            raise ArchiveError("the download of two.zip stopped")

        with pytest.raises(ArchiveError, match="stopped"):   # (the follower's wait's)
            zip_directory(str(part), fd, wait=stopped)
    finally:
        os.close(fd)
