"""Open the store a user-typed location refers to.

``drive:...`` opens Google Drive (:mod:`drivestage.drive`); anything else is a local
directory (a Colab Drive mount, a NAS) served by :class:`drivestage.localdir.LocalDirStore`.
"""
from __future__ import annotations

import os
from typing import Any, Optional

from drivestage import paths


def open_store(spec: str, *, api_root: Optional[str] = None,
               credentials: Optional[str] = None,
               token: Optional[str] = None) -> tuple[Any, str]:
    """``(store, store-relative path)`` for ``spec``.

    ``drive:a/b`` -> (My Drive, ``"a/b"``); ``drive:id:X`` -> (My Drive, ``"id:X"``);
    ``drive:shared/T/a`` -> (shared drive T, ``"a"``); ``/mnt/x/a`` -> (a directory store on
    ``/mnt/x``, ``"a"``). Connecting to Drive uses no network; the first call does.
    """
    if paths.is_drive(spec):
        from drivestage.drive.store import open_drive

        return open_drive(spec, api_root=api_root, credentials=credentials, token=token)
    from drivestage.localdir import LocalDirStore

    full = os.path.abspath(os.path.expanduser(os.fspath(spec)))
    parent, name = os.path.split(full)
    return LocalDirStore(parent), name
