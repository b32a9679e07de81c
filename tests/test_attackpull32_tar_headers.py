"""Tar headers that make ``tarfile`` take memory or time without bound (attackpull32).

``tarfile`` reads a pax or GNU long-name header whole, as large as it declares: a tar.gz
of 2.3 MB declaring 512 MiB of zeros as one header took 1 GiB of memory while drivestage
read its member list (8 GiB declared, in a tar.xz of about a megabyte, is an out-of-memory
kill of a Colab notebook), and the pull then extracted what followed, exit 0. A GNU sparse
member's map grew by 21 entries per 512 bytes of a tar.gz that compresses them a thousand
times. On the Pythons before 3.11.10 / 3.12.6 a pax header of digits took time in their
square (CVE-2024-6232: 64 KiB, 9 s here; 1 MiB, most of an hour). Each is now one line,
exit 1, before anything is extracted; real archives with long names and sparse members
(GNU and pax formats) extract as before.
"""
from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import tarfile

import pytest

import _cli
from _archives import tree
from _messages import error_line

from drivestage.extract import extract_archive


def _header(name: bytes, kind: bytes, size: int, extra: dict[int, bytes] = {}) -> bytes:
    """One raw 512-byte tar header (GNU magic), its checksum computed."""
    blk = bytearray(512)
    blk[0:len(name)] = name
    blk[100:108] = b"0000644\0"
    blk[124:136] = b"%011o\0" % size
    blk[136:148] = b"00000000000\0"
    blk[156:157] = kind
    blk[257:265] = b"ustar  \0"
    for at, data in extra.items():
        blk[at:at + len(data)] = data
    blk[148:156] = b" " * 8
    blk[148:156] = b"%06o\0 " % sum(blk)
    return bytes(blk)


def _pax(kind: bytes, records: bytes) -> bytes:
    """A pax header (``x``: the next member's, ``g``: global) holding ``records``."""
    return _header(b"././@PaxHeader", kind, len(records)) + records.ljust(
        -(-len(records) // 512) * 512, b"\0")


def _then_a_file() -> bytes:
    info = tarfile.TarInfo("a.txt")
    info.size = 2
    return info.tobuf(format=tarfile.GNU_FORMAT) + b"ok".ljust(512, b"\0") + bytes(1024)


def _sparse_chain(blocks: int) -> bytes:
    """An old GNU sparse member whose map goes on for ``blocks`` extension blocks of 21
    entries each (all alike: a tar.gz holds them in a few bytes each)."""
    entry = b"%011o\0%011o\0" % (1, 1)
    head = _header(b"s.bin", b"S", 0, {386: entry * 4, 482: b"\1", 483: b"%011o\0" % 2})
    ext = (entry * 21).ljust(504, b"\0") + b"\1".ljust(8, b"\0")
    return head + ext * blocks


BOMBS = {
    "pax-size": (lambda: _header(b"././@PaxHeader", b"x", 8 << 20) + bytes(8 << 20),
                 "a pax header declares 8,388,608 bytes, more than the 1,048,576 drivestage "
                 "reads (a member's names and attributes take a few KB)"),
    "long-name": (lambda: _header(b"././@LongLink", b"L", 8 << 20) + bytes(8 << 20),
                  "a GNU long-name header declares 8,388,608 bytes, more than the 1,048,576 "
                  "drivestage reads (a member's names and attributes take a few KB)"),
    "pax-digits": (lambda: _header(b"././@PaxHeader", b"x", 64 << 10) + b"7" * (64 << 10),
                   "a pax header holds a run of more than 1024 digits, which no tar writes"),
    "pax-keywords": (lambda: _pax(b"g", b"".join(b"%d k%05d=1\n" % (len(b"k%05d=1\n" % i) + 3, i)
                                                for i in range(2000))),
                     "its pax headers hold more than 1024 keywords for one member, which no "
                     "tar writes"),
    "sparse-map": (lambda: _sparse_chain(600),   # (the bound made 10,000 below)
                   "its sparse members' maps hold more than 10,000 entries, more than "
                   "drivestage reads"),
}


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_a_tar_header_that_would_take_memory_or_time_without_bound_is_refused(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch, bomb):
    from drivestage.extract import tarinfo

    monkeypatch.setattr(tarinfo, "MAX_SPARSE", 10_000)  # 1,000,000 takes seconds to reach
    make, why = BOMBS[bomb]
    data = gzip.compress(make() + _then_a_file(), compresslevel=1, mtime=0)
    emulator.add_file("d/set.tgz", data)
    dest = tmp_path / "d"

    code, out, err = _cli.run("pull", "drive:d/set.tgz", str(dest), "-x", "-q")

    assert code == 1, err
    assert error_line(err) == (f"Error: cannot read the tar {dest / 'set.tgz'}: {why}; it is "
                               "probably truncated or corrupt: make the archive again and "
                               "upload it")
    assert tree(dest) == {"set.tgz": data}   # downloaded and verified; nothing extracted


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
@pytest.mark.parametrize("form", [["--format=gnu"], ["--format=pax", "--sparse-version=0.1"],
                                  ["--format=pax", "--sparse-version=1.0"]],
                         ids=["gnu", "pax-0.1", "pax-1.0"])
def test_sparse_members_and_long_names_of_real_tars_extract_as_before(tmp_path, form):
    src = tmp_path / "src"
    deep = src / ("d" * 200) / ("é" * 120)
    deep.mkdir(parents=True)
    (deep / "long.txt").write_bytes(b"long")
    with open(src / "holes.bin", "wb") as f:  # 40 data runs: extension blocks in GNU form
        for i in range(40):
            f.seek(i * 65536)
            f.write(b"run %d" % i)
    archive = tmp_path / "s.tgz"
    subprocess.run(["tar", "--sparse", *form, "-czf", str(archive), "-C", str(src), "."],
                   check=True)
    with tarfile.open(archive) as t:
        assert t.getmember("./holes.bin").issparse()
    dest = tmp_path / "dest"
    dest.mkdir()

    extract_archive(str(archive), str(dest))

    assert tree(dest) == tree(src)
