"""A zip's end records, read before ``zipfile`` reads anything: the size its central
directory declares (held to ``members.MAX_ZIP_DIRECTORY`` before ``zipfile`` reads it
whole), and where that directory starts (what a download fetches first)."""
from __future__ import annotations

import struct
from typing import Optional

#: The end of a zip that holds its end records: the comment (up to 64 KiB), the end of
#: central directory record (22 bytes), the zip64 locator (20) and zip64 record (56).
EOCD_TAIL = (1 << 16) + 22 + 20 + 56


def _end_records(tail: bytes) -> list[int]:
    """Where an end-of-central-directory record may start in ``tail``: zipfile looks for one
    without a comment in the last 22 bytes first, then takes the last signature (whose
    record's own fields may hold the signature again)."""
    found = []
    if len(tail) >= 22 and tail[-22:-18] == b"PK\x05\x06" and tail[-2:] == b"\0\0":
        found.append(len(tail) - 22)
    at = tail.rfind(b"PK\x05\x06")
    if at >= 0 and len(tail) - at >= 22 and at not in found:
        found.append(at)
    return found


def _zip64_record(tail: bytes, at: int, size: int) -> list[int]:
    """Where the zip64 end record of the end record at ``at`` may be: right before its
    locator (where zipfile reads it) and where the locator points."""
    loc = at - 20
    if loc < 0 or tail[loc:loc + 4] != b"PK\x06\x07":
        return []
    (pointed,) = struct.unpack_from("<Q", tail, loc + 8)
    out = []
    for rec in (loc - 56, pointed - (size - len(tail))):
        if 0 <= rec <= len(tail) - 56 and tail[rec:rec + 4] == b"PK\x06\x06" and rec not in out:
            out.append(rec)
    return out


def _declared_directory_sizes(tail: bytes, size: int) -> list[int]:
    """Every central directory size the end records in ``tail`` declare (zip readers of
    different Python versions pick among them differently)."""
    sizes = []
    for at in _end_records(tail):
        wide = [struct.unpack_from("<Q", tail, rec + 40)[0]
                for rec in _zip64_record(tail, at, size)]
        (own,) = struct.unpack_from("<I", tail, at + 12)
        # 0xFFFFFFFF says "see the zip64 record" (Go's archive/zip writes it in every field
        # of a zip64 archive: refused as a 4 GiB directory, attackpull33); zipfile reads
        # the zip64 record's where there is one.
        if own != 0xFFFFFFFF or not wide:
            sizes.append(own)
        sizes += wide
    return sizes


def declared_directory_size(tail: bytes, size: int) -> int:
    """The largest central directory size the end records in ``tail`` (a zip's last bytes,
    ending at ``size``) declare: what ``members.check_zip_directory`` holds to the cap."""
    return max(_declared_directory_sizes(tail, size), default=0)


def zip_directory_start(tail: bytes, size: int) -> Optional[int]:
    """Where a zip's central directory starts, from the file's last bytes (``tail``, which
    end at ``size``); None when they hold no end-of-central-directory record. With zip64
    end records (a zip of more than 65,535 members has them even when the end record's own
    fields are exact), zip readers take the directory from those: the earliest start any
    of them gives, so that the bytes fetched from there hold the directory either way."""
    ends = _end_records(tail)
    if not ends:
        return None
    at = ends[0]
    cd_size, cd_offset = struct.unpack_from("<II", tail, at + 12)
    base = size - len(tail)
    starts = [base + rec - struct.unpack_from("<Q", tail, rec + 40)[0]
              for rec in _zip64_record(tail, at, size)]
    if cd_offset != 0xFFFFFFFF and cd_size != 0xFFFFFFFF:
        starts.append(base + at - cd_size)  # (data before the zip shifts all of them)
    valid = [s for s in starts if 0 <= s <= base + at]
    return min(valid) if valid else None
