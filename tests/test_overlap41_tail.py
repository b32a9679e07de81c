"""`pull --extract` of a zip: its extraction workers start before the zip's tail (the central
directory) is fetched, and a directory over the cap is never fetched ahead of the download
(the usual extraction after it refuses it, from the verified file). Whatever ends the
following early ends the workers and removes the temporary folder."""
from __future__ import annotations

import os
import struct

import pytest

from drivestage import download
from drivestage.extract import members, tempdir, workers

from _archives import a_zip, tree
from _cli import run
from _signal_env import _fast  # noqa: F401  (an autouse fixture)
from test_extract_workers import worker_pids


@pytest.fixture
def at_tail(monkeypatch):
    """Every zip is big here (workers._WORTH: one byte); a spy on the download's first
    ranged fetch (the zip's tail) records this process's workers alive and DEST's
    temporary folders as it is asked."""
    monkeypatch.setattr(workers, "_WORTH", 1)
    got: list[tuple[list[int], list[str]]] = []
    real = download.Download.fetch_first

    def fetch_first(self, start, end, *, begin=False):
        dest = os.path.dirname(self.target)
        got.append((worker_pids(os.getpid()), _left(dest)))
        return real(self, start, end, begin=begin)

    monkeypatch.setattr(download.Download, "fetch_first", fetch_first)
    return got


def _left(dest) -> list[str]:
    """What an extraction into ``dest`` left of its own: temporary folders."""
    return sorted(n for n in os.listdir(dest) if n.startswith((tempdir.TEMP_PREFIX,
                                                                tempdir.OLD_PREFIX)))


def _media(emulator, since: int) -> list:
    """The media (file byte) requests logged after the first ``since`` records."""
    return [r for r in emulator.requests[since:] if r.kind == "media.download"]


def test_the_workers_start_before_the_zips_tail_is_fetched(emulator, drive_env, tmp_path,
                                                           at_tail):
    files = {f"ds/f{i:03d}.bin": os.urandom(3000) for i in range(200)}
    blob = a_zip(files)
    emulator.add_file("d/set.zip", blob)
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:d/set.zip", str(dest), "-x", "-q")
    assert code == 0, err
    assert tree(dest) == {"set.zip": blob, **files}
    pids, temps = at_tail[0]          # the first fetch: the tail
    assert len(pids) == 2 and len(temps) == 1
    assert worker_pids(os.getpid()) == []
    assert _left(dest) == []


def test_a_file_named_zip_that_is_none_ends_the_workers_started_before_its_tail(
        emulator, drive_env, tmp_path, at_tail):
    blob = os.urandom(200_000)   # no end record: not followed, extracted (refused) after
    emulator.add_file("d/not.zip", blob)
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:d/not.zip", str(dest), "-x", "-q")
    assert code == 1
    assert err.splitlines()[-1] == (
        f"Error: --extract: drive:d/not.zip is not a zip or tar archive (downloaded to "
        f"{dest / 'not.zip'}); pull it without --extract")
    assert [len(p) for p, _ in at_tail[:1]] == [2]
    assert worker_pids(os.getpid()) == []
    assert _left(dest) == []
    assert tree(dest) == {"not.zip": blob}   # verified and staged; nothing extracted


def _claiming_directory_from_zero(files: dict[str, bytes]) -> bytes:
    """A zip whose end record says its central directory starts at byte 0 (its size: every
    byte before the record): a follower that trusted it fetched the whole file first."""
    blob = bytearray(a_zip(files))
    at = blob.rfind(b"PK\x05\x06")
    struct.pack_into("<II", blob, at + 12, at, 0)   # directory size, offset
    return bytes(blob)


def test_a_directory_over_the_cap_is_not_fetched_before_the_download(
        emulator, drive_env, tmp_path, at_tail, monkeypatch):
    monkeypatch.setattr(members, "MAX_ZIP_DIRECTORY", 1 << 20)
    files = {f"ds/f{i:02d}.bin": os.urandom(200_000) for i in range(40)}   # ~8 MB
    blob = _claiming_directory_from_zero(files)
    emulator.add_file("d/big.zip", blob)
    dest = tmp_path / "data"
    before = len(emulator.requests)
    chunk = 256 << 10
    code, out, err = run("pull", "drive:d/big.zip", str(dest), "-x", "-q",
                         "--chunk-size", "256KiB")
    assert code == 1
    assert err.splitlines()[-1] == (
        f"Error: {dest / 'big.zip'}: its central directory takes 7.6 MiB, more than the "
        "1.0 MiB drivestage reads (about a million members); split it into smaller archives")
    media = _media(emulator, before)
    # Every byte served once, each request at most a stream's piece: nothing fetched the
    # claimed directory (the whole file) in one request ahead of the streams.
    assert sum(r.bytes_out for r in media) == len(blob)
    assert max(r.bytes_out for r in media) <= chunk
    assert len(media) >= len(blob) // chunk
    assert len(at_tail) == 1            # the tail only
    assert [len(p) for p, _ in at_tail] == [2]
    assert worker_pids(os.getpid()) == []
    assert _left(dest) == []
    assert tree(dest) == {"big.zip": blob}


def test_a_directory_under_the_cap_is_still_fetched_first(emulator, drive_env, tmp_path,
                                                          at_tail):
    # The same shape of zip with the cap as it is: its claimed directory (the whole file)
    # is fetched before the streams reach it, as before; what the list then says decides.
    files = {f"ds/f{i:02d}.bin": os.urandom(200_000) for i in range(40)}
    blob = _claiming_directory_from_zero(files)
    emulator.add_file("d/big.zip", blob)
    dest = tmp_path / "data"
    code, out, err = run("pull", "drive:d/big.zip", str(dest), "-x", "-q",
                         "--chunk-size", "256KiB")
    assert len(at_tail) == 2            # the tail, then the rest of the claimed directory
    assert code == 1
    assert err.splitlines()[-1] == (
        f"Error: cannot read the zip {dest / 'big.zip'}: Bad magic number for central "
        "directory; it is probably truncated or corrupt: make the archive again and upload it")
    assert worker_pids(os.getpid()) == []
    assert _left(dest) == []
    assert tree(dest) == {"big.zip": blob}
