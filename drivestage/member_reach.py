"""How the member paths of an extraction into one folder read from another (a folder pull's
archives in nested folders: ``a.zip`` into ``data``, ``sub/b.zip`` into ``data/sub``)."""
from __future__ import annotations

import os
from typing import Callable, Optional


def read_from(dest: str, folder: str) -> Optional[Callable[[str], Optional[str]]]:
    """How a member path of an extraction into ``folder`` reads from ``dest`` (None where it
    lands outside), or None when no member of it can land in ``dest``."""
    if folder == dest:
        return lambda path: path
    if folder.startswith(dest.rstrip(os.sep) + os.sep):   # below: its paths, further down
        below = os.path.relpath(folder, dest).replace(os.sep, "/") + "/"
        return lambda path: below + path
    if dest.startswith(folder.rstrip(os.sep) + os.sep):   # above: those that lead here
        above = os.path.relpath(dest, folder).replace(os.sep, "/") + "/"
        return lambda path: path[len(above):] if path.startswith(above) else None
    return None
