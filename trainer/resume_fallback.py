"""``--resume auto`` past checkpoints that load but are no state to train on.

A checkpoint can pass every check of its form (it loads, its sidecar vouches for its bytes)
and still fail the checks of its contents (:mod:`trainer.resume_checks`: NaN weights, an EMA
or optimizer state of another model). Before, ``--resume auto`` chose the newest such file
and the run refused to start, however often it was started again, although an older
checkpoint of the run was a good state. Now each candidate is vetted when it is chosen, on
rank 0 (:class:`Tried`): one that fails is named in one warning, with why, and kept as it
is (here and on Drive: only a copy fetched for the check is removed, Drive holding it), and
the next older one is tried, as for a checkpoint that cannot be read.

Bounded: :data:`MAX_TRIED` states at most (a file and its copies, ``last.pt`` beside
``epoch_NNN.pt``, are one state: skipped by md5 once one failed). Each costs a load of the
file (about 90 MB for YOLOv4-tiny) and, from Drive, its download; and a run whose newest
few states are all bad had gone wrong long before them: which older state to go back to
is then for a person to choose (``--resume PATH``). The refusal names what was tried.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Optional, Sequence, TypeVar

from trainer.errors import CheckpointError, UnusableCheckpointError
from trainer.resume_checks import REMEDY
from trainer.state import describe_run

logger = logging.getLogger(__name__)

#: States ``--resume auto`` vets at most: the newest autosave, the one before it (a run keeps
#: two: trainer.writer.LOCAL_AUTOSAVES) and the last epoch's checkpoint, the saves of about
#: one ``save_minutes`` interval; a run bad for longer needs a person's choice.
MAX_TRIED = 3

#: ``vet(state, path)`` raises UnusableCheckpointError (trainer.resume_checks.vetter).
Vet = Callable[[dict, str], None]

C = TypeVar("C")


class Tried:
    """The candidates ``--resume auto`` vetted and found unusable, for one decision."""

    def __init__(self, vet: Optional[Vet], run: Optional[str] = None):
        self.vet = vet
        self.run = run
        self.unusable: list[UnusableCheckpointError] = []
        self._md5s: set[str] = set()           # of the states found unusable
        self.passed: Optional[str] = None      # the first candidate that passed (this folder's,
                                               # before Drive's further on were looked at)
        self._here: list[tuple[str, str]] = []  # (path, md5) of this folder's found unusable

    def known_bad(self, md5: Optional[str]) -> bool:
        """Whether these bytes were found unusable already (under another name)."""
        return md5 is not None and md5.lower() in self._md5s

    def without_bad(self, found: Optional[Sequence[C]]) -> Optional[list[C]]:
        """``found`` (checkpoints with a ``sidecar``) less the states found unusable here:
        Drive's copy of a bad local file is the same bad state."""
        if found is None:
            return None
        return [c for c in found if not self.known_bad(getattr(c, "sidecar").md5)]

    def usable(self, state: dict, where: str, md5: Optional[str]) -> bool:
        """Vet the loaded ``state`` of the candidate ``where``: True when the run can go on from
        it; False (a warning, the first time) when not. Raises the refusal when
        :data:`MAX_TRIED` states were found unusable and this is one more to try."""
        if self.vet is None:
            return True
        if self.known_bad(md5):
            return False
        self.check_bound(where)
        try:
            self.vet(state, where)
        except UnusableCheckpointError as exc:
            self.unusable.append(exc)
            if md5 is not None:
                self._md5s.add(md5.lower())
                if not _on_drive(where):
                    self._here.append((where, md5.lower()))
            logger.warning("%s is no state to train on (%s); it is kept as it is, and --resume "
                           "auto tries the next older checkpoint", where, exc.why)
            return False
        self.passed = self.passed or where
        return True

    def here(self) -> tuple[tuple[str, str], ...]:
        """``(path, md5)`` of this folder's files found unusable (one name per state): what the
        run's first save moves aside (:meth:`trainer.saving.Checkpointer.keep_aside`)."""
        return tuple(self._here)

    def check_bound(self, where: str) -> None:
        """Raise the refusal when :data:`MAX_TRIED` states were found unusable: ``where`` is
        one more, not looked at (asked before a download from Drive, which it saves)."""
        if self.vet is not None and len(self.unusable) >= MAX_TRIED:
            refused = self.refusal(bounded=True, untried=where)
            assert refused is not None
            raise refused

    def refusal(self, *, bounded: bool = False,
                untried: Optional[str] = None) -> Optional[CheckpointError]:
        """The one-line refusal naming the states tried (None when none was found unusable):
        for one, the refusal restore gives; for more, each with why, and ``untried``, the
        next older candidate (the bound hit), with the exact option that goes on from it."""
        if not self.unusable:
            return None
        if len(self.unusable) == 1 and not bounded:
            return self.unusable[0]
        places = sorted({os.path.dirname(e.path) for e in self.unusable})
        names = "; ".join(f"{os.path.basename(e.path)} ({e.why})" for e in self.unusable)
        older = " (older ones were not tried)" if bounded else ""
        # REMEDY's "trainer status lists them" shows one checkpoint, the run's newest on
        # Drive (a bad one here), and --resume refuses a drive: path: name the one to try
        # next and the option that tries it, as the user types it.
        remedy = _next_step(untried, self.passed) if untried is not None else REMEDY
        return CheckpointError(
            f"--resume auto found no state to train on in the {len(self.unusable)} newest "
            f"checkpoints of {describe_run(self.run)} in {' and '.join(places)}{older}: "
            f"{names}; {remedy}")


def _next_step(where: str, passed: Optional[str] = None) -> str:
    """What goes on from ``where`` (a local path, or a ``drive:`` one: pulled first, as the
    CLI's refusal of ``--resume drive:...`` says), checked then as any ``--resume PATH``;
    and from ``passed``, a checkpoint further back that passed (this folder's, when Drive's
    further on were all bad)."""
    from drivestage import paths

    if paths.is_drive(where):
        name = where.rsplit("/", 1)[-1]
        how = (f"pull it (drivestage pull {where} ./weights) and run the same command with "
               f"--resume weights/{name}")
    else:
        how = f"run the same command with --resume {where}"
    back = (f"; {passed} passed the checks: --resume {passed} goes on from it, further back;"
            if passed is not None else ",")
    return (f"the next older one, {where}, was not looked at: to go on from it, {how} (it is "
            f"checked then){back} or start a new run in a new train.out_dir")


def _on_drive(where: str) -> bool:
    from drivestage import paths

    return paths.is_drive(where)
