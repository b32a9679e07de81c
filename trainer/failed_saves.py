"""The line a run ends with when some of its saves failed mid-run (a full disk, a folder in
the way, a run folder that stopped answering for a moment) but its final save and, with
``drive.logs``, that save's upload are verified: before, each failure was one ERROR line far
up the log and the run ended 0 as a clean success, a ``best.pt`` of an epoch never saved
lost for good (trainatk47). The run still ends 0, as its final state is safe; a final save
that failed ends it 1 (:meth:`trainer.saving.Checkpointer._check_final_save`)."""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

from trainer.save_job import SaveJob


def failed(jobs: Sequence[SaveJob]) -> list[SaveJob]:
    """The jobs among ``jobs`` whose files were not all written."""
    return [job for job in jobs if job.error is not None]


def keep_watching(jobs: Sequence[SaveJob]) -> list[SaveJob]:
    """``jobs`` less those done well (their state is freed; a failed one's too, but the last
    epoch's): what :class:`trainer.saving.Checkpointer` keeps to count at the end."""
    return [job for job in jobs if job.error is not None or not (job.done.is_set() or job.dropped)]


def warning_line(jobs: Sequence[SaveJob], final: Optional[SaveJob], out_dir: str,
                 writer: Any) -> Optional[str]:
    """``N of this run's saves failed (…): …; the newest checkpoint verified is …``, or None
    when none did. ``final``: the last epoch's save (verified: the caller checked it)."""
    bad = [job for job in failed(jobs) if job is not final]
    if not bad:
        return None
    what = "; ".join(f"{', '.join(job.missing or job.names)} (at {job.position.label})"
                     for job in bad)
    newest = "none"
    if final is not None and final.written:
        newest = f"{os.path.join(out_dir, final.name)} ({final.position.label})"
    if writer is not None and writer.drive is not None:
        there = writer.safe_text(default="nothing verified")
        newest += f"; on {writer.drive.spec}: " + there.removeprefix("Drive: ")
    count = f"{len(bad)} of this run's saves" if len(bad) > 1 else "one of this run's saves"
    # (Not written, the caller said its own line about the final save: no claim of it here.)
    ends = "the final save is complete, so the run ends 0. " if final is not None and \
        final.written else ""
    return (f"{count} failed mid-run and {'were' if len(bad) > 1 else 'was'} not written: "
            f"{what} (the first error: {bad[0].error}); {ends}The newest checkpoint verified "
            f"is {newest}")
