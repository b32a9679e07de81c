"""The line a run ends with when some of its saves failed mid-run (a full disk, a folder in
the way, a run folder that stopped answering for a moment) but its final save and, with
``drive.logs``, that save's upload are verified: before, each failure was one ERROR line far
up the log and the run ended 0 as a clean success, a ``best.pt`` of an epoch never saved
lost for good (trainatk47). The run still ends 0, as its final state is safe; a final save
that failed ends it 1 (:meth:`trainer.saving.Checkpointer._check_final_save`)."""
from __future__ import annotations

import fnmatch
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


class RefusedPushes:
    """The pushes to Drive that failed mid-run (each retried by the next) and the saves each
    held back, by name: what :func:`refused_line` says at the end (trainres48). A save whose
    push failed and that reached Drive later is no failed save (written, and Drive holds it):
    counted among them, "N saves failed" would be false, and said by nothing, an outage that
    cost an autosave on Drive went unsaid."""

    def __init__(self) -> None:
        self.count = 0
        self.first: Optional[BaseException] = None
        self.held: list[str] = []

    def note(self, exc: BaseException, generation: dict[str, int], verified: dict[str, int],
             exclude: Sequence[str]) -> None:
        """A push failed: ``exc``; the saves written (``generation``, by name) that Drive did
        not hold as written (``verified``), less those never sent (``exclude``: last.pt)."""
        self.count += 1
        self.first = self.first if self.first is not None else exc
        for name, gen in sorted(generation.items()):
            if verified.get(name) != gen and name not in self.held and \
                    not any(fnmatch.fnmatch(name, pattern) for pattern in exclude):
                self.held.append(name)


def refused_line(writer: Any, out_dir: str) -> Optional[tuple[bool, str]]:
    """``(warn, line)``: the pushes of ``writer`` that failed mid-run, the first error, and
    of the saves they held back, which reached Drive later and which never did (warned of);
    None when none failed. Called once the final push is verified."""
    refused = getattr(writer, "refused", None)
    if refused is None or not refused.count:
        return None
    first = str(refused.first).splitlines()[0] if str(refused.first) else \
        type(refused.first).__name__
    head = (f"{'a push' if refused.count == 1 else f'{refused.count} pushes'} to "
            f"{writer.drive.spec} failed mid-run (the first error: {first}), retried by the next")
    it = "it" if refused.count == 1 else "they"
    if not refused.held:
        return False, f"{head}; no save was held back"
    later = [n for n in refused.held if writer.verified(n)]
    gone = "removed here before a push got through"
    never = [f"{n} ({'here only' if os.path.lexists(os.path.join(out_dir, n)) else gone})"
             for n in refused.held if n not in later]
    if not never:
        return False, f"{head}: the saves {it} held back reached Drive later ({', '.join(later)})"
    return True, (f"{head}: of the saves {it} held back, "
                  + (f"{', '.join(later)} reached Drive later; " if later else "")
                  + f"{', '.join(never)} never did")
