"""The one door from what a user typed to ``(store, path inside it)``.

``drive:...`` opens Google Drive (:mod:`drivestage.drive`); anything else is a local
directory (a Colab Drive mount, a NAS) served by :class:`drivestage.localdir.LocalDirStore`.
A spec is parsed once, here (or before, by the caller: a :class:`~drivestage.paths.DrivePath`
is accepted as is), and travels on as a :class:`~drivestage.paths.StorePath`.
"""
from __future__ import annotations

import os
from typing import Optional, Union

from drivestage import paths, pool
from drivestage.errors import LocalFileError, UsageError
from drivestage.localfs import UNMOUNTED_DRIVE, unmounted_drive_path
from drivestage.lost_mounts import lost_mount, lost_mount_message
from drivestage.paths import DrivePath, StorePath
from drivestage.store import Md5Source, RemoteStore

#: Where a command points: a spec (``drive:a/b``, ``/mnt/nas/x``), a parsed ``drive:`` path,
#: or a store already open with a path inside it.
Where = Union[str, "os.PathLike[str]", DrivePath,
              tuple[RemoteStore, Union[str, StorePath]]]


def open_store(where: Where, *, api_root: Optional[str] = None,
               credentials: Optional[str] = None, token: Optional[str] = None,
               md5_cache: Optional[Md5Source] = None,
               acknowledge_abuse: bool = False) -> tuple[RemoteStore, StorePath]:
    """``(store, path inside it)`` for ``where``.

    ``drive:a/b`` -> (My Drive, ``a/b``); ``drive:id:X[:KEY]`` or a Drive sharing link ->
    (My Drive, ``id:X[:KEY]``); ``drive:shared/T/a`` -> (shared drive T, ``a``);
    ``drive:shared-with-me/N/a`` -> (Shared with me, ``N/a``); ``/mnt/x/a`` -> (a directory
    store rooted at the nearest existing folder, ``a``), which keeps its md5s in
    ``md5_cache``; a ``(store, path)`` pair is returned with its path parsed.
    ``acknowledge_abuse`` lets a Drive store download files Drive flagged as malware. Opening
    My Drive uses no network; the first call does (a shared drive is looked up by name).
    """
    if isinstance(where, tuple):
        store, path = where
        return store, path if isinstance(path, StorePath) else StorePath.parse(path)
    if isinstance(where, DrivePath) or paths.is_drive(str(where)):
        from drivestage.heap import bulk

        with bulk():  # the Drive client's modules live to the process's end (heap.bulk)
            from drivestage.drive.places import open_drive

            parsed = where if isinstance(where, DrivePath) else paths.parse(str(where))
            return open_drive(parsed, api_root=api_root, credentials=credentials, token=token,
                              acknowledge_abuse=acknowledge_abuse)
    # ("": an unset variable, taken as the working folder: the library's push and
    # CheckpointSync copied into it and pruned the user's checkpoints there: attack52)
    paths.refuse_empty("The path", os.fspath(where))
    paths.refuse_web_address(os.fspath(where))
    spec = os.fspath(where)
    # Aside (pool.aside): a stat of a hung FUSE mount here, the command's first look at
    # it, held every Ctrl-C in the main thread until the mount answered (streams52).
    return pool.aside(lambda: _looked_at(spec, md5_cache), "drivestage-open")


def _looked_at(spec: str, md5_cache: Optional[Md5Source]) -> tuple[RemoteStore, StorePath]:
    """:func:`_open_directory`, left by a Ctrl-C where it waits on a hung mount (it only
    looks: the mount table, stats, links; nothing is made or written)."""
    with pool.leavable():
        return _open_directory(spec, md5_cache)


def _open_directory(spec: str, md5_cache: Optional[Md5Source]) -> tuple[RemoteStore, StorePath]:
    from drivestage.localdir import LocalDirStore

    full = os.path.abspath(os.path.expanduser(spec))
    lost = lost_mount(full)
    if lost is not None:
        # Every call into it fails: a push took its mount point for a file (usage error), a
        # look-up raised the bare OSError, and Colab's was called "not mounted".
        raise LocalFileError(f"{full}: {lost_mount_message(lost)}")
    unmounted = unmounted_drive_path(full)
    if unmounted is not None:
        # Colab's mount path with nothing mounted: the folders would be made on local disk,
        # and a push would report its files uploaded while none reached Drive.
        point, drive_spec = unmounted
        raise UsageError(f"{full} is under {point}, {UNMOUNTED_DRIVE} (a folder made there "
                         f"stays on this machine); write {drive_spec} instead: drivestage "
                         "needs no mount")
    parent, name = os.path.split(full)
    names: tuple[str, ...] = (name,) if name else ()
    if name and os.path.islink(full) and os.path.isdir(full) and not _below(full, parent):
        # DEST itself a link (``~/backup -> /mnt/disk/backup``): the user's choice, followed
        # as a pull into one follows it. Rooted at the link's folder, every look-up refused
        # it as "a link leading outside the store root" (attacknew34).
        parent, name = os.path.split(os.path.realpath(full))
        names = (name,) if name else ()
    # Rooted at the nearest existing folder, so a push can create the path and its missing
    # parents (a lookup still finds a missing path missing).
    while not os.path.isdir(parent) and os.path.dirname(parent) != parent:
        parent, up = os.path.split(parent)
        names = (up,) + names
    # Its trash in DEST: a push's --delete or a prune writes nothing outside the folder named.
    return (LocalDirStore(parent, md5_cache=md5_cache, trash_in="/".join(names)),
            StorePath(None, names))


def _below(full: str, folder: str) -> bool:
    """Whether ``full`` leads, links resolved, to a path inside ``folder``'s."""
    real, top = os.path.realpath(full), os.path.realpath(folder)
    return real.startswith(top.rstrip(os.sep) + os.sep)
