"""Tar headers that still got past the bounds of ``extract/tarinfo.py`` (attackds32).

- A pax sparse member of format 0.0 or 0.1 keeps a map that ``tarfile`` reads from its pax
  header, not from its data: those maps were not counted against the archive's bound on
  sparse entries. A 1 MiB ``GNU.sparse.map`` of ``0,1,0,1,…`` is a KB of tar.gz and 19 MB of
  tuples kept per member (20 members: 21 KB of tar.gz, 400 MB while listed; a thousand, an
  out-of-memory kill).
- A pax header of many runs of digits, each within the bound of 1,024: old Pythons'
  tarfile searches it in time in the square of each run (CVE-2024-6232), and so did the
  bound's own check; a MiB of runs of 1,024 took 5 s a member (2 KB of tar.gz each).
- A size below zero (base-256 numbers have a sign): a GNU long-name header's, in a tar.gz,
  ended the pull with a TypeError's traceback; a member's, in a plain tar, moved the next
  header back and took its size off the total the free-space check weighs (a 10 MB member
  and one of -10 MB weighed nothing), then the pull extracted what it could, exit 0.
- Extended headers in a row before a member are read by ``tarfile`` one call deeper each: a
  few hundred tiny pax headers (4 KB of tar.gz) ended the pull with a RecursionError's
  traceback.

Each is now the usual one line, exit 1, nothing extracted.
"""
from __future__ import annotations

import gzip
import tarfile

import pytest

import _cli
from _archives import tree
from _messages import error_line


def _record(key: bytes, value: bytes) -> bytes:
    """One pax record, ``"<length> key=value\\n"``, its length counting itself."""
    body = b" %s=%s\n" % (key, value)
    n = len(body) + 1
    while len(b"%d" % n) + len(body) != n:
        n += 1
    return b"%d%s" % (n, body)


def _pax(records: bytes, kind: bytes = tarfile.XHDTYPE) -> bytes:
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = kind, len(records)
    return info.tobuf(format=tarfile.USTAR_FORMAT) + records.ljust(-(-len(records) // 512) * 512,
                                                                  b"\0")


def _file(name: str, data: bytes = b"ok") -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info.tobuf(format=tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512)


def _sparse_01(members: int, pairs: int) -> bytes:
    """Members each with a pax 0.1 sparse map of ``pairs`` runs."""
    records = _record(b"GNU.sparse.map", b",".join([b"0,1"] * pairs)) + \
        _record(b"GNU.sparse.size", b"1")
    return b"".join(_pax(records) + _file(f"s{i}.bin", b"\0") for i in range(members))


def _sparse_00(members: int, pairs: int) -> bytes:
    """Members each with a pax 0.0 sparse map of ``pairs`` runs."""
    records = _record(b"GNU.sparse.size", b"1") + \
        (_record(b"GNU.sparse.offset", b"0") + _record(b"GNU.sparse.numbytes", b"1")) * pairs
    return b"".join(_pax(records) + _file(f"s{i}.bin", b"\0") for i in range(members))


BOMBS = {
    "sparse-0.1": (lambda: _sparse_01(2, 6000),
                   "its sparse members' maps hold more than 10,000 entries, more than "
                   "drivestage reads"),
    "sparse-0.0": (lambda: _sparse_00(2, 6000),
                   "its sparse members' maps hold more than 10,000 entries, more than "
                   "drivestage reads"),
    "digit-runs": (lambda: _pax(b"\n".join([b"7" * 1024] * 100)),
                   "a pax header holds more long runs of digits than any tar writes"),
    "header-chain": (lambda: _pax(_record(b"comment", b"c")) * 400,
                     "more than 16 pax or GNU long-name headers in a row before a member, "
                     "which no tar writes"),
}


def _negative(n: int) -> bytes:
    """A 12-byte size field of ``-n`` (base-256, as GNU tar writes huge numbers)."""
    return b"\xff" + ((256 ** 11) - n).to_bytes(11, "big")


def _raw_header(name: bytes, kind: bytes, size_field: bytes) -> bytes:
    info = tarfile.TarInfo(name.decode())
    info.type = kind
    blk = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    blk[124:136] = size_field
    blk[148:156] = b" " * 8
    blk[148:156] = b"%06o\0 " % sum(blk)
    return bytes(blk)


NEGATIVE = {
    "long-name.tgz": (lambda: _raw_header(b"././@LongLink", b"L", _negative(1024)) + bytes(4096)
                      + _file("a.txt") + bytes(1024), "set.tgz", True),
    "member.tar": (lambda: _file("big.bin", bytes(100_000)) + _raw_header(
        b"n.txt", b"0", _negative(100_352)) + _file("a.txt") + bytes(1024), "set.tar", False),
}


@pytest.mark.parametrize("case", list(NEGATIVE))
def test_a_size_below_zero_is_refused(emulator, local_state, drive_env, fast_retries,
                                      tmp_path, case):
    make, name, packed = NEGATIVE[case]
    data = gzip.compress(make(), mtime=0) if packed else make()
    emulator.add_file(f"d/{name}", data)
    dest = tmp_path / "d"

    code, out, err = _cli.run("pull", f"drive:d/{name}", str(dest), "-x", "-q")

    assert code == 1, err
    assert error_line(err) == (
        f"Error: cannot read the tar {dest / name}: a header declares a size of -"
        f"{1024 if packed else 100_352:,} bytes, which no tar writes; it is probably truncated "
        "or corrupt: make the archive again and upload it")
    assert tree(dest) == {name: data}


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_a_tar_header_past_the_earlier_bounds_is_refused(
        emulator, local_state, drive_env, fast_retries, tmp_path, monkeypatch, bomb):
    from drivestage.extract import tarinfo

    monkeypatch.setattr(tarinfo, "MAX_SPARSE", 10_000)  # 1,000,000 takes seconds to reach
    make, why = BOMBS[bomb]
    data = gzip.compress(make() + _file("a.txt") + bytes(1024), compresslevel=1, mtime=0)
    emulator.add_file("d/set.tgz", data)
    dest = tmp_path / "d"

    code, out, err = _cli.run("pull", "drive:d/set.tgz", str(dest), "-x", "-q")

    assert code == 1, err
    assert error_line(err) == (f"Error: cannot read the tar {dest / 'set.tgz'}: {why}; it is "
                               "probably truncated or corrupt: make the archive again and "
                               "upload it")
    assert tree(dest) == {"set.tgz": data}   # downloaded and verified; nothing extracted


def test_a_few_extended_headers_in_a_row_are_read_as_before(tmp_path):
    """GNU tar's deepest: a global header, a member's pax header, a long name and link."""
    from drivestage.extract import extract_archive

    link = tarfile.TarInfo("d" * 200 + "/" + "l" * 80)
    link.type, link.linkname = tarfile.SYMTYPE, "../" + "d" * 200 + "/f.txt"
    deep = tarfile.TarInfo("d" * 200 + "/f.txt")
    deep.size = 4
    raw = (deep.tobuf(format=tarfile.GNU_FORMAT) + b"deep".ljust(512, b"\0") + _pax(_record(b"comment", b"global"), tarfile.XGLTYPE) + _pax(_record(b"mtime", b"7"))
           + link.tobuf(format=tarfile.GNU_FORMAT) + _file("a.txt") + bytes(1024))
    archive = tmp_path / "s.tar.gz"
    archive.write_bytes(gzip.compress(raw, mtime=0))
    dest = tmp_path / "dest"
    dest.mkdir()

    extract_archive(str(archive), str(dest))

    assert tree(dest) == {"a.txt": b"ok", "d" * 200 + "/f.txt": b"deep",
                          "d" * 200 + "/" + "l" * 80: b"deep"}
    assert (dest / ("d" * 200) / ("l" * 80)).is_symlink()
