"""A Unix socket made at a test's path (a socket planted where a file was: attack51)."""
from __future__ import annotations

import os
import socket


def bind_at(sock: socket.socket, path) -> None:
    """``sock`` bound at ``path`` (by its folder's descriptor: a test's folder under xdist
    is past AF_UNIX's 108 bytes)."""
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        sock.bind(f"/proc/self/fd/{fd}/{path.name}")
    finally:
        os.close(fd)
