"""A file a push sends, opened again by its path as the push found it (each pass of an
upload, and the private copy of one that kept changing): a regular file only, through no
link put at its name or on its folder's way since (:func:`open_as_found`)."""
from __future__ import annotations

import errno
import os
from typing import BinaryIO, Optional

from drivestage import localfs, temps
from drivestage.errors import BecameOtherError
from drivestage.interrupts import deferred


def open_file(path: str, follow: bool, home: Optional[str] = None) -> BinaryIO:
    """:func:`open_as_found`, as a file object: a Ctrl-C between the two is held back (it left
    the descriptor open for the life of a notebook's process)."""
    with deferred():
        return os.fdopen(open_as_found(path, follow, home), "rb")


def open_as_found(path: str, follow: bool, home: Optional[str] = None) -> int:
    """A descriptor of ``path`` for reading, when it is a regular file: through a link only
    where ``follow`` (it was one as the push found it, a link its walk let through). A file
    opened by its name again was opened as it came: replaced meanwhile by a FIFO the push
    hung there for good, by a folder it stopped with a traceback, and by a link to
    ``/etc/passwd`` it sent that file (attackpush45). ``home``: where its folder led as the
    push found it; one on the way swapped for a link since had the file of its name there
    sent (attack46), and is refused before the open and after it (by where the descriptor
    is open: swapped in between, pushlefts47). Those raise :class:`BecameOtherError`; a
    file gone, FileNotFoundError (the push skips it). Not through a link at its name, it is
    opened *in* ``home``: SRC named by a link the trainer points at each new run
    (``runs/latest``), pointed on while the push ran, is read where the walk found it (by
    ``path``, the push stopped: "became a link … (a folder when it began)": attackint47)."""
    folder = os.path.dirname(path)
    where = path if home is None or follow else os.path.join(home, os.path.basename(path))
    if home is not None and os.path.realpath(os.path.dirname(where)) != home:
        raise BecameOtherError(temps.shown(_linked(folder)), "a link", was="a folder")
    try:
        fd = localfs.open_regular(where, follow=follow)
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
    if home is not None and not follow:
        try:   # (swapped between the look above and the open: landed elsewhere)
            landed(fd, path, os.path.join(home, os.path.basename(path)))
        except BaseException:
            os.close(fd)
            raise
    return fd


def open_walked(path: str, real: str) -> int:
    """A descriptor of ``path``, a file a push's walk found, for reading (never through a link
    at its name: :func:`open_as_found`) when it is open on ``real``, where the walk found it
    (the path with no link on its way). A read only to hash it (to decide whether to send it,
    what pruning keeps, what a sidecar vouches for) was refused a link at its name only: a
    folder on its way swapped for a link since had it read the file of that name outside SRC
    (pushlefts47). That raises :class:`BecameOtherError` naming the link."""
    return open_as_found(path, False, os.path.dirname(real))


def opened(path: str, follow: bool, real: str = "") -> int:
    """A descriptor of the regular file ``path`` for reading: :func:`open_walked` where
    ``real`` is given (a push's walked file), else :func:`drivestage.localfs.open_regular`."""
    return open_walked(path, real) if real else localfs.open_regular(path, follow=follow)


def walked_md5(path: str, real: str) -> str:
    """The md5 of ``path`` opened by :func:`open_walked`."""
    fd = open_walked(path, real)
    try:
        return localfs.file_md5(fd)
    finally:
        os.close(fd)


def landed(fd: int, path: str, real: str) -> None:
    """Raise :class:`BecameOtherError` unless ``fd`` (opened by ``path``) is open on ``real``:
    a folder on its way was swapped for a link since ``real`` was resolved. (Where no
    ``/proc`` tells, not checked.)"""
    try:
        now = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return
    # (a file renamed over or deleted since the open: still the one the walk's name held;
    # renamed within its folder, a log rotated: opened there all the same, attackint47)
    if now != real and now != real + " (deleted)" and \
            os.path.dirname(now) != os.path.dirname(real):
        raise BecameOtherError(temps.shown(_linked(os.path.dirname(path))), "a link",
                               was="a folder")


def open_now(path: str) -> BinaryIO:
    """``path`` opened as it is now, a regular file only (:func:`open_file`): for a local
    DEST's copy (``LocalDirStore``), whose plain open() of a file swapped for a FIFO after the
    push's walk waited for a writer for good (attack46)."""
    return open_file(path, *found(path))


def found(path: str) -> tuple[bool, str]:
    """What :func:`open_as_found` is given for ``path`` as it is now: whether it is a link,
    and where its folder leads."""
    return os.path.islink(path), os.path.realpath(os.path.dirname(path))


def _linked(folder: str) -> str:
    """Of ``folder`` and those above it, the nearest that is a link now (``folder`` when none
    is: it was moved, not linked)."""
    here = folder
    while os.path.dirname(here) != here:
        if os.path.islink(here):
            return here
        here = os.path.dirname(here)
    return folder
