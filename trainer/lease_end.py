"""A released lease whose claim's removal was left to a renewal Drive holds: waited for at
this process's exit (bounded), so the claim does not outlive the trainer.

:meth:`trainer.lease.RunLease.release` waits at most ``RELEASE_WAIT_S`` (5 s) for a renewal
or a push's check under way; past that, the check removes the claim itself once its write
lands (a notebook's ``fit`` returns meanwhile: relaunch50). But a trainer *process* (``python
-m trainer train``, a script ending after ``fit``) exited right then, and its end killed the
daemon renewal thread mid-request: the claim stayed on Drive, and a trainer of the run on
another machine waited the whole stale period for it (2.5 min by default; relaunch51). Now
such a release is noted here (:func:`left`), and the interpreter's end (``atexit``: after
the non-daemon threads, while the daemon ones still run) waits for that check and removes
the claim, at most :data:`EXIT_WAIT_S` (nor past the claim's own stale period: by then it
is no one's anyway), saying one line where it waits past :data:`SAY_AFTER_S` and one where
it gives up (what another machine will see). A process killed by SIGKILL (the OOM killer)
runs none of this: its claim reads stale in ``stale_s``, and a trainer on this machine
takes it at once, its process ended (:func:`drivestage.run_claims.gone`)."""
from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING

from drivestage.interrupts import BackgroundThread
from trainer.lease_claims import span_text

if TYPE_CHECKING:
    from trainer.lease import RunLease

logger = logging.getLogger("trainer.lease")   # (its lines are the lease's)

#: The most this process's exit waits for a claim's removal left to a renewal under way
#: (Drive holds it): a network blip of a few seconds passes, a Drive gone for good does not
#: hold the exit past this (the claim is left, stale in ``stale_s``).
EXIT_WAIT_S = 30.0
#: Waiting longer than this, the exit says so (one line): it is not hung.
SAY_AFTER_S = 1.0

#: The released leases whose claim's removal was left to a check under way, each with the
#: pid that released it (a forked child inherits this list, not the leases' threads).
_LEFT: "list[tuple[weakref.ref[RunLease], int]]" = []
_LOCK = threading.Lock()
_registered = False


def left(lease: "RunLease") -> None:
    """Note ``lease`` (released) as one whose claim a check under way removes: this
    process's exit waits for that (:func:`at_exit`)."""
    global _registered
    with _LOCK:
        _LEFT[:] = [(ref, pid) for ref, pid in _LEFT if ref() is not None]
        _LEFT.append((weakref.ref(lease), os.getpid()))
        if not _registered:
            _registered = True
            atexit.register(at_exit)


def _removed(lease: "RunLease") -> None:
    """Once the check under way ends (it removes the claim itself), what it left."""
    with lease._lock:
        if lease._mine is not None:
            lease._remove()


def at_exit() -> None:
    """Wait (bounded) until each claim noted by :func:`left` is removed (the process ends)."""
    with _LOCK:
        leases = [ref() for ref, pid in _LEFT if pid == os.getpid()]
        _LEFT.clear()
    leases = [lease for lease in leases if lease is not None and lease._mine is not None]
    if not leases:
        return
    bound = min(EXIT_WAIT_S, min(lease.stale_s for lease in leases))
    until = time.monotonic() + bound
    for lease in leases:
        done = BackgroundThread(functools.partial(_removed, lease), "trainer-lease-end").start()
        if done.join(max(0.0, min(SAY_AFTER_S, until - time.monotonic()))):
            continue
        logger.warning("%s: waiting up to %s for Drive to answer this run's last lease "
                       "renewal, to remove its claim before this process exits",
                       lease.drive.spec, span_text(bound))
        if done.join(max(0.0, until - time.monotonic())):
            continue
        logger.warning("%s: exiting with the run's lease claim %s left on Drive (Drive did not "
                       "answer its last renewal within %s): a trainer of this run on another "
                       "machine waits up to %s for it to lapse; one on this machine takes it "
                       "at once", lease.drive.spec, lease.name, span_text(bound),
                       span_text(lease.stale_s))
