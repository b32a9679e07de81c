"""A local folder pulled while another program changes it (pull50, attackb50): its files,
written long before the pull, and a progress callback that changes it once the first file
is staged (the pull copies one file at a time with ``jobs=1``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def old_files(src: Path, files: "dict[str, bytes]") -> None:
    """``src`` made, holding ``files`` (name -> bytes), dated long before the pull (no file
    hashed twice for being written within the clock's tick)."""
    src.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
        os.utime(src / name, (1e9, 1e9))


def once_staged(staged: Path, change: Callable[[], None]) -> "tuple[Callable, list]":
    """A pull's ``progress`` callback that calls ``change()`` once, as soon as ``staged``
    (the first file's place in DEST) exists, and the list it notes that in (empty: never)."""
    done: list = []

    def progress(label, total, initial):
        def arrived(n: int) -> None:
            if not done and staged.exists():
                done.append(n)
                change()
        return arrived

    return progress, done
