"""Small archives built in memory, and a folder read back as ``{relative path: bytes}``."""
from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile


def a_zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    """A zip of ``members`` (name -> bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def a_fixed_zip(members: dict[str, bytes], links: dict[str, str] = {}) -> bytes:
    """A zip of ``members`` whose bytes are the same for the same members (fixed member
    times), and symlinks ``links`` (name -> target): versions of an archive to update."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6)), data)
        for name, target in links.items():
            info = zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6))
            info.create_system = 3
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, target)
    return buf.getvalue()


def a_tar(members: dict[str, bytes]) -> bytes:
    """An uncompressed tar of ``members`` (name -> bytes), regular files only."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def a_tgz(members: dict[str, bytes]) -> bytes:
    """A tar.gz of ``members`` (name -> bytes), regular files only; the same bytes for the
    same members (gzip's header time is 0: a test that builds the archive twice compares
    equal bytes whatever second the clock is in)."""
    return gzip.compress(a_tar(members), compresslevel=1, mtime=0)


class Zeros(io.RawIOBase):
    """``size`` zero bytes read as a stream (a bomb's member, never held in memory)."""

    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        n = min(len(buf), self.left)
        buf[:n] = bytes(n)
        self.left -= n
        return n


def tree(root) -> dict[str, bytes]:
    """Every file below ``root`` but drivestage's state folder, by relative path."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".drivestage"]
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = fh.read()
    return out
