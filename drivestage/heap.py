"""Keeping a transfer process's memory to what it holds (glibc malloc tuning).

A download receives every chunk (8 MiB) as a fresh ``bytes`` object in a fetch thread and
frees it in the writer thread. glibc raises its mmap threshold to the largest block freed and
then keeps freed blocks of that size in the fetching thread's arena, so with four streams a
1 GiB pull held up to 280 MB that nothing used any more (155-280 MB from run to run). With a
fixed threshold, large blocks are mmap'd and go back to the OS the moment they are freed, and
peak memory is what the transfer really holds (about 120 MB for that pull).
"""
from __future__ import annotations

import ctypes
import sys

_M_MMAP_THRESHOLD = -3  # mallopt parameter, from glibc's <malloc.h>


def return_large_blocks_to_os(threshold: int = 4 << 20) -> bool:
    """Have glibc serve blocks of ``threshold`` bytes or more by mmap (freed at once).

    4 MiB: download chunks (8 MiB) and upload chunks (64 MiB) are above it; the emulator's
    1 MiB body pieces stay below, in the heap, where reusing them costs no page faults.

    Process-wide, so it belongs in a process's entry point, never in library code (torch,
    for one, relies on the default). False where the C library offers no ``mallopt``.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(threshold)))
