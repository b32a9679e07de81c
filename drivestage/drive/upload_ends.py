"""What an upload (:mod:`drivestage.drive.upload`) opens and leaves behind: the local file it
reads, opened as the push found it (:func:`open_source`), and its remote copy read again or
removed (:func:`as_now`, :func:`delete_quietly`). Split from upload.py at its line cap."""
from __future__ import annotations

import errno
import logging
import os
from typing import BinaryIO, Optional

from drivestage import localfs, temps
from drivestage.errors import BecameOtherError, DriveStageError
from drivestage.store import RemoteEntry, RemoteStore

# (upload.py's name: its lines kept the logger they always had)
log = logging.getLogger("drivestage.drive.upload")


def open_source(path: str, follow: bool) -> BinaryIO:
    """``path`` opened for an upload, when it is a regular file: through a link only where
    ``follow`` (it was a link as the upload began, one the push's walk let through). A file
    sent again after it changed was opened by its name again: replaced meanwhile by a FIFO
    the push hung there for good, by a folder it stopped with a traceback, and by a link to
    ``/etc/passwd`` it sent that file (attackpush45). Those raise :class:`BecameOtherError`; a
    file gone, FileNotFoundError (the push skips it)."""
    try:
        fd = localfs.open_regular(path, follow=follow)
    except FileNotFoundError:
        raise
    except OSError as exc:
        what = ("a folder" if exc.errno == errno.EISDIR else
                "a link" if exc.errno == errno.ELOOP else
                "a FIFO, socket or device" if isinstance(exc, localfs.NotRegularFileError)
                else None)
        if what is None:
            raise
        raise BecameOtherError(temps.shown(path), what) from None
    return os.fdopen(fd, "rb")


def as_now(store: RemoteStore, entry: RemoteEntry) -> RemoteEntry:
    """``entry`` as a files.get shows it now (as answered, when that fails)."""
    try:
        return store.stat(entry)
    except DriveStageError as exc:
        log.info("could not read %s again (%s); going by the upload's answer", entry.name,
                 exc)
        return entry


def delete_quietly(store: RemoteStore, entry: Optional[RemoteEntry]) -> None:
    """Remove ``entry`` (a bad copy this upload made), a failure only said."""
    if entry is None:
        return
    try:
        store.delete(entry, trash=False)
    except Exception as exc:
        log.warning("could not remove %s (id %s): %s", entry.name, entry.id, exc)
