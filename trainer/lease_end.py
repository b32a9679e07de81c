"""A lease's release, bounded (:func:`release`), and a released lease whose claim's removal
was left to a renewal Drive holds, or to a removal Drive holds: waited for at this process's
exit (bounded), so the claim does not outlive the trainer.

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
takes it at once, its process ended (:func:`drivestage.run_claims.gone`).

The removal itself (a ``files.delete``, or the "released" write where Drive refuses it) ran
in the release, unbounded: Drive holding that request, ``fit`` waited for it, the HTTP
timeout times each retry (8 of 120 s by default, with their backoff: about 17 min; lease51b).
It now runs in a thread of its own, within the release's one bound; past it, one line says
so and the exit waits for it as for a renewal."""
from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Iterator, Optional

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
#: A release's bound where the last renewal Drive answered still proves the lease (a normal
#: end's, most often): the renewal under way, and the removal, are six or seven requests
#: (the claim's write, the arbiter's read and swap, the removal's read and delete): 0.7-1.5 s
#: at 0.2 s each on a loaded machine (none of 24 releases left at 2 s, 4 of 8 at 1 s:
#: lease52). One Drive holds past it is left as past ``RELEASE_WAIT_S`` (5 s): the check
#: removes the claim once its write lands, the exit waits for it; its answer changes nothing
#: meanwhile (no trainer takes a proved lease over as stale).
PROVED_WAIT_S = 2.0

#: What a release left its claim's removal to, as the exit's lines name it: a check under
#: way (a renewal), or the removal's own request.
RENEWAL, REMOVAL = "renewal", "removal"
#: Each one's words: what Drive did not answer, in the exit's first line and in its last.
_ASKED = {RENEWAL: ("this run's last lease renewal, to remove its claim", "its last renewal"),
          REMOVAL: ("the removal of this run's lease claim", "its removal")}

#: The released leases whose claim's removal was left to a check under way (or to itself),
#: each with the pid that released it (a forked child inherits this list, not the leases'
#: threads) and what it was left to.
_LEFT: "list[tuple[weakref.ref[RunLease], int, str]]" = []
_LOCK = threading.Lock()
_registered = False
#: The leases whose claim's removal is under way (:func:`removing`): what the exit's lines
#: name, whatever the release left it to (a lock taken just after the release's bound, a
#: check's own removal once its write landed: named "renewal", lease51b).
_REMOVING: "weakref.WeakSet[RunLease]" = weakref.WeakSet()


@contextlib.contextmanager
def removing(lease: "RunLease") -> Iterator[None]:
    """While ``lease``'s claim is being removed (:func:`trainer.lease_write.remove`)."""
    _REMOVING.add(lease)
    try:
        yield
    finally:
        _REMOVING.discard(lease)


def release(lease: "RunLease", bound: float) -> None:
    """:meth:`trainer.lease.RunLease.release`: set ``released``, stop the renewals, and wait
    for the renewal thread, a check under way and then the claim's removal, ``bound`` seconds
    in all (:data:`PROVED_WAIT_S` at most where the lease is proved as it ends). Past it, the
    removal goes on in a thread of its own: the check under way does it once its write lands
    (:meth:`~trainer.lease.RunLease.check`), or the removal Drive holds ends (said in one
    line); this process's exit waits for either (:func:`left`)."""
    if lease._proved():   # (asked before ``released``: a normal end's held renewal waited 5 s)
        bound = min(bound, PROVED_WAIT_S)
    lease.released, lease._sure_until = True, 0.0
    lease._done.set()
    until = time.monotonic() + bound   # (every wait together: one bound)
    if lease._thread is not None:
        lease._thread.join(timeout=bound)
    took, failed = threading.Event(), []   # (the lock taken: the removal's own request)
    removal = BackgroundThread(functools.partial(_removed, lease, took, failed),
                               "trainer-lease-release").start()
    if removal.join(max(0.0, until - time.monotonic())):
        if failed:   # (not Drive's refusal, which is said and left: a fault, as before)
            raise failed[0]
        return
    if not took.is_set():
        logger.debug("%s: the lease's release left to the check under way", lease.drive.spec)
        left(lease, RENEWAL)   # (a process that exits now waits for it: relaunch51)
        return
    if lease.pending:   # (a failed start's claim: the run's next line says the lease is not
        # taken; this one, before it, read as the run's end: lease51b)
        logger.debug("%s: the removal of the claim %s goes on in the background",
                     lease.drive.spec, lease.name)
        left(lease, REMOVAL)
        return
    logger.warning("%s: Drive did not answer the removal of this run's lease claim %s within "
                   "%s: it goes on in the background; where it never lands, a trainer of this "
                   "run on another machine waits up to %s for it to lapse (one on this machine "
                   "takes it at once)", lease.drive.spec, lease.name, span_text(bound),
                   span_text(lease.stale_s))
    left(lease, REMOVAL)


def left(lease: "RunLease", what: str = RENEWAL) -> None:
    """Note ``lease`` (released) as one whose claim a check under way removes (``what``:
    :data:`RENEWAL`), or whose removal Drive holds (:data:`REMOVAL`): this process's exit
    waits for that (:func:`at_exit`)."""
    global _registered
    with _LOCK:
        _LEFT[:] = [entry for entry in _LEFT if entry[0]() is not None]
        _LEFT.append((weakref.ref(lease), os.getpid(), what))
        if not _registered:
            _registered = True
            atexit.register(at_exit)


def _removed(lease: "RunLease", took: Optional[threading.Event] = None,
             failed: "Optional[list[BaseException]]" = None) -> None:
    """Once the check under way ends (it removes the claim itself), what it left; ``took``
    set once the lock is taken, what raised put in ``failed``."""
    try:
        with lease._lock:
            if took is not None:
                took.set()
            if lease._mine is not None:
                lease._remove()
    except Exception as exc:
        if failed is None:
            raise
        failed.append(exc)


def at_exit() -> None:
    """Wait (bounded) until each claim noted by :func:`left` is removed (the process ends)."""
    with _LOCK:
        noted = [(ref(), what) for ref, pid, what in _LEFT if pid == os.getpid()]
        _LEFT.clear()
    leases = [(lease, what) for lease, what in noted
              if lease is not None and lease._mine is not None]
    if not leases:
        return
    bound = min(EXIT_WAIT_S, min(lease.stale_s for lease, _ in leases))
    until = time.monotonic() + bound
    for lease, what in leases:
        done = BackgroundThread(functools.partial(_removed, lease), "trainer-lease-end").start()
        if done.join(max(0.0, min(SAY_AFTER_S, until - time.monotonic()))):
            continue
        logger.warning("%s: waiting up to %s for Drive to answer %s before this process exits",
                       lease.drive.spec, span_text(bound), _ASKED[_held(lease, what)][0])
        if done.join(max(0.0, until - time.monotonic())):
            continue
        unanswered = _ASKED[_held(lease, what)][1]
        logger.warning("%s: exiting with the run's lease claim %s left on Drive (Drive did not "
                       "answer %s within %s): a trainer of this run on another machine waits "
                       "up to %s for it to lapse; one on this machine takes it at once",
                       lease.drive.spec, lease.name, unanswered, span_text(bound),
                       span_text(lease.stale_s))


def _held(lease: "RunLease", what: str) -> str:
    """What Drive holds now of ``lease``'s end: its removal where one is under way, else
    ``what`` (as the release left it)."""
    return REMOVAL if lease in _REMOVING else what
