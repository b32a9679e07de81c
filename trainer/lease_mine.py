"""The run leases this process made (:class:`trainer.lease.RunLease`), told from their claims
on Drive: a notebook's cell run again finds its own process's claim there.

A trainer's stop whose uploads Drive held past the grace (a network blip on Colab) returned
from ``fit`` with its lease released, while its upload thread went on: the claim the
release could not remove (Drive unreachable), or one that late thread's push made anew,
stayed on Drive "renewed 0 s ago", naming this very process, and the cell run again waited
the whole stale period (2.5 min by default) for it (relaunch50). Its holder is known here
without a watch: a claim of this process (its pid and machine, and a token one of its leases
drew at random) whose lease was released is no one's at once (:func:`ended`). One whose
lease still holds (a ``fit`` running in another thread) is watched as another's, and
refuses the new run once seen renewed (a run of another machine is played so in the tests:
a lease of this process). A later run of this process fences an
ended run's late push before it claims (:func:`fence`): that push stops at its next commit,
with no request needed to know it. A claim of another process of this machine that has
ended is no one's at once already (:func:`drivestage.run_claims.gone`)."""
from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Optional

from drivestage.temps import namespace_tag

if TYPE_CHECKING:
    from trainer.lease import RunLease
    from trainer.lease_claims import Claim

logger = logging.getLogger("trainer.lease")   # (its lines are the lease's)

#: Why a claim of this process was taken at once (the take-over's line says it).
ENDED = "an earlier run in this process, ended: its claim could not be removed"

#: Who took an ended run's lease over, where its lease's line says it (:func:`later`).
LATER = "a later run in this process"

#: Each lease this process made: its token -> the lease (weakly: one collected unreleased is
#: told by the general rules).
_MADE: "dict[str, weakref.ref[RunLease]]" = {}
_LOCK = threading.Lock()


def made(lease: "RunLease") -> None:
    """Note ``lease`` as one of this process's (its token is drawn at random, here)."""
    with _LOCK:
        for token, ref in list(_MADE.items()):   # (the collected: a test makes hundreds)
            if ref() is None:
                del _MADE[token]
        _MADE[lease.token] = weakref.ref(lease)


def _mine(claim: "Claim") -> "tuple[bool, Optional[RunLease]]":
    """(Whether ``claim`` is one of this process's leases', that lease or None where it was
    collected.) By the token, and the pid and machine too: a forked child holds the same
    tokens and is another process."""
    if claim.pid != os.getpid() or claim.machine != namespace_tag():
        return False, None
    with _LOCK:
        ref = _MADE.get(claim.owner)
    return (ref is not None), (ref() if ref is not None else None)


def ended(claim: "Claim") -> bool:
    """Whether ``claim`` is one of this process's whose lease was released (its run ended).
    Not one whose lease still holds, nor one taken over or collected unreleased: the tests
    play two machines' trainers in one process, and such a one stands for a live trainer,
    or a frozen one, or a runtime that died (read stale by its silence, as another's)."""
    ours, lease = _mine(claim)
    return ours and lease is not None and lease.released


def later(claim: "Claim", lease: "RunLease") -> bool:
    """Whether ``claim``, which took ``lease`` over, is a later run's of this process:
    ``lease`` released (its run ended; its upload thread pushes on) and ``claim`` one of
    another lease of this process. Its line names that run, not "pid <this pid>", which
    read as another trainer of this machine (relaunch51)."""
    ours, taker = _mine(claim)
    return lease.released and ours and taker is not lease


def fence(lease: "RunLease", folder: Any) -> None:
    """Before ``lease`` claims ``folder``: every ended lease of this process on that folder
    (its run's upload thread may push on) is lost, said in its ``lost``: its next check or
    commit stops it, with no request (a release's guard lists at each commit, but a commit
    between that listing and the new claim would land)."""
    with _LOCK:
        others = [ref() for token, ref in _MADE.items() if token != lease.token]
    for old in others:
        if old is None or not old.released or old.lost is not None:
            continue
        was = old._folder
        if (was is not None and was.id == folder.id) or old.drive.spec == lease.drive.spec:
            old.lost = (f"{LATER} took the run's lease on "
                        f"{old.drive.spec} over: this trainer pushes nothing more there, its "
                        f"checkpoints stay in {old.drive.local_dir} only")
            logger.debug("%s", old.lost)
