"""What an upload (:mod:`drivestage.drive.upload`) opens and leaves behind: the local file it
reads, opened as the push found it (:func:`open_source`), and its remote copy read again or
removed (:func:`as_now`, :func:`delete_quietly`). Split from upload.py at its line cap."""
from __future__ import annotations

import logging
from typing import BinaryIO, Optional

from drivestage import sources
from drivestage.errors import DriveStageError
from drivestage.store import RemoteEntry, RemoteStore

# (upload.py's name: its lines kept the logger they always had)
log = logging.getLogger("drivestage.drive.upload")


def open_source(path: str, follow: bool, home: Optional[str] = None) -> BinaryIO:
    """``path`` opened for an upload's pass as the upload began with it: through a link only
    where ``follow`` (:func:`drivestage.sources.open_as_found`)."""
    return sources.open_file(path, follow, home)


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
