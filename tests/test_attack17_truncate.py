"""Another program truncates a download's partial file while it downloads, after the hash
has passed some of its bytes. The streams keep writing further on, which makes the file
long again with a hole (zeros) where the truncated bytes were; the hash had seen the real
bytes, so size and checksum match Drive's. What a user relies on: a file staged as verified
holds Drive's bytes. The pull fails with one line naming the file and saying another
program changed it, stages nothing under the final name (no archive, no member), deletes the
download (its record named bytes that are gone), and the next pull stages the right bytes.

Each truncation lands at the moment named, from a hook on the pass's write (the hash has
hashed every byte before that block) or on its wait for the hash (every byte written and
hashed, the rename next)."""
from __future__ import annotations

import os

import pytest
from _archives import a_tar, a_zip, tree

from _cli import run
from _signal_env import _fast  # noqa: F401  (an autouse fixture)
from drivestage import download as dl
from drivestage import streams
from drivestage.drive import connect

MiB = 1 << 20


def _truncate_past(monkeypatch, at: int, to: int) -> list[int]:
    """Truncate the partial to ``to`` bytes once, as the stream's first block at or past
    byte ``at`` arrives, after the hash has hashed every byte before it (one stream: they
    are all written). Returns the offsets truncated at (one, once it happened)."""
    original = streams.Pass.write
    did: list[int] = []

    def write(self, piece, offset, data):
        if not piece.urgent and offset >= at and not did:
            with self.lock:
                assert self.lock.wait_for(lambda: self.hashed >= offset or self.stopped, 10)
            os.truncate(self.dl.partial, to)
            did.append(offset)
        return original(self, piece, offset, data)

    monkeypatch.setattr(streams.Pass, "write", write)
    return did


def _truncate_at_the_end(monkeypatch, to: int) -> list[int]:
    """Truncate the partial to ``to`` bytes once every byte is written and hashed."""
    original = streams.Pass._wait_for_hash
    did: list[int] = []

    def wait(self):
        original(self)
        if not did:
            os.truncate(self.dl.partial, to)
            did.append(to)

    monkeypatch.setattr(streams.Pass, "_wait_for_hash", wait)
    return did


def _failed_clearly(code: int, err: str, name: str) -> None:
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ") and name in lines[0], err
    assert "changed on disk while it downloaded" in lines[0], err
    assert "another program" in lines[0], err


def _leftovers(dest) -> list[str]:
    """What DEST holds besides drivestage's own folder."""
    return sorted(p for p in os.listdir(dest) if p != ".drivestage")


@pytest.mark.parametrize("to", [0, MiB, 3 * MiB + 5], ids=["to-0", "to-1MiB", "to-3MiB"])
def test_a_partial_truncated_behind_the_hash_is_never_staged(emulator, drive_env, tmp_path,
                                                             monkeypatch, to):
    """Truncated to ``to`` bytes once the hash has passed byte 3 MiB + 64 KiB."""
    data = os.urandom(6 * MiB)
    emulator.add_file("d/w.bin", data)
    dest = tmp_path / "data"
    did = _truncate_past(monkeypatch, 3 * MiB + (64 << 10), to)
    code, _, err = run("pull", "drive:d/w.bin", str(dest), "-j", "1", "-q")
    assert did, "the truncation never happened"
    _failed_clearly(code, err, "w.bin")
    assert _leftovers(dest) == []  # no file under the final name, no partial, no record
    code, _, err = run("pull", "drive:d/w.bin", str(dest), "-j", "1", "-q")
    assert code == 0, err
    assert (dest / "w.bin").read_bytes() == data


def test_a_partial_truncated_after_its_last_byte_is_never_staged(emulator, drive_env,
                                                                 tmp_path, monkeypatch):
    """Every byte written and hashed, then the file cut short before its rename: no hole,
    only the size tells."""
    data = os.urandom(2 * MiB)
    emulator.add_file("d/e.bin", data)
    dest = tmp_path / "data"
    did = _truncate_at_the_end(monkeypatch, MiB)
    code, _, err = run("pull", "drive:d/e.bin", str(dest), "-q")
    assert did
    _failed_clearly(code, err, "e.bin")
    assert _leftovers(dest) == []


MEMBERS = {f"ds/part{i}.bin": os.urandom(512 << 10) for i in range(12)}


@pytest.mark.parametrize("name, build", [("set.zip", a_zip), ("set.tar", a_tar)])
def test_an_archive_truncated_while_it_is_extracted_is_never_staged(
        emulator, drive_env, tmp_path, monkeypatch, name, build):
    """``pull --extract`` follows the archive while it downloads (members are written from
    the partial as their bytes arrive): a truncation behind the hash leaves neither the
    archive nor any member in DEST, nor the temporary folder; the next pull extracts
    Drive's members."""
    blob = build(MEMBERS)
    emulator.add_file(f"d/{name}", blob)
    dest = tmp_path / "data"
    did = _truncate_past(monkeypatch, 4 * MiB, MiB)
    code, _, err = run("pull", f"drive:d/{name}", str(dest), "-x", "-j", "1", "-q")
    assert did, "the truncation never happened"
    _failed_clearly(code, err, name)
    assert _leftovers(dest) == []
    code, _, err = run("pull", f"drive:d/{name}", str(dest), "-x", "-j", "1", "-q")
    assert code == 0, err
    assert tree(dest) == {name: blob, **MEMBERS}


def _rehashes(monkeypatch) -> list[int]:
    """The sizes the partial was hashed again from disk at (the rare path)."""
    original = streams.Pass._digest_on_disk
    calls: list[int] = []

    def digest_on_disk(self, size):
        calls.append(size)
        return original(self, size)

    monkeypatch.setattr(streams.Pass, "_digest_on_disk", digest_on_disk)
    return calls


def test_a_hole_with_the_right_bytes_is_staged(emulator, drive_env, tmp_path, monkeypatch):
    """A file system that stores written zero blocks as holes (ZFS with compression) is no
    truncation: the file is hashed again from disk, and staged when that matches. Here a
    file whose middle is 1 MiB of zeros, written by a download into a partial that a hole
    covers there (made so beforehand: a partial of a failed run with a record of it)."""
    data = os.urandom(MiB) + bytes(2 * MiB) + os.urandom(MiB)
    emulator.add_file("d/z.bin", data)
    entry = connect().resolve("d/z.bin")
    dest = tmp_path / "data"
    dest.mkdir()
    partial = dl.partial_path(str(dest / "z.bin"), entry)
    with open(partial, "wb") as fh:  # bytes [0, 3 MiB): the zeros as a hole, as ZFS has them
        fh.write(data[:MiB])
        fh.truncate(3 * MiB)
    with open(dl.ranges_path(partial), "w") as fh:
        fh.write(f'{{"size": {len(data)}, "done": [[0, {3 * MiB}]]}}')
    rehashed = _rehashes(monkeypatch)
    code, _, err = run("pull", "drive:d/z.bin", str(dest), "-q")
    assert code == 0, err
    assert (dest / "z.bin").read_bytes() == data
    assert rehashed == [len(data)]  # ext4, xfs, btrfs, tmpfs report the hole


def test_a_download_without_holes_is_not_hashed_again(emulator, drive_env, tmp_path,
                                                       monkeypatch):
    """The usual path costs a fstat and a lseek, no second read of the file."""
    data = os.urandom(MiB) + bytes(MiB)  # written zeros are data, not a hole
    emulator.add_file("d/n.bin", data)
    rehashed = _rehashes(monkeypatch)
    code, _, err = run("pull", "drive:d/n.bin", str(tmp_path / "data"), "-j", "2", "-q")
    assert code == 0, err
    assert (tmp_path / "data" / "n.bin").read_bytes() == data
    assert rehashed == []
