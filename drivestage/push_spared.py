"""What ``push --delete`` leaves of what it decided to remove (:mod:`drivestage.extra`),
once every upload is done and before the first removal: what it could not read when it came
to send it (:func:`sparing`), and what SRC holds now that its walk did not see
(:func:`written_since`).
"""
from __future__ import annotations

import dataclasses
import errno
import logging
import os
from contextlib import ExitStack
from typing import Collection, Optional

from drivestage import extra, pool
from drivestage.interrupts import BackgroundThread, Flag
from drivestage.local_tree import LocalTree
from drivestage.store import RemoteEntry

log = logging.getLogger("drivestage.upload_tree")   # (push's lines' name)

#: Seconds :func:`written_since` waits for its listings of SRC's folders, all of them: a
#: disk's, or a mount's that answers, take milliseconds. A FUSE mount in SRC that stopped
#: answering after the walk never answers them (no signal breaks the wait: hang51), and
#: held the push there through every Ctrl-C (spared52).
LIST_WAIT_S = 10.0
#: Bytes of one name no Linux file system exceeds (``NAME_MAX``); a Drive title may.
NAME_MAX = 255


def sparing(deletions: extra.Deletions, refused: Collection[str]) -> extra.Deletions:
    """``deletions`` less what is at or under a path of ``refused`` (files push could not
    read when it came to send them: :mod:`drivestage.unread`), the items it counts less
    those (a folder with what it holds, from the decision's listings: no request more).
    A folder at the name of such a file went to the trash, its files the only copies, and
    the line said nothing there was removed (attackr248)."""
    def under(rel: str) -> bool:
        return any(rel == r or rel.startswith(r + "/") for r in refused)

    def items(e: RemoteEntry) -> int:
        if not e.is_dir or e.linked or deletions.listed is None:
            return 1
        return 1 + sum(items(c) for c in deletions.listed(e))
    kept = [d for d in deletions.doomed if under(d.rel)]
    if not kept:
        return deletions
    return dataclasses.replace(deletions, doomed=[d for d in deletions.doomed if not under(d.rel)],
                               items=deletions.items - sum(items(d.entry) for d in kept))


def written_since(deletions: extra.Deletions, tree: LocalTree, src: str,
                  where: str) -> extra.Deletions:
    """``deletions`` less what SRC holds now at a path its walk did not see (written into
    SRC since: said in one line). A push takes the locks of DEST's folders after its walk,
    and another push into a folder inside DEST (a trainer's mirror of its run, a checkpoint
    just saved) may hold them for minutes meanwhile: what that push sent of files written
    after this one's walk was on the store when this one listed DEST, and ``--delete``
    trashed it, the newest checkpoint of the run too, while SRC held it (attackb52)."""
    known = {lf.rel for lf in tree.files} | set(tree.folders) | set(tree.skipped_links) | \
        set(tree.special) | tree.unread_rels
    # (a Drive title ".", "..", "": no name in SRC; listed, ``..`` read the folder above SRC,
    # and a file there kept its namesake on the store for good, "SRC holds it": attackc52)
    unseen = [d.rel for d in deletions.doomed
              if d.rel not in known and not {"", ".", ".."} & set(d.rel.split("/"))]
    listed = _listings(src, sorted({rel.rpartition("/")[0] for rel in unseen}))
    # A folder not listed (it did not answer in time, or failed: EIO, EACCES) may hold any of
    # them: kept, as the walk keeps what it cannot read (unread).
    unknown = sorted(rel for rel in unseen if listed.get(rel.rpartition("/")[0]) is None)
    if unknown:
        log.warning("left %s/%s%s on the store: SRC's folder %s could not be listed again "
                    "(it failed, or gave no answer within %g s: a mount that stopped?), so "
                    "--delete cannot tell whether it holds %s; a push that reads it decides",
                    where, unknown[0],
                    f" and {len(unknown) - 1} more" if len(unknown) > 1 else "",
                    os.path.join(src, unknown[0].rpartition("/")[0]), LIST_WAIT_S,
                    "it" if len(unknown) == 1 else "them")
    # (its very name in the listing, not a stat: a case- or normalization-insensitive
    # disk, macOS's, finds ``A.txt`` at ``a.txt``)
    new = sorted(rel for rel in unseen if rel.rpartition("/")[2] in (
        listed.get(rel.rpartition("/")[0]) or ()))
    if new:
        log.info("left %s/%s%s on the store: SRC holds %s now, written after this push read "
                 "SRC (the next push compares %s)", where, new[0],
                 f" and {len(new) - 1} more" if len(new) > 1 else "",
                 "it" if len(new) == 1 else "them", "it" if len(new) == 1 else "them")
    return sparing(deletions, new + unknown) if new or unknown else deletions


def _unnamable(exc: OSError, folder: str) -> bool:
    """Whether ``exc``, SRC's ``folder`` listed, says no local folder can have its path: a
    name longer than :data:`NAME_MAX` bytes (a Drive title's; no Linux file system takes it)."""
    return exc.errno == errno.ENAMETOOLONG and any(
        len(os.fsencode(part)) > NAME_MAX for part in folder.split("/"))


def _listings(src: str, folders: list[str]) -> dict[str, Optional[set[str]]]:
    """The names each of SRC's ``folders`` holds ("" is SRC; an empty set: it is gone), in a
    thread of their own, :data:`LIST_WAIT_S` at most; None, or missing: not known (it failed
    to list, or did not answer in time). A thread left in a hung mount's listing is a daemon
    one (the exit does not wait for it) and ends once the mount answers; the push goes on, a
    Ctrl-C of its wait is honoured at once, and so is a stop of this thread's work
    (:func:`drivestage.pool.check`: a mirror abandoned, walk52b): KeyboardInterrupt, before
    anything is removed."""
    got: list[tuple[str, Optional[set[str]]]] = []
    woken = Flag()   # (the listings ended, or this thread's work was told to stop)

    def look() -> None:
        try:
            for folder in folders:
                try:
                    names: Optional[set[str]] = set(os.listdir(os.path.join(src, folder)))
                except (FileNotFoundError, NotADirectoryError):
                    names = set()   # (gone since the walk: what it held goes, as before)
                except ValueError:   # (a NUL, half a surrogate pair: UnicodeEncodeError)
                    names = set()    # no local folder has that name: a Drive title's only
                except OSError as exc:
                    names = set() if _unnamable(exc, folder) else None
                got.append((folder, names))
        finally:
            woken.set()
    if folders:
        with ExitStack() as stack:
            for stop in pool.stops():
                stack.enter_context(stop.echoed_to(woken))
            pool.check()
            BackgroundThread(look, "drivestage-src-again").start()
            woken.wait(LIST_WAIT_S)
        pool.check()   # (stopped meanwhile: the push ends here, its removals not begun)
    return dict(got[:])   # (one slice: a thread left behind may still append)
