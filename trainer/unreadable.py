"""A file of the dataset that cannot be read, met while training: the run saves, then stops.

An image cut short (a copy or download that did not finish), one gone from a staged dataset
on a mount that lost it, an annotation XML that no longer parses: met in the middle of an
epoch, its :class:`~trainer.errors.DataError` ended the run with one line and nothing saved
since the last autosave or epoch (up to ``train.save_minutes``; one met by the evaluation
lost the whole epoch, saved only after it). The state of the last step is sound there, so the
error now asks for a stop (:data:`trainer.stopping.UNREADABLE`), as a DataLoader worker's
death does (:mod:`trainer.worker_deaths`: the same ways, a process alone or under torchrun):
the state saved as a SIGTERM's stop saves it, pushed, then one line that names the file and
what to do, exit 1. Taken as such is what the dataset's readers raise (a worker's error, re-
raised in this process, keeps its words: :class:`~trainer.errors.TrainerError`).

Skipping such files instead (a bound on how many) was left out on purpose: the resume reads
the same batch again once the file is fixed, and a run that trained past unreadable images
would have learnt from another dataset than the one it names, without a word in its files.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from trainer.errors import CacheBudgetError, DataError

#: The config's annotation files (data.train, data.val) of the run training now: where a
#: stop's line looks for the unreadable image's line (:func:`note`).
_lists: tuple[str, ...] = ()


def note(cfg: Any) -> None:
    """Remember the annotation files of ``cfg`` (a run's config) for a stop's line."""
    global _lists
    data = getattr(cfg, "data", None)
    _lists = tuple(p for p in (getattr(data, "train", None), getattr(data, "val", None))
                   if isinstance(p, str))


#: How the readers' errors begin (trainer.data.images, .voc, .cache): a file of the dataset.
#: Other DataErrors met there (no room in /dev/shm for a spawned worker's cache) go on as
#: before: no file is to blame, and the line would send the user looking for one.
_IMAGE = ("cannot read image ", "the image cache entry ")
_ANNOTATION = ("annotation ", "cannot read annotation ")


def met(stop: Any, exc: BaseException) -> bool:
    """Ask ``stop`` for the stop when ``exc`` is a dataset file that cannot be read (its words
    kept for the line); whether it is one. A cache over its budget is no such file."""
    from trainer.stopping import UNREADABLE

    words = " ".join(str(exc).split())
    if not isinstance(exc, DataError) or isinstance(exc, CacheBudgetError) or \
            not words.startswith(_IMAGE + _ANNOTATION):
        return False
    stop.request(UNREADABLE, detail=words)
    return True


def what(detail: Optional[str]) -> str:
    """The stop's name: ``an unreadable image`` (or ``annotation``)."""
    return "an unreadable annotation" if (detail or "").startswith(_ANNOTATION) \
        else "an unreadable image"


def advice(detail: Optional[str]) -> str:
    """What the stop's line adds: the reader's words and what to do before the resume."""
    words = str(detail or "a file of the dataset could not be read").rstrip(".")
    if words.startswith(_IMAGE[1]):   # (its words say what to do: delete it)
        return f" ({words})"
    listed = _listed_in(words, _lists)
    remove = (f"; or remove its line from the annotation file {listed} and resume with --set "
              "data.allow_change=true (the rest of the epoch is drawn from the new list)"
              if listed else "")
    return f" ({words}: replace that file with a readable copy before you resume{remove})"


def _listed_in(words: str, files: Sequence[str]) -> Optional[str]:
    """The first of ``files`` (annotation files) with a line for the image a reader's words
    name (``cannot read image PATH: why``; a path may hold ": " itself)."""
    head = "cannot read image "
    if not words.startswith(head):
        return None
    rest = words[len(head):]
    for name in files:
        try:
            with open(name, encoding="utf-8", errors="replace") as fh:
                paths = {line.split(maxsplit=1)[0] for line in fh if line.strip()}
        except OSError:   # (a split name, not a file; or gone)
            continue
        cut = rest.find(": ")
        while cut > 0:
            if rest[:cut] in paths:
                return name
            cut = rest.find(": ", cut + 1)
    return None


def ground_truth(dataset: Any, stop: Any) -> Any:
    """``dataset.ground_truth()`` (the evaluation's, read from the VOC XML), an unreadable
    annotation asking ``stop`` for the stop (:class:`~trainer.stopping.StopRequested`: the
    epoch trained is saved, as for a SIGTERM during the evaluation)."""
    from trainer.stopping import StopRequested

    try:
        return dataset.ground_truth()
    except DataError as exc:
        if stop is None or not met(stop, exc):
            raise
    raise StopRequested(stop.name)
