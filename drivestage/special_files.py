"""Local paths that are there but are no regular file: a device, a FIFO, a socket, a
folder. A command that writes a file by renaming a new one into place (``trainer export-onnx
--out``, ``drivestage auth login --token-file``) replaced such a node: as root, as Colab
runs, ``--out /dev/null`` replaced the system's /dev/null with a regular file, and every
program's ``> /dev/null`` then wrote into it (attackcli40)."""
from __future__ import annotations

import os
import stat
from typing import Optional

from drivestage.errors import UsageError


def special_kind(path: str) -> Optional[str]:
    """What ``path`` is where it is there and no regular file (``"a device"``, ``"a
    FIFO"``, ``"a socket"``, ``"a folder"``; through links), else None."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):   # (not there, or a dangling link: the file is made there)
        return None
    if stat.S_ISREG(mode):
        return None
    return ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "a device")


def not_a_folder(path: str) -> UsageError:
    """The error for a folder wanted at ``path``, where a file or a node is: "remove the
    file" was said of /dev/null too (``push logs /dev/null``), which root can remove."""
    what = special_kind(path)
    return UsageError(f"{path} is {what or 'a file'}, not a folder; choose another path"
                      + ("" if what else " or remove the file"))
