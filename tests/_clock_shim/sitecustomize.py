"""A Python process whose wall clock is wrong (tests only; attack48): with
``DRIVESTAGE_TEST_CLOCK_OFFSET`` = N (seconds, may be negative) in its environment and this
folder first on ``PYTHONPATH``, ``time.time``, ``time.time_ns`` and ``time.gmtime`` /
``localtime`` / ``ctime`` / ``strftime`` with no time given read the clock N seconds off, as
on a machine whose clock runs N ahead (or behind) the true one. With
``DRIVESTAGE_TEST_CLOCK_FILE`` naming a file, its content (a number of seconds) is the offset
from then on, read again whenever the file's mtime or size changes: a test steps the clock
of a running process (NTP stepping it, a VM resumed) by rewriting the file.
``time.monotonic`` and the boot clock stay true (no step of the wall clock moves them).
What this does not move: the kernel's stamps (a file's mtime and ctime: use ``os.utime``
where a test means them), ``datetime.now`` (a C read of the clock; nothing in drivestage's
rules reads it), and clocks of other processes.

Without root or libfaketime (not installed here): a child started with ``tests/_clock_shim``
on ``PYTHONPATH`` (:func:`tests._clock.skewed_env`)."""
from __future__ import annotations

import os
import time

_OFFSET = [float(os.environ.get("DRIVESTAGE_TEST_CLOCK_OFFSET") or 0.0)]
_FILE = os.environ.get("DRIVESTAGE_TEST_CLOCK_FILE") or ""
_SEEN: list = [None]   # (mtime_ns, size) of the file as last read

if _OFFSET[0] or _FILE:
    _time, _time_ns = time.time, time.time_ns
    _gmtime, _localtime, _ctime, _strftime = time.gmtime, time.localtime, time.ctime, \
        time.strftime

    def _offset() -> float:
        if _FILE:
            try:
                st = os.stat(_FILE)
                if (st.st_mtime_ns, st.st_size) != _SEEN[0]:
                    with open(_FILE) as fh:
                        _OFFSET[0] = float(fh.read().strip() or 0.0)
                    _SEEN[0] = (st.st_mtime_ns, st.st_size)
            except (OSError, ValueError):
                pass
        return _OFFSET[0]

    def _now() -> float:
        return _time() + _offset()

    def _now_ns() -> int:
        return _time_ns() + int(_offset() * 1e9)

    def _gm(secs=None):  # type: ignore[no-untyped-def]
        return _gmtime(_now() if secs is None else secs)

    def _local(secs=None):  # type: ignore[no-untyped-def]
        return _localtime(_now() if secs is None else secs)

    def _c(secs=None):  # type: ignore[no-untyped-def]
        return _ctime(_now() if secs is None else secs)

    def _strf(fmt, t=None):  # type: ignore[no-untyped-def]
        return _strftime(fmt, _localtime(_now()) if t is None else t)

    time.time, time.time_ns = _now, _now_ns
    time.gmtime, time.localtime, time.ctime, time.strftime = _gm, _local, _c, _strf
