"""The paths of SRC a push could not read (:class:`Unread`), and what it says of them.

A path the walk could not stat or list (EACCES in a folder without x or r, EIO, a FUSE mount
that stopped: ENOTCONN), or a file it found that could not be opened or read when it was
sent, is never taken as absent: the walk skipped it without a word (exit 0), and ``--delete``
then removed its copies on Drive, the only ones left. Such a path is kept (nothing on Drive
at or under it is removed or replaced: :func:`drivestage.extra.decide`), said in one line each
(:func:`say`), and the push fails once everything else is done (:func:`error`, exit 1), as it
does for another run's checkpoints it left. A path gone (ENOENT, ENOTDIR) is absent: the
walk's answer, as a file deleted on purpose; one gone between the walk and its send is kept
on Drive this time and removed by the next push's walk.

A folder a push into a DEST could not read that reads as an empty folder now is kept the
same way (:mod:`drivestage.unread_memory`, attackr248, pushremount49): a mount in SRC whose
program ended (ENOTCONN) and that was then unmounted is the empty folder it was made as, and
the next push took every file under it on Drive to the trash, the only copies left.
"""
from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from typing import Optional, Sequence

from drivestage.errors import DriveStageError, LocalFileError
from drivestage.lost_mounts import lost_mount
from drivestage.mount_table import Mount, holding, network, table
from drivestage.paths import printable
from drivestage.shell_words import exclude_pattern, shell_word

# The name push's lines always had (a user's logging config, or grep, may name it).
log = logging.getLogger("drivestage.upload_tree")

#: Lines said of unread paths in one push; the rest counted.
SAID_AT_MOST = 10

_REMOUNT = (errno.ENOTCONN, errno.ESTALE, errno.ENODEV)

#: What :func:`say` said last, by DEST: a mirror pushes every period, and said the same
#: lines every time (its failure line is said once while it lasts: mirror._say_failed).
_SAID: dict[str, tuple[tuple[str, int, bool, str, bool, str], ...]] = {}

@dataclass(frozen=True)
class Unread:
    """A path of SRC (``rel``, ``/``-separated; ``path``: absolute) that could not be read."""

    rel: str
    path: str
    errno: int
    folder: bool = False
    #: A folder the last push could not read that reads empty now (:func:`empty_again`).
    empty: bool = False
    #: The mount a folder the last push could not read was on, not mounted now: what the
    #: path shows (files, or nothing there) is the disk beneath (mount50).
    beneath: str = ""
    #: With ``beneath``: the path is gone (its mount point removed at unmount).
    gone: bool = False
    #: With ``beneath``: another mount is there now (in words: ``tmpfs tmpfs``), not the one
    #: the record notes (:attr:`was`), mount51.
    other: str = ""
    was: str = ""
    #: With ``beneath``: the folder the record is of, where ``path`` is its mount point
    #: (kept for it: the whole mount is away, mount51).
    of: str = ""
    #: With ``other``: the point of the mount the record notes (:attr:`was`), where the other
    #: mount is put below it, at ``beneath`` (mount51b); ``""``: at the same point.
    was_at: str = ""

    @property
    def why(self) -> str:
        """The errno's meaning (``Permission denied``)."""
        return strerror(self.errno)


def strerror(err: int) -> str:
    """``err``'s meaning; ``unknown`` for 0, a damaged record's (``os.strerror`` says
    ``Success``)."""
    return os.strerror(err) if err else "unknown"


def of(exc: BaseException, rel: str, paths: Sequence[str]) -> Optional[Unread]:
    """``exc``, raised by a read of the file ``rel`` (at ``paths[0]``; ``paths``: the names
    it may be opened by), as an :class:`Unread`; None where it is no local read's failure (a
    Drive error, a socket's, the file gone: absent). A failure of the open names the file; a
    read's (EIO) names nothing."""
    if not isinstance(exc, OSError) or isinstance(exc, (DriveStageError, FileNotFoundError)) \
            or exc.errno is None:
        return None
    named = exc.filename is not None and os.fsdecode(exc.filename) in paths
    return Unread(rel, paths[0], exc.errno) if named or exc.errno == errno.EIO else None


def say(unread: Sequence[Unread], dest: str) -> None:
    """One line for each of ``unread`` (at most :data:`SAID_AT_MOST`, the rest counted):
    the path, why, that DEST keeps what it has there, and what to do; not again while the
    same paths of the same SRC fail alike into ``dest``."""
    now = tuple((u.path, u.errno, u.empty, u.beneath, u.gone, u.other)
                for u in sorted(unread, key=lambda u: u.rel))
    if _SAID.get(dest) == now:
        return
    _SAID[dest] = now
    for u in sorted(unread, key=lambda u: u.rel)[:SAID_AT_MOST]:
        if u.beneath and u.other and u.was_at:
            # (another mount put below the noted one's point: mount51b)
            log.error("%s is on another mount than when the last push could not read %s "
                      "(%s): %s is mounted at %s now, inside the mount at %s (%s) it was on. "
                      "Not sent, and nothing at %s/%s or under it on Drive is removed this "
                      "time; unmount %s, then push again; if the mount there now is the one to "
                      "push, run drivestage unread forget %s, then push again",
                      printable(u.path), printable(u.of) if u.of else "it", u.why, u.other,
                      printable(u.beneath), printable(u.was_at), u.was, dest.rstrip("/"),
                      printable(u.rel), printable(u.beneath), shell_word(u.of or u.path))
            continue
        if u.beneath and u.other:
            # (another mount at its point: mount51; ``of``, a folder below it, kept there)
            log.error("%s is on another mount than when the last push could not read %s "
                      "(%s): %s is mounted at %s now, %s was. Not sent, and nothing at %s/%s "
                      "or under it on Drive is removed this time; mount %s at %s again, then "
                      "push again; if the mount there now is the one to push, run drivestage "
                      "unread forget %s, then push again", printable(u.path),
                      printable(u.of) if u.of else "it", u.why, u.other, printable(u.beneath),
                      u.was, dest.rstrip("/"), printable(u.rel), u.was, printable(u.beneath),
                      shell_word(u.of or u.path))
            continue
        if u.beneath and not u.empty:
            log.error("%s %s the mount at %s %s (%s) is not mounted now. Not sent, and nothing "
                      "at %s/%s or under it on Drive is removed this time; mount %s again, "
                      "then push again; if its copies on Drive should go, push once with "
                      "--emptied %s", printable(u.path), _beneath_words(u),
                      printable(u.beneath), f"that {printable(u.of)} was on when the last push "
                      "could not read it" if u.of else "that the last push could not read", u.why, dest.rstrip("/"), printable(u.rel),
                      printable(u.beneath), shell_word(u.of or u.path))
            continue
        if u.empty:
            where = f"{dest.rstrip('/')}/{printable(u.rel)}"
            log.error("%s reads as an empty folder where the last push could not read it "
                      "(%s): a mount point not mounted again? Not sent, and nothing at %s or "
                      "under it on Drive is removed this time; mount it again, then push "
                      "again; if it was emptied on purpose, push once with --emptied %s",
                      printable(u.path), u.why, where, shell_word(u.path))
            continue
        mount = _network(u.path) if u.errno in (errno.EACCES, errno.EPERM) else None
        if mount is not None:   # (the mount's doing, remembered: mount51)
            how = (f"it is on the {mount.type} mount at {printable(mount.point)}, which "
                   "refuses this user (credentials expired? mounted without allow_other?): "
                   "let this user in again")
        elif u.errno in (errno.EACCES, errno.EPERM):
            how = (f"let this user read it (chmod {'-R u+rX' if u.folder else 'u+r'} "
                   f"{shell_word(u.path)})")
        elif u.errno in _REMOUNT:
            # (the mount point, where a FUSE mount's program ended: the path may lie deep in it)
            point = lost_mount(u.path) if u.errno == errno.ENOTCONN else None
            how = f"mount {printable(point)} again" if point else "mount it again"
        else:
            how = "check the disk or mount it is on"
        log.error("could not read %s (%s): not sent, and nothing at %s/%s%s on Drive is "
                  "removed or replaced this time; %s, then push again, or leave it out: "
                  "--exclude %s", printable(u.path), u.why, dest.rstrip("/"), printable(u.rel),
                  " or under it" if u.folder else "", how, exclude_pattern(u.rel))
    if len(unread) > SAID_AT_MOST:
        log.error("... and %d more paths of SRC that could not be read",
                  len(unread) - SAID_AT_MOST)


def src_unread(src: str, err: int) -> LocalFileError:
    """The failure of a push whose SRC could not be stat'ed or listed (``err``; remembered by
    :func:`drivestage.unread_memory.src_unread`)."""
    return LocalFileError(f"could not read SRC {printable(src)} ({strerror(err)}): "
                          "nothing was pushed")


def src_refused(src: str, err: int) -> LocalFileError:
    """The failure of a push of ``src`` that reads as an empty folder where a push could not
    read it (``err``): a mount that stopped, then unmounted (attackr248)."""
    return LocalFileError(f"SRC {printable(src)} reads as an empty folder where the last push "
                          f"could not read it ({strerror(err)}): a mount point not mounted "
                          "again? Nothing was pushed; mount it again, then push again; if it was "
                          "emptied on purpose, push once with --emptied "
                          f"{shell_word(src)}")


def src_beneath(src: str, err: int, point: str, other: str = "", was: str = "",
                was_at: str = "", path: str = "") -> LocalFileError:
    """The failure of a push of ``src`` that was in the mount at ``point`` when a push could
    not read it (``err``; it or ``path``, a folder of it on that mount), where that is not
    mounted now: what it holds is the disk beneath; or where another mount is there now
    (``other``, not the one noted: ``was``, in words; put below the noted one's point
    ``was_at``, mount51b)."""
    what = "it" if not path or path == src else printable(path)
    if other and was_at:
        return LocalFileError(
            f"SRC {printable(src)} is on another mount than when the last push could not read "
            f"{what} ({strerror(err)}): {other} is mounted at {printable(point)} now, inside "
            f"the mount at {printable(was_at)} ({was}) it was on. Nothing was pushed; unmount "
            f"{printable(point)}, then push again; if the mount there now is the one to push, "
            f"run drivestage unread forget {shell_word(path or src)}, then push again")
    if other:
        return LocalFileError(
            f"SRC {printable(src)} is on another mount than when the last push could not read "
            f"{what} ({strerror(err)}): {other} is mounted at {printable(point)} now, {was} "
            f"was. Nothing was pushed; mount {was} at {printable(point)} again, then push "
            "again; if the mount there now is the one to push, run drivestage unread forget "
            f"{shell_word(path or src)}, then push again")
    that = "that the last push could not read" if what == "it" and point == src else \
        f"that {what} was on when the last push could not read it"
    return LocalFileError(f"SRC {printable(src)} holds what is on the disk beneath: the mount "
                          f"at {printable(point)} {that} ({strerror(err)}) is not mounted "
                          f"now. Nothing was pushed; mount {printable(point)} again, then push "
                          "again; if its copies on Drive should go, push once with --emptied "
                          f"{shell_word(src)}")


def _beneath_words(u: Unread) -> str:
    """How the disk beneath shows ``u`` (a mount point: a folder below one is kept as its
    mount's point, :attr:`Unread.of`): what it holds, or gone."""
    if not u.gone:
        return "holds what is on the disk beneath:"
    return "is gone (its mount point removed as it was unmounted?):"


def _network(path: str) -> "Optional[Mount]":
    """The FUSE or network mount ``path`` is on (where a refusal may be the mount's), else
    None."""
    found = holding(path, table())
    return found if network(found) else None


def error(unread: Sequence[Unread], also: int = 0) -> LocalFileError:
    """The push's failure once everything else was done (``also``: lines said of what waits
    with them, :func:`drivestage.sidecar_unread.say`)."""
    n = len(unread)
    it, them = ("it", "it") if n == 1 else ("they", "them")
    # (one path, its line and a waiting checkpoint's: two lines above, "the line above" said)
    one = n == 1 and also == 0
    return LocalFileError(
        f"{n} path{'' if n == 1 else 's'} of SRC could not be read (the line"
        f"{'' if one else 's'} above name{'s' if one else ''} {them}): everything else "
        f"was pushed, and nothing on Drive at or under {them} was removed or replaced; push "
        f"again once {it} can be read")
