"""Small local-file helpers shared by the stores, the uploader and the state files."""
from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Optional

MiB = 1 << 20


def file_md5(path: str, block: int = 4 * MiB) -> str:
    """Hex md5 of a local file, streamed in ``block``-sized reads."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while True:
            buf = fh.read(block)
            if not buf:
                return h.hexdigest()
            h.update(buf)


def atomic_write(path: str, data: bytes, *, mode: Optional[int] = None) -> None:
    """Write ``data`` to ``path`` through a hidden temporary file in the same folder.

    Readers (and ``push``, which skips hidden ``.*.tmp`` files) never see a half-written
    file under the final name. ``mode`` sets the permissions before the rename (mkstemp
    creates files 0600)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
