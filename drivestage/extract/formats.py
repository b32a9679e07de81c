"""Archive formats: which files are zips or tars (by content), and how a tar is compressed."""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zipfile
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


def looks_like_tar_header(block: bytes) -> bool:
    """True for a ustar/gnu/v7 header block (checksum valid) or an all-zero end block."""
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    if not block.strip(b"\0"):
        return True  # an empty tar is two zero blocks
    field = block[148:156].split(b"\0", 1)[0].strip()
    try:
        stored = int(field or b"x", 8)
    except ValueError:
        return False
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return stored == computed


def compression(head: bytes) -> Optional[str]:
    """The compression of a tar stream by its magic bytes, or None."""
    if head[:2] == b"\x1f\x8b":
        return "gz"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return None


#: Names a folder pull treats as archives (a ``.pt`` checkpoint or a ``.docx`` is a zip too,
#: but not one to unpack).
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def archive_kind(path: PathLike) -> Optional[str]:
    """``"zip"``, ``"tar"`` (plain, gzip, bzip2 or xz) or None, by content, not by name."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    if head[:4] in ZIP_MAGICS:
        return "zip"
    opener = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open, None: None}[compression(head)]
    if opener is not None:
        try:
            with opener(path, "rb") as f:
                head = f.read(512)
        except (OSError, EOFError, lzma.LZMAError):
            return None
    if looks_like_tar_header(head):
        return "tar"
    if opener is None and zipfile.is_zipfile(path):
        return "zip"  # e.g. a self-extracting zip: data before the first member
    return None
