"""A link whose target is gone on the way to a path (split from localfs.py at its line cap):
a folder made there meets "File exists" or "Not a directory";
:func:`drivestage.paths.refuse_dangling_link` names the link instead."""
from __future__ import annotations

import os
from typing import Optional


def dangling_link(path: str) -> Optional[tuple[str, str]]:
    """``(link, its target)`` for the first link on the way to ``path`` (``path`` itself
    included) whose target does not exist (a disk's folder linked in, the disk not mounted),
    or None: what a folder made there would meet, as "File exists" or "Not a directory". A
    target that cannot be reached for another reason (a lost mount: ENOTCONN) is no
    dangling link."""
    here = os.path.abspath(path)
    way = []
    while True:
        way.append(here)
        up = os.path.dirname(here)
        if up == here:
            break
        here = up
    for step in reversed(way):
        if not os.path.lexists(step):
            return None
        if os.path.islink(step):
            try:
                os.stat(step)
            except FileNotFoundError:
                return step, os.readlink(step)
            except OSError:   # (a mount whose program ended: said as such elsewhere)
                return None
    return None
