"""A file that keeps changing while a push uploads it (``tee logs/train.log``, a log appended
to at every step): sent as it was at one moment, from a private copy, md5-verified.

The upload itself sends a file that changed while it was sent again, three times, then gives
up (:class:`~drivestage.errors.SourceChangedError`). A log appended to faster than it can be
uploaded never got there: every period of a mirror sent it three times, failed, and ran no
retention. Only files that may be copied so get a copy (not a checkpoint: a copy of one
half-written is no checkpoint; the caller decides), up to :data:`MAX_BYTES`.

A mirror remembers (``changing``, kept by its :class:`~drivestage.state.Md5Cache` for as long
as it lives) the paths that needed a copy, and sends them from one at once the next periods:
each period spent three uploads of such a log in vain before its copy. The copy is made in
chunks of :data:`CHUNK` bytes: reading the log whole held up to 64 MiB in memory each period.
"""
from __future__ import annotations

import logging
import os
from functools import partial
from typing import BinaryIO, Callable, Optional

from drivestage import sidecar_copy, sources
from drivestage.errors import SourceChangedError
from drivestage.store import RemoteEntry

log = logging.getLogger(__name__)

#: The largest file sent from a copy.
MAX_BYTES = 64 << 20
#: Bytes copied at a time (the memory a copy takes, whatever the file's size).
CHUNK = 1 << 20


class _TooLarge(Exception):
    """The file grew past :data:`MAX_BYTES` while it was copied (the copy is removed)."""


def upload(send: Callable[[str], Optional[RemoteEntry]], path: str, *, copy: bool,
           changing: Optional[set[str]] = None, follow: bool = False,
           real: str = "") -> Optional[RemoteEntry]:
    """``send(path)``; when ``path`` kept changing while it was sent and ``copy`` allows it,
    ``send`` of a private copy of its bytes as they are now (removed afterwards).
    ``changing``: the paths (absolute) that needed a copy before: one in it is sent from a
    copy at once; one that needs a copy now is added. ``follow``: a link at ``path`` is read
    through (one the push's walk let through); else a copy of one is refused as the upload
    refuses it (:func:`drivestage.special_files.open_sent`). ``real``: where the push's walk
    found it, the only place a copy reads it from."""
    key = os.path.abspath(path)
    # (the copy opens it as the push found it: through a link only where ``follow``, in
    # the folder the walk found, pushlefts47)
    as_found = (follow, os.path.dirname(real) if real else sources.found(path)[1])
    if copy and changing is not None and key in changing:
        try:
            return _from_copy(send, path, as_found, known=True)
        except _TooLarge:
            changing.discard(key)  # too large for a copy now: sent as any such file
    try:
        return send(path)
    except SourceChangedError as exc:
        if not copy:
            raise
        changed = exc
    try:
        entry = _from_copy(send, path, as_found, known=False)
    except _TooLarge:
        raise changed from None
    if changing is not None:
        changing.add(key)
    return entry


def _from_copy(send: Callable[[str], Optional[RemoteEntry]], path: str,
               as_found: tuple[bool, str], *, known: bool) -> Optional[RemoteEntry]:
    """``send`` of a private copy of ``path`` as it is now; :class:`_TooLarge` when it holds
    more than :data:`MAX_BYTES`."""
    # (A regular file only, opened without waiting: a FIFO there now held the push for good;
    # through no link planted since the walk, at its name (pushfollow46) or on its folder's
    # way (attack46): the copy sent the file outside SRC it led to.)
    with sources.open_file(path, *as_found) as src, \
            sidecar_copy.private(path, partial(_copy, src)) as private:
        size = os.path.getsize(private)
        if known:  # said once, when it first needed a copy
            log.info("%s changed while it was uploaded before; sending it from a copy "
                     "(%d bytes)", path, size)
        else:
            log.warning("%s kept changing while it was uploaded; sending it as it is now "
                        "(%d bytes)", path, size)
        return send(private)


def _copy(src: BinaryIO, dst: BinaryIO) -> None:
    """``src`` from its start into ``dst``, :data:`CHUNK` bytes at a time, at most
    :data:`MAX_BYTES`. From its start: a copy the temporary folder had no room for is made
    again in memory (:mod:`drivestage.sidecar_copy`), and from where the first stopped, the
    log went to Drive without its first megabyte (attacknew33)."""
    src.seek(0)
    copied = 0
    while chunk := src.read(CHUNK):
        copied += len(chunk)
        if copied > MAX_BYTES:
            raise _TooLarge(src.name)
        dst.write(chunk)
