"""A directory store's run-folder marks (:mod:`drivestage.run_folders`).

A run folder is marked on the store so that a machine without this one's records knows it: on
Drive by a property of the folder, in a directory (a NAS, a shared disk of a cluster's
nodes) by the file ``<run folder>/.drivestage/run-folder``, in the folder's state folder (a
reserved name: no push sends it or removes it, no pull takes it). Without it a second
machine's ``push ./runs /nas/runs --delete``, whose ``runs`` lacked the first machine's
``exp1``, trashed that run's checkpoints; ``--delete-permanently`` deleted them
(attacksync34). Links are never followed: a state folder or mark that is a link counts as
no mark and takes none.
"""
from __future__ import annotations

import errno
import logging
import os
import stat
from typing import Union

from drivestage.errors import LeftAloneError
from drivestage.local_trash import NAME as TRASH_NAME
from drivestage.paths import STATE_DIR, StorePath
from drivestage.store import RemoteEntry

log = logging.getLogger(__name__)

#: The mark's file name in the run folder's state folder.
MARK = "run-folder"

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


def marked(full: str) -> bool:
    """Whether the folder ``full`` holds the mark (a regular file; a link is none)."""
    try:
        return stat.S_ISDIR(os.lstat(os.path.join(full, STATE_DIR)).st_mode) and \
            stat.S_ISREG(os.lstat(os.path.join(full, STATE_DIR, MARK)).st_mode)
    except OSError:
        return False


def left_unmarked(full: str) -> None:
    """Raise LeftAloneError where the folder ``full``, or one below it, holds the mark (links
    not followed, a trash left out): read just before its removal, decided on a look before
    the push sent its files. Machine B's ``push ./runs /nas/runs --delete`` trashed a folder
    a run on machine A had begun in meanwhile, its first verified checkpoint with it; Drive's
    store reads the folder again so (:mod:`drivestage.drive.provenance`) (attacksync35)."""
    for at, dirs, _files in os.walk(full):
        if marked(at):
            log.warning("%s was marked a run folder since it was listed; not deleted", at)
            raise LeftAloneError(f"{at} was marked a run folder since it was listed; not "
                                 "deleted")
        dirs[:] = [d for d in dirs if d != STATE_DIR and d != TRASH_NAME]


def put(full: str, mark: bool) -> bool:
    """Set (``mark``) or clear the mark of the folder ``full``; whether that was done (a
    state folder this user cannot write, or a link where it should be, keeps none)."""
    state = os.path.join(full, STATE_DIR)
    try:
        if mark:
            try:
                os.mkdir(state, 0o755)
            except FileExistsError:
                pass
        fd = os.open(state, _DIR_FLAGS)
    except FileNotFoundError:
        return not mark    # (nothing to clear)
    except OSError as exc:
        log.warning("cannot mark %s as a run folder (%s): another machine's push --delete "
                    "may take it for a plain folder", full, exc.strerror)
        return False
    try:
        if mark:
            # Non-blocking: a FIFO planted at the mark's name held the push in open() for
            # good, waiting for a reader (attacknew34); it, or any other non-file, keeps none.
            made = os.open(MARK, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK
                           | getattr(os, "O_NOFOLLOW", 0), 0o644, dir_fd=fd)
            regular = stat.S_ISREG(os.fstat(made).st_mode)
            os.close(made)
            if not regular:
                raise OSError(errno.EEXIST, "not a regular file")
        else:
            try:
                os.unlink(MARK, dir_fd=fd)
            except FileNotFoundError:
                pass
    except OSError as exc:
        log.warning("cannot %s the run-folder mark of %s (%s)",
                    "write" if mark else "remove", full, exc.strerror)
        return False
    finally:
        os.close(fd)
    if not mark:
        try:
            os.rmdir(state)   # only when the mark was all it held
        except OSError:
            pass
    return True


class LocalMarks:
    """The run-folder marks of :class:`drivestage.localdir.LocalDirStore` (a mixin)."""

    def _rel(self, path: Union[str, StorePath]) -> str:  # the store's
        raise NotImplementedError

    def _full(self, rel: str) -> str:  # the store's
        raise NotImplementedError

    def mark_run_folder(self, folder: RemoteEntry, mark: bool = True) -> bool:
        """Set or clear ``folder``'s mark (:func:`put`)."""
        return put(self._full(self._rel(folder.id)), mark)

    def run_marked(self, folder: RemoteEntry) -> bool:
        """Whether ``folder`` holds the mark, as the disk says now."""
        return folder.run_mark or marked(self._full(self._rel(folder.id)))
