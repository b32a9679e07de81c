"""What a test counts to show nothing was left open: this process's sockets, the files its
descriptors are open on, and drivestage's own threads (named ``drivestage-…``)."""
from __future__ import annotations

import os
import threading


def sockets() -> int:
    """How many sockets this process holds open (Linux: /proc/self/fd)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass   # (the listing's own descriptor, closed by then)
    return count


def open_targets() -> list[str]:
    """What this process's descriptors are open on (Linux: /proc/self/fd), as their links
    say: a file's path, ``socket:[…]``, ``pipe:[…]``."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue   # (the listing's own descriptor, closed by then)
    return out


def our_threads() -> set[threading.Thread]:
    """drivestage's threads alive now."""
    return {t for t in threading.enumerate() if t.name.startswith("drivestage-")}
