"""Extended tar headers bounded in all, per archive, not only each (pullleft33).

``extract/tarinfo.py`` bounded each pax or GNU long-name header (1 MiB), the keywords of a
member and the headers in a row before one, but not their sum: a tar.gz of a few MB with a
near-1-MiB header before each of thousands of members held the CPU for minutes while its
member list was read, then extracted. What an archive's extended headers take to read is
now bounded by 64 MiB and 8 KiB for each member listed (real tars take a few hundred bytes
to a few KB a member): past it, one line naming the archive and what to do, exit 1 (the
refusal: tests/test_messages_pullleft33.py). The bounds are made small here, so that the
tests read a few MB at most.
"""
from __future__ import annotations

import gzip
import tarfile

import pytest

from _archives import tree


def _record(key: bytes, value: bytes) -> bytes:
    """One pax record, ``"<length> key=value\\n"``, its length counting itself."""
    body = b" %s=%s\n" % (key, value)
    n = len(body) + 1
    while len(b"%d" % n) + len(body) != n:
        n += 1
    return b"%d%s" % (n, body)


def _member(name: str, comment: int) -> bytes:
    """A pax header of one ``comment`` record of ``comment`` bytes in all, then a file."""
    records = _record(b"comment", b"c" * (comment - 16))
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type, pax.size = tarfile.XHDTYPE, len(records)
    info = tarfile.TarInfo(name)
    info.size = len(name)
    return (pax.tobuf(format=tarfile.USTAR_FORMAT) + records + bytes(-len(records) % 512)
            + info.tobuf(format=tarfile.USTAR_FORMAT) + name.encode().ljust(512, b"\0"))


def test_extended_headers_within_what_their_members_allow_are_read(tmp_path, monkeypatch):
    """Past the base, as long as each member brings no more than its share."""
    from drivestage.extract import extract_archive, tarinfo

    monkeypatch.setattr(tarinfo, "MAX_EXTENDED_BASE", 64 << 10, raising=False)
    monkeypatch.setattr(tarinfo, "MAX_EXTENDED_PER_MEMBER", 8 << 10, raising=False)
    names = [f"m{i:03d}.txt" for i in range(100)]     # 100 headers of 6 KiB: 600 KiB
    archive = tmp_path / "s.tgz"
    archive.write_bytes(gzip.compress(b"".join(_member(n, 6 << 10) for n in names)
                                      + bytes(1024), mtime=0))
    dest = tmp_path / "dest"
    dest.mkdir()

    extract_archive(str(archive), str(dest))

    assert tree(dest) == {n: n.encode() for n in names}
