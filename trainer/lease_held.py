"""The run's lease as a trainer takes it (:func:`held_folder`, rank 0's ``drive.logs``), and
the leases this process holds, released when the run ends (:func:`release_all`); split from
:mod:`trainer.lease`, which names both for its callers."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from drivestage.errors import DriveStageError

if TYPE_CHECKING:
    from trainer.lease import RunLease

logger = logging.getLogger("trainer.lease")   # (its lines are the lease's: said as before)

#: The leases this process holds (rank 0's one), released with the run folder's lock at the
#: end of :func:`trainer.engine.fit` (:meth:`trainer.run_lock.RunFolderLock.release`),
#: however the run ended: a notebook's next ``fit()`` in the same process, or another
#: machine's, finds no claim renewed.
_HELD: "list[RunLease]" = []


def held_folder(cfg, stop):
    """``drive.logs`` as a :class:`trainer.drive.DriveFolder` whose run lease this trainer
    holds (``drive.lease_minutes`` 0: none), renewed until the run ends; a lease taken
    over asks ``stop`` (a :class:`trainer.stopping.StopFlag`) for a stop."""
    from trainer.drive import DriveFolder, retention_policy
    from trainer.lease import RunLease
    from trainer.stopping import LEASE_LOST

    d = cfg.drive
    folder = DriveFolder(d.logs, cfg.train.out_dir,
                         retention_policy(d.keep_last, d.keep_best, d.max_bytes))
    if not d.lease_minutes:
        return folder
    folder.check_writable()   # (a folder shared read-only: that line, not a failed claim)
    lease = RunLease(folder, 60.0 * d.lease_minutes, take_over=d.take_over,
                     on_lost=lambda text: stop.request(LEASE_LOST, text))
    try:
        lease.acquire()
    except DriveStageError as exc:   # (Drive failing after its retries: trained as before)
        lease.release()   # (a claim made before the failure: removed where Drive lets it)
        logger.warning("could not take the run's lease on %s (%s): it is taken at the first "
                       "push that reaches Drive", d.logs, exc)
        lease.pending = True
        lease.lost = None
        lease._done.clear()
        _HELD.append(lease)
        folder.lease = lease
        return folder
    _HELD.append(lease)
    folder.lease = lease.start()
    return folder


def release_all() -> None:
    """Release every lease this process holds (the run ended)."""
    while _HELD:
        _HELD.pop().release()
