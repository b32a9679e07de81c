"""Local paths that are there but are no regular file: a device, a FIFO, a socket, a
folder. A command that writes a file by renaming a new one into place (``trainer export-onnx
--out``, ``drivestage auth login --token-file``) replaced such a node: as root, as Colab
runs, ``--out /dev/null`` replaced the system's /dev/null with a regular file, and every
program's ``> /dev/null`` then wrote into it (attackcli40). Such a command writes through a
link to a file (:func:`through_links`), as ``cp`` does."""
from __future__ import annotations

import errno
import os
import re
import stat
from typing import BinaryIO, Optional, Protocol

from drivestage import localfs, sources, temps
from drivestage.deferred_ctrl_c import deferred
from drivestage.errors import BecameOtherError, RemoteChangedError, UsageError


class Hashes(Protocol):
    """What hashes a file (:class:`drivestage.state.Md5Cache`, a layer above)."""

    def md5(self, path: str, *, follow: bool = ..., real: str = ...) -> str: ...


def special_kind(path: str) -> Optional[str]:
    """What ``path`` is where it is there and no regular file (``"a device"``, ``"a
    FIFO"``, ``"a socket"``, ``"a folder"``; through links; ``"a link to an open
    descriptor (…)"``), else None."""
    through = descriptor_link(path)
    if through is not None:
        return f"a link to an open descriptor ({through})"
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):   # (not there, or a dangling link: the file is made there)
        return None
    if stat.S_ISREG(mode):
        return None
    return ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "a device")


#: A process's open descriptor as a path names it: what ``/dev/stdout``, ``/dev/stdin``
#: and ``/dev/fd/N`` lead to.
_DESCRIPTOR = re.compile(r"^/proc/[^/]+/fd/\d+$|^/dev/fd/\d+$")
#: Links followed at most (the kernel's own bound, ELOOP past it).
_MAX_LINKS = 40


def descriptor_link(path: str) -> Optional[str]:
    """The ``/proc/…/fd/N`` (or ``/dev/fd/N``) that ``path`` is, or leads to through its
    links; else None. Such a link resolves to whatever the descriptor is open on, a regular
    file where the output was redirected to one (``--out /dev/stdout > model.onnx``), so no
    look at the end of it told it from a file: renamed over, the link itself was replaced,
    and as root the system's ``/dev/stdout`` became a regular file (attackcli41)."""
    here = os.path.abspath(path)
    for _ in range(_MAX_LINKS):
        if _DESCRIPTOR.match(here):
            return here
        try:
            target = os.readlink(here)
        except (OSError, ValueError):   # (no link, or not there: the end of the chain)
            return None
        here = os.path.normpath(os.path.join(os.path.dirname(here), target))
    return None


def not_a_folder(path: str) -> UsageError:
    """The error for a folder wanted at ``path``, where a file or a node is: "remove the
    file" was said of /dev/null too (``push logs /dev/null``), which root can remove."""
    what = special_kind(path)
    return UsageError(f"{path} is {what or 'a file'}, not a folder; choose another path"
                      + ("" if what else " or remove the file"))


def through_links(path: str, named: str) -> str:
    """The file a write to ``path`` lands in, as ``cp`` writes: where ``path`` is a link (or a
    chain of them) to a file, that file, so that a writer that renames a new file into place
    makes it beside the target and keeps the link; ``path`` otherwise. The rename replaced
    the link itself (a dotfiles manager's token file, ``model.onnx`` pointing into a deploy
    folder), leaving the file it led to as it was (leftovers41). A link that leads nowhere is
    refused (UsageError naming ``named``), as ``cp`` refuses to write through one."""
    if not os.path.islink(path):
        return path
    try:
        os.stat(path)
    except FileNotFoundError:
        raise UsageError(f"{named} {path} is a link to {os.path.realpath(path)}, which is not "
                         "there; give the file to write, or point the link at one") from None
    except OSError as exc:   # (a loop of links, a folder on the way that cannot be entered)
        raise UsageError(f"{named} {path} is a link that leads to no file "
                         f"({(exc.strerror or str(exc)).lower()}); give the file to write, or "
                         "point the link at one") from None
    return os.path.realpath(path)


def open_sent(path: str, follow: bool, real: str = "") -> BinaryIO:
    """``path`` opened to be sent (a push's upload, a copy of it), when it is a regular file:
    through a link only where ``follow`` (one the push's walk let through). What stands at the
    name is what is read: a link planted there after the push looked (between its check and
    the upload's open, or before a checkpoint is sent again: pushfollow46) sent its target,
    ``/etc/passwd``, under the checkpoint's name. A link, a FIFO (never waited on), a socket,
    a device or a folder raise :class:`BecameOtherError`; a file gone, FileNotFoundError.
    ``real``: where the walk found it, the only place it is read from
    (:func:`drivestage.sources.open_walked`)."""
    try:
        # (a Ctrl-C between the descriptor and its file object left the descriptor open for
        # the life of a notebook's process)
        with deferred():
            return os.fdopen(sources.opened(path, follow, real), "rb")
    except OSError as exc:
        raise became(path, exc) from None


def walked_md5(cache: Hashes, path: str, real: str) -> str:
    """The md5 of the file a push's walk found at ``path`` (a link it let through: the file
    that link led to; ``real``: where it was, no link on its way), read only to decide
    whether to send it, by :func:`open_sent`'s rules: a hash followed a link planted at the
    name since the walk (to a copy of the same bytes: called unchanged; to a huge file: read
    whole), and a FIFO there ended the push in a traceback (pushlinks46); so it did a folder
    on its way swapped for a link (pushlefts47). Raises :class:`BecameOtherError` for those,
    FileNotFoundError when the file is gone."""
    try:
        return cache.md5(path, follow=False, real=real)
    except OSError as exc:
        raise became(path, exc) from None


def became(path: str, exc: OSError) -> OSError:
    """What a read of a file to send (or a push's walked file) that raised ``exc`` raises: :class:`BecameOtherError` where
    a link, a FIFO, socket or device, or a folder stands at its name, else ``exc``."""
    if isinstance(exc, FileNotFoundError):
        return exc
    what = ("a folder" if exc.errno == errno.EISDIR else
            "a link" if exc.errno == errno.ELOOP else
            "a FIFO, socket or device" if isinstance(exc, localfs.NotRegularFileError)
            else None)
    return exc if what is None else BecameOtherError(temps.shown(path), what)


def open_copied(path: str) -> BinaryIO:
    """``path``, a file of a local folder pulled, opened to be copied when it is still a
    regular file: a FIFO swapped in since the walk listed it held a plain open() for good,
    waiting for a writer, and the pull with it (attackb50). Raises
    :class:`RemoteChangedError` (its copy not made: run again) for a FIFO, socket, device or
    folder there now; OSError where it cannot be opened."""
    try:
        with deferred():   # (a Ctrl-C between the descriptor and its file object: as open_sent)
            return os.fdopen(localfs.open_regular(path), "rb")
    except localfs.NotRegularFileError as exc:
        what = "a folder" if exc.errno == errno.EISDIR else "a FIFO, socket or device"
        raise RemoteChangedError(
            f"{temps.shown(path)} changed in its folder while it was copied ({what} now, a "
            "file when its folder was listed): not copied. Run again") from None
