"""Which checksum a download is verified with, and verifying a local file with it.

Drive keeps three checksums of a file's bytes: ``md5Checksum`` (every file with content),
and ``sha1Checksum`` and ``sha256Checksum`` (added in 2022; "if available": files from long
ago may lack them). Any of them proves the bytes are Drive's; what differs is the CPU time. A
download's hash runs beside its streams and decides when it ends (the hash can only follow
the contiguous front of the file, so most of it runs after the last byte arrived), and md5
has no hardware help: about 0.65 GB/s, where SHA-256 with the SHA extensions of recent x86
and ARM CPUs takes about 1.5 GB/s (and about half of md5's rate without them). So a
download is verified with SHA-256 where this machine hashes it faster than md5 and Drive
gave one, and with md5 otherwise; ``DRIVESTAGE_CHECKSUM=md5`` or ``sha256`` makes that
one preferred wherever the file has it. Stamps and partial files keep naming a version by
its md5: that is Drive's identity of the bytes, whichever checksum verified them.
"""
from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

from drivestage.errors import UsageError
from drivestage.interrupts import BackgroundThread
from drivestage.store import RemoteEntry

_READ_BLOCK = 4 << 20
#: The checksums a download can be verified with, as hashlib and Drive name them.
NAMES = ("md5", "sha256")
ENV = "DRIVESTAGE_CHECKSUM"
_TIMINGS = 5
_HEX = {"md5": re.compile(r"[0-9a-fA-F]{32}"), "sha256": re.compile(r"[0-9a-fA-F]{64}")}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checksum:
    """The checksum one file is verified with: its algorithm and Drive's hex value."""

    name: str       # "md5" or "sha256"
    expected: str   # lower-case hex

    def hasher(self) -> Any:
        """A fresh hashlib object of this algorithm."""
        return hashlib.new(self.name)

    def rate(self) -> float:
        """Bytes per second this machine hashes with it (measured once)."""
        return rate(self.name)


def preference() -> str:
    """``auto`` (the faster of the two here), ``md5`` or ``sha256``: from
    ``DRIVESTAGE_CHECKSUM``; any other value is a usage error naming it."""
    value = os.environ.get(ENV, "").strip().lower() or "auto"
    if value not in ("auto",) + NAMES:
        raise UsageError(f"{ENV}={os.environ.get(ENV)!r} is not a checksum drivestage knows: "
                         "use md5, sha256 or auto (the faster one on this machine)")
    return value


def choose(entry: RemoteEntry) -> Optional[Checksum]:
    """The checksum to verify ``entry``'s bytes with (None when Drive gave none).

    A value that is not hex digits of its algorithm's length is no checksum of it: passed
    over (a SHA-256 like that leaves the md5). When every value given is like that, the md5
    is still compared, so the download fails as a mismatch and is never left unverified."""
    offered = [(name, value) for name, value in (("md5", entry.md5), ("sha256", entry.sha256))
               if value is not None]
    have = {name: value.lower() for name, value in offered if _well_formed(name, value)}
    for name, value in offered:
        if name not in have:
            log.debug("%s: Drive's %s %r is not one; not verifying with it", entry.name, name,
                      value)
    if not have:
        return Checksum(*offered[0]) if offered else None
    wanted = preference()
    if wanted == "auto":
        wanted = "sha256" if rate("sha256") > rate("md5") else "md5"
    name = wanted if wanted in have else next(iter(have))
    return Checksum(name, have[name])


def _well_formed(name: str, value: Any) -> bool:
    return isinstance(value, str) and _HEX[name].fullmatch(value) is not None


def rate(name: str) -> float:
    """Bytes per second this machine hashes with ``name`` (measured once, a few ms): the
    checksum to choose, and the rate beyond which more download streams only wait for it.
    The best of a few timings, so that one preempted by another thread does not decide.
    A measurement :func:`measure_soon` started is waited for, not made twice at once."""
    early = _EARLY
    if early is not None and early.thread is not threading.current_thread():
        early.join()
    # One measurement at a time: two pulls of a program's threads (the library's, without
    # the CLI's measure_soon) timed each other's hashing, at half the rate, side by side.
    with _MEASURING:
        return _measured(name)


#: The thread :func:`measure_soon` started (None before).
_EARLY: Optional[BackgroundThread] = None
_MEASURING = threading.RLock()


def _forget_early() -> None:
    # A process forked while the thread measured has no such thread: its end, never set
    # there, held every download of the child for good (a Flag wait with no end).
    global _EARLY, _MEASURING
    _EARLY = None
    _MEASURING = threading.RLock()  # (held in the parent by the thread, maybe)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_early)


def measure_soon() -> None:
    """Measure, in a thread from now on, the rates :func:`choose` compares (md5's and
    SHA-256's, unless ``DRIVESTAGE_CHECKSUM`` names one: its rate alone). hashlib hashes a
    block without the GIL, so on a second core beside a command's start (its imports of the
    Drive client: about 0.2 s on one core), not 10-30 ms on the path to its first byte.
    Once per process; a wrong ``DRIVESTAGE_CHECKSUM`` is said by :func:`choose`, later."""
    global _EARLY
    if _EARLY is not None:
        return
    wanted = os.environ.get(ENV, "").strip().lower()
    names = (wanted,) if wanted in NAMES else NAMES

    def measure() -> None:
        for name in names:
            with _MEASURING:
                _measured(name)

    _EARLY = BackgroundThread(measure, "drivestage-hash-rate")
    _EARLY.start()


@functools.lru_cache(maxsize=None)
def _measured(name: str) -> float:
    block = bytes(1 << 20)
    hashlib.new(name, block[:65536]).digest()  # the first call loads the implementation
    best = float("inf")
    for _ in range(_TIMINGS):
        began = time.perf_counter()
        hashlib.new(name, block).digest()
        best = min(best, time.perf_counter() - began)
    return len(block) / max(best, 1e-6)


def file_digest(path: str, name: str) -> str:
    """Hex ``name`` digest of the file at ``path``, read in blocks."""
    with open(path, "rb", buffering=0) as fh:
        return _digest_of(fh, name)


def _digest_of(fh: io.FileIO, name: str) -> str:
    digest = hashlib.new(name)
    buf = memoryview(bytearray(_READ_BLOCK))  # reused: no fresh pages per block (heap.py)
    while True:
        n = fh.readinto(buf)
        if not n:
            return digest.hexdigest()
        digest.update(buf[:n])


def verify_file(path: str, entry: RemoteEntry) -> Optional[str]:
    """None when ``path`` holds ``entry``'s bytes (its size, and the checksum
    :func:`choose` picks); otherwise what differs."""
    return verify_held(path, entry)[0]


def verify_held(path: str,
                entry: RemoteEntry) -> tuple[Optional[str], Optional[os.stat_result]]:
    """:func:`verify_file`, and the identity of the file whose bytes were read (its
    descriptor's, at the end: what an extraction of it checks it opens, so that it reads
    the bytes verified, not a file renamed over ``path`` since)."""
    try:
        got_size = os.path.getsize(path)  # (first: a FIFO of another size is never opened)
    except OSError:
        return "missing", None
    if got_size != entry.size:
        return f"{got_size} bytes instead of {entry.size}", None
    try:
        fh = open(path, "rb", buffering=0)
    except OSError:
        return "missing", None
    with fh:
        st = os.fstat(fh.fileno())
        check = choose(entry)
        if check is not None:
            got = _digest_of(fh, check.name)
            if got != check.expected:
                return f"{check.name} {got} instead of {check.expected}", None
        after = os.fstat(fh.fileno())
    if (after.st_size, after.st_mtime_ns, after.st_ctime_ns) != \
            (entry.size, st.st_mtime_ns, st.st_ctime_ns):
        return "written while it was checked", None
    return None, after
