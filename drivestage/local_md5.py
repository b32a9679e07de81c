"""The md5s a directory store knows of its files (:class:`MemoryMd5Cache`), by path and
:func:`~drivestage.localfs.identity` (split from :mod:`drivestage.localdir` at its cap)."""
from __future__ import annotations

import os
import threading
from typing import Optional

from drivestage.localfs import identity
from drivestage.state import settled


class MemoryMd5Cache:
    """md5 by absolute path, valid while the file's :func:`identity` is unchanged. It was
    (size, mtime, inode): a same-size rewrite with the mtime put back kept the old md5."""

    def __init__(self) -> None:
        #: path: (identity, md5, whether the md5 is :func:`settled` for it)
        self._data: dict[str, tuple[tuple[int, ...], str, bool]] = {}
        self._lock = threading.Lock()

    def get(self, path: str, st: Optional[os.stat_result] = None, *,
            settled_only: bool = False) -> Optional[str]:
        st = st or os.stat(path)
        with self._lock:
            rec = self._data.get(os.path.abspath(path))
        if rec is None or rec[0] != identity(st) or (settled_only and not rec[2]):
            return None
        return rec[1]

    def put(self, path: str, st: os.stat_result, md5: str, *,
            is_settled: bool = False, began_ns: Optional[int] = None) -> None:
        # ``began_ns`` (an :class:`~drivestage.store.Md5Source`'s: when the hash began)
        # says whether it is settled, where the caller did not.
        is_settled = is_settled or (began_ns is not None and settled(st, began_ns))
        self.put_identity(path, identity(st), md5, is_settled=is_settled)

    def put_identity(self, path: str, ident: tuple[int, ...], md5: str, *,
                     is_settled: bool = False) -> None:
        with self._lock:
            self._data[os.path.abspath(path)] = (ident, md5, is_settled)
