"""Keeping a transfer process's memory to what it holds, without paying for pages twice
(glibc malloc tuning).

A download receives every chunk as a fresh ``bytes`` object in a fetch thread and frees it in
the writer thread. glibc raises its mmap threshold to the largest block freed and then keeps
freed blocks of that size in the fetching thread's arena, so with four streams a 1 GiB pull
held up to 280 MB that nothing used any more (155-280 MB from run to run). With a fixed
threshold, large blocks are mmap'd and go back to the OS the moment they are freed, and peak
memory is what the transfer really holds (about 110 MB for that pull).

A fixed mmap threshold also stops glibc from adapting its *trim* threshold, which then stays
at 128 KiB: a thread's heap gave back every 1 MiB body piece the moment it was freed, and the
next piece faulted in fresh zeroed pages. With the hash's read-back blocks, that was
150,000-200,000 page faults per 1 GiB ``pull --extract`` (``ru_minflt``), and on a VM that
returns free memory to its host each such page costs kernel time again (1-3 s per GiB on the
development VM; see bench/_disk.py). The trim threshold is therefore fixed too: a heap keeps
up to that much freed memory for reuse, which is never more than it held at its peak, so the
peak itself does not move.

The cyclic garbage collector is told to run less often, too (:func:`collect_less_often`):
an extraction keeps a few objects per member alive (its zip entry, its record, its order),
and with Python's default thresholds a ``pull --extract`` of 20,000 members ran the young
collection 400 times and the full one, over every object of the process, 3-4 times: 0.16-0.19
s of the main thread's CPU, against 0.04-0.05 s with a young generation of 50,000.

In a process that is one ``drivestage pull`` (its console script, :func:`collect_in_bulk`),
the steps that make objects which live to the process's end (the Drive client's modules,
a zip's member list, the records after an extraction) run without the collector, and what
they made is then frozen out of its reach (:func:`bulk`): a 20,000-member ``pull
--extract`` ran 4 young collections over those objects, 0.04-0.07 s of one core in its
serial phases (a collection holds the GIL: the download's threads wait beside it).

And the interpreter's own last collection is skipped (:func:`skip_last_collection`): as a
process ends, Python runs one full collection over every object still alive (the Drive
client's discovery document, each member's entry and record): 0.1 s of CPU after the
command is done (0.11-0.12 s after a 5,000- or 20,000-member ``pull --extract``, 0.02-0.04
s without it, on the development machine), which only kept the shell (or a notebook cell's
``!drivestage``) waiting.
"""
from __future__ import annotations

import ctypes
import gc
import os
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from drivestage.fork_drop import free_in_forks

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3


def tune_for_transfers(threshold: int = 4 << 20, keep: int = 16 << 20) -> bool:
    """Have glibc serve blocks of ``threshold`` bytes or more by mmap (freed at once), and
    keep up to ``keep`` bytes of freed heap memory for reuse (no fresh pages per block).

    4 MiB: download chunks (8 MiB) and upload chunks (64 MiB) are above it; body pieces
    (1 MiB) and members stay below, in the heap, where reusing them costs no page faults.

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
    return bool(mallopt(_M_MMAP_THRESHOLD, int(threshold))) and \
        bool(mallopt(_M_TRIM_THRESHOLD, int(keep)))


#: Tracked objects allocated (net) between two young collections (Python's default: 700).
YOUNG = 50_000


def skip_last_collection() -> None:
    """Put every object alive now out of the cyclic collector's reach (``gc.freeze``), for
    a process whose work is done: its interpreter's final collection then has almost
    nothing to go through. Cycles among those objects are not collected any more; the
    process ends, and the system frees its memory (files are closed by then: drivestage
    closes what it opens, and logging flushes its handlers at exit all the same).

    For a process's entry point only, once its command has returned or raised."""
    gc.freeze()


def collect_less_often(young: int = YOUNG) -> None:
    """Run the cyclic garbage collector's young collection every ``young`` net allocations
    of tracked objects, not every 700 (the older generations' thresholds stay as they are):
    a 20,000-member ``pull --extract`` then runs a handful of young collections and no full
    one. What a cycle holds (memory, a file it keeps open) waits that many allocations longer
    to be freed: a few MB at most.

    Process-wide, like :func:`tune_for_transfers`: for a process's entry point only (a
    training process that calls drivestage keeps its own settings)."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young, older, oldest)


_lock = free_in_forks(threading.Lock())   # (a fork's child gets it free: attacksig42)
_BULK = False   # collect_in_bulk() was called: this process is one pull
_depth = 0      # bulk() steps running now (threads may overlap them)
_held = False   # bulk() disabled the collector, and the last step to end gives it back


class _Steps(threading.local):
    depth = 0   # this thread's bulk() steps running now (a fork's child keeps these only)


_mine = _Steps()


def collect_in_bulk() -> None:
    """Let :func:`bulk` steps hold the cyclic collector and freeze what they made: for a
    process that is one ``drivestage pull`` (its entry point only; a library caller's
    process keeps its collector as it set it)."""
    global _BULK
    _BULK = True


@contextmanager
def bulk() -> Iterator[None]:
    """Run a step that makes many objects which live to the process's end without the
    cyclic collector, then put every object alive out of its reach (``gc.freeze``) and
    enable it again: the next young collections go through what came after, not through
    those again. Only once :func:`collect_in_bulk` was called (and the collector is
    enabled): otherwise nothing changes. Steps may overlap (threads); the last to end
    freezes and enables.

    Garbage cycles made during the step are frozen with the rest (never collected; the
    process ends soon): a few hundred small objects in a pull's steps, which make no
    requests of their own (the download's threads beside a member list may retry meanwhile:
    its length bounds that)."""
    global _depth, _held
    # A Ctrl-C is raised where a call returns: the state is noted before each call that
    # changes the collector, and its end is in the ``finally`` (attack44: one landing between
    # the freeze and the enable left the collector disabled for good, and every later step
    # did nothing).
    entered = False
    try:
        with _lock:
            if _BULK and (_depth or gc.isenabled()):
                _depth += 1
                _mine.depth += 1
                entered = True
                if not _held:
                    _held = True
                    gc.disable()
        yield
    finally:
        if entered:
            with _lock:
                _depth -= 1
                _mine.depth -= 1
                if _depth == 0 and _held:
                    _held = False
                    try:
                        gc.freeze()
                    finally:
                        gc.enable()


def _in_child() -> None:
    """A fork's child runs only the thread that forked: the steps other threads were in
    never end there, and the child kept the collector disabled for its life (attack44)."""
    global _depth, _held
    _depth = _mine.depth
    if _held and not _depth:
        _held = False
        gc.enable()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)
