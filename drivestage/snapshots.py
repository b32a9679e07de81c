"""A file that keeps changing while a push uploads it (``tee logs/train.log``, a log appended
to at every step): sent as it was at one moment, from a private copy, md5-verified.

The upload itself sends a file that changed while it was sent again, three times, then gives
up (:class:`~drivestage.errors.SourceChangedError`). A log appended to faster than it can be
uploaded never got there: every period of a mirror sent it three times, failed, and ran no
retention. Only files that may be copied so get a copy (not a checkpoint: a copy of one
half-written is no checkpoint; the caller decides), up to :data:`MAX_BYTES`.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

from drivestage import sidecar_copy
from drivestage.errors import SourceChangedError
from drivestage.store import RemoteEntry

log = logging.getLogger(__name__)

#: The largest file sent from a copy (the copy is read into memory first).
MAX_BYTES = 64 << 20


def upload(send: Callable[[str], Optional[RemoteEntry]], path: str, *,
           copy: bool) -> Optional[RemoteEntry]:
    """``send(path)``; when ``path`` kept changing while it was sent and ``copy`` allows it,
    ``send`` of a private copy of its bytes as they are now (removed afterwards)."""
    try:
        return send(path)
    except SourceChangedError:
        data = _read(path) if copy else None
        if data is None:
            raise
    log.warning("%s kept changing while it was uploaded; sending it as it is now (%d bytes)",
                path, len(data))
    with sidecar_copy.private(path, data) as private:
        return send(private)


def _read(path: str) -> Optional[bytes]:
    """The bytes of ``path`` now, or None when it is larger than :data:`MAX_BYTES`."""
    with open(path, "rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    return data if len(data) <= MAX_BYTES else None
