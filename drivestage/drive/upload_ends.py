"""What an upload (:mod:`drivestage.drive.upload`) opens and leaves behind: the local file it
reads, opened as the push found it (:func:`open_source`), and its remote copy read again or
removed (:func:`as_now`, :func:`delete_quietly`). Split from upload.py at its line cap."""
from __future__ import annotations

import logging
import os
from typing import BinaryIO, Optional

from drivestage import special_files, temps
from drivestage.errors import BecameOtherError, DriveStageError
from drivestage.store import RemoteEntry, RemoteStore

# (upload.py's name: its lines kept the logger they always had)
log = logging.getLogger("drivestage.drive.upload")


def open_source(path: str, follow: bool, home: Optional[str] = None) -> BinaryIO:
    """``path`` opened for an upload, when it is a regular file: through a link only where
    ``follow`` (:func:`drivestage.special_files.open_sent`). A file sent again after it
    changed was opened by its name again: replaced meanwhile by a FIFO the push hung there
    for good, by a folder it stopped with a traceback, and by a link to ``/etc/passwd`` it
    sent that file (attackpush45). Those raise :class:`BecameOtherError`; a file gone,
    FileNotFoundError (the push skips it). ``home``: where its folder led as the upload
    began; a folder on the way swapped for a link since (to a folder outside SRC) raises
    :class:`BecameOtherError` too: that file was sent under this one's name (attack46)."""
    folder = os.path.dirname(path)
    if home is not None and os.path.realpath(folder) != home:
        raise BecameOtherError(temps.shown(_linked(folder)), "a link", was="a folder")
    return special_files.open_sent(path, follow)


def _linked(folder: str) -> str:
    """The folder of ``folder`` and those above it that is a link now (the nearest to the
    file; ``folder`` when none is: moved, not linked)."""
    here = folder
    while os.path.dirname(here) != here:
        if os.path.islink(here):
            return here
        here = os.path.dirname(here)
    return folder


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
