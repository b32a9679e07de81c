"""What ``push --delete`` leaves of what it decided to remove (:mod:`drivestage.extra`),
once every upload is done and before the first removal: what it could not read when it came
to send it (:func:`sparing`), and what SRC holds now that its walk did not see
(:func:`written_since`).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Collection

from drivestage import extra
from drivestage.local_tree import LocalTree
from drivestage.store import RemoteEntry

log = logging.getLogger("drivestage.upload_tree")   # (push's lines' name)


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
    listed: dict[str, set[str]] = {}

    def there(rel: str) -> bool:
        """Whether SRC's folder holds ``rel``'s very name (a listing, not a stat: a case- or
        normalization-insensitive disk, macOS's, finds ``A.txt`` at ``a.txt``)."""
        folder, _, name = rel.rpartition("/")
        if folder not in listed:
            try:
                listed[folder] = set(os.listdir(os.path.join(src, folder)))
            except OSError:
                listed[folder] = set()
        return name in listed[folder]
    new = sorted(d.rel for d in deletions.doomed if d.rel not in known and there(d.rel))
    if not new:
        return deletions
    log.info("left %s/%s%s on the store: SRC holds %s now, written after this push read SRC "
             "(the next push compares %s)", where, new[0],
             f" and {len(new) - 1} more" if len(new) > 1 else "",
             "it" if len(new) == 1 else "them", "it" if len(new) == 1 else "them")
    return sparing(deletions, new)
