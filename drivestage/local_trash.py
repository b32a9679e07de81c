"""Where a directory store's trash lies.

A directory store is rooted at the nearest existing folder *above* the DEST it was opened
for (:func:`drivestage.remote.open_store`: a push can then make DEST and its parents), so a
trash in the store's root put ``push ./exp /nas/exp --delete`` and ``prune /nas/exp``'s
removals in ``/nas/.trash/exp/…``, and ``push ./out ~/backup --delete``'s in
``~/.trash/backup/…``: written outside the folder the user named (attacksync34). A store
opened for a DEST keeps its trash inside it, in :data:`NAME`, a name drivestage reserves
(:func:`drivestage.paths.is_reserved`): no push sends it, no pull takes it, ``--delete``
leaves it, and the store's listings leave it out. A store made without a DEST (the store
contract's, a caller's own) keeps the root's :data:`OLD` trash.
"""
from __future__ import annotations

import errno
import logging
import os
import shutil
from typing import Optional

from drivestage.errors import DriveStageError, LocalFileError, NotFoundError

log = logging.getLogger(__name__)

#: The trash folder inside a DEST.
NAME = ".drivestage-trash"
#: The trash folder in a store's root, for a store opened without a DEST.
OLD = ".trash"


def folder(within: Optional[str]) -> str:
    """The trash folder, root-relative: in ``within`` (the DEST, root-relative; "" the root
    itself) or, without one, the root's :data:`OLD`."""
    if within is None:
        return OLD
    return f"{within}/{NAME}" if within else NAME


def place(rel: str, within: Optional[str]) -> Optional[str]:
    """Where ``rel`` (root-relative) goes when trashed, root-relative: the same path below
    the trash of ``within``'s DEST when ``rel`` lies in it, else below the root's
    :data:`OLD`; None for ``rel`` already in a trash (deleted for good)."""
    if within is not None and (not within or rel.startswith(within + "/")):
        inner = rel[len(within) + 1:] if within else rel
        return None if inner.split("/", 1)[0] == NAME else f"{folder(within)}/{inner}"
    return None if rel.split("/", 1)[0] == OLD else f"{OLD}/{rel}"


def hidden(parent_rel: str, name: str) -> bool:
    """True for a child a listing leaves out: a trash (the root's, or any DEST's)."""
    return name == NAME or (not parent_rel and name == OLD)


def remove(full: str, root: str, to: Optional[str], within: Optional[str]) -> None:
    """Remove ``full``: moved to ``to`` in a trash (:func:`move`), or for good (``to``
    None). What the disk refuses (a read-only DEST, another user's folder) is said in one
    line: it was a traceback (attacknew34)."""
    try:
        if to is not None:
            move(full, root, to, within)
        elif os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            os.unlink(full)
    except FileNotFoundError:
        # Gone since the caller looked (another machine's prune of a shared DEST): the goal
        # reached, as the caller's own look says it; it was a traceback (attacknew34).
        raise NotFoundError(f"no such file or folder: {full}") from None
    except OSError as exc:
        if isinstance(exc, DriveStageError):
            raise
        raise LocalFileError(f"cannot {'move' if to else 'delete'} {full}"
                             f"{' to the trash' if to else ''} ({exc.strerror}): check that "
                             "this user may write there") from None


def move(full: str, root: str, to: str, within: Optional[str]) -> None:
    """Move ``full`` to ``to`` (root-relative, :func:`place`'s for ``within``) in a trash
    below the store ``root``; ``name.~N~``, the first N free, where a name is taken.

    Links are never followed from the trash folder down: ``os.makedirs`` then ``rename``
    moved ``push --delete``'s removals to wherever a link planted as the trash, or in it,
    led, outside DEST; and a file in the trash where a folder was wanted (an earlier push
    trashed the file ``sub``; ``sub`` is a folder now) failed the push with a traceback
    (attacknew34). A trash folder that is a link or a file is refused; a file or link in it
    where a folder is wanted is passed by, for a numbered name.
    """
    trash = folder(within) if within is not None and (
        not within or to.startswith(folder(within) + "/")) else OLD
    above, _, top = trash.rpartition("/")
    # DEST itself: the user named it (it may be a link); the store checked it lies inside.
    base = os.path.join(root, *above.split("/")) if above else root
    fd = os.open(base, os.O_RDONLY | _DIRECTORY)
    inner = to[len(trash) + 1:].split("/")
    try:
        for depth, part in enumerate([top] + inner[:-1]):
            # Each folder made as open as the one it stands for (DEST for the trash): made
            # 0755, a trash folder showed other users what a 0700 folder had kept from them.
            mode = _mode(os.path.join(base, *inner[:depth]))
            below = _enter(fd, part, os.path.join(root, *trash.split("/")), mode,
                           numbered=depth > 0)
            os.close(fd)
            fd = below
        try:
            name = _put(full, fd, inner[-1])
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EBUSY):
                raise
            # (a mount in DEST, or a mount point: the traceback of EXDEV or EBUSY)
            raise LocalFileError(
                f"cannot move {full} to the trash {os.path.join(root, *trash.split('/'))} "
                f"({exc.strerror}): a mount point, or a file on another filesystem mounted "
                "in DEST, cannot be moved there; remove it yourself") from None
    finally:
        os.close(fd)
    log.info("moved %s to %s", full, os.path.join(root, *trash.split("/"), *inner[:-1], name))


_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _put(full: str, fd: int, name: str) -> str:
    """``full`` moved into the folder ``fd`` as ``name`` or the first ``name.~N~`` free
    (:func:`_free`), never over what another process put there once it was found free: two
    pushes trashing one path at once, the second's ``rename`` replaced the first's file
    (attacknew34). A file or link is linked in, then unlinked (the link fails on a name
    taken); a folder is renamed (it replaces at most an empty folder). The name used."""
    for _ in range(100):
        name_now = _free(fd, name)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                os.rename(full, name_now, dst_dir_fd=fd)
                return name_now
            try:
                os.link(full, name_now, dst_dir_fd=fd, follow_symlinks=False)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.EXDEV, errno.EBUSY):
                    raise
                # (no hard links here: a FUSE mount, some network file systems)
                os.rename(full, name_now, dst_dir_fd=fd)
                return name_now
            os.unlink(full)
            return name_now
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise
    raise LocalFileError(f"cannot find a free name for {full} in its trash; empty the trash")


def _free(fd: int, name: str) -> str:
    """``name``, or ``name.~N~`` with the first N free, in the folder ``fd``."""
    candidate, n = name, 0
    while True:
        try:
            os.lstat(candidate, dir_fd=fd)
        except FileNotFoundError:
            return candidate
        n += 1
        candidate = f"{name}.~{n}~"


def _mode(path: str) -> int:
    """The permission bits of the folder ``path`` for others, this user's all (a 0555 folder's
    twin must take what is trashed below it); 0o700 where it cannot be read."""
    try:
        return os.stat(path).st_mode & 0o077 | 0o700
    except OSError:
        return 0o700


def _enter(fd: int, name: str, trash: str, mode: int, *, numbered: bool) -> int:
    """A descriptor of the folder ``name`` in the folder ``fd`` (made ``mode``), never
    through a link: one that is a link or a file is refused (``trash``, the trash folder
    itself) or, ``numbered``, passed by for ``name.~N~``."""
    n = 0
    while True:
        candidate = f"{name}.~{n}~" if n else name
        try:
            os.mkdir(candidate, mode, dir_fd=fd)
        except FileExistsError:
            pass
        try:
            return os.open(candidate, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            if not numbered:
                raise LocalFileError(
                    f"{trash} is a link or a file, not drivestage's trash folder; remove "
                    "or rename it (drivestage moves what --delete and prune remove into "
                    "it)") from None
            n += 1
