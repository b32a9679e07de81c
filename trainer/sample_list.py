"""The training list a checkpoint was saved from, and what a resume from another one does.

A resume in the middle of an epoch skips the samples the checkpoint had trained in that
epoch's order, a pure function of ``(seed, epoch)`` over the *list*
(:mod:`trainer.data.sampler`). With another list at the same path (an image's line removed,
a new version of ``data.drive_zip`` staged, a list cut short), that order is another one:
the rest of the epoch trained some samples twice and left others out, without a word (only a
changed ``data.train`` path was said). So every checkpoint holds the list's
:func:`fingerprint` (``train_samples``), and :func:`check` compares it on resume:

* another list in the middle of an epoch: refused in one line (exit 1) unless
  ``data.allow_change`` is set (then a warning, and the count of samples trained is skipped
  in the new list's order: the run's position, learning rate and autosave names go on as
  saved). Refused by default because an unattended resume (a reconnect, a restarted VM) on
  a dataset that changed by accident, half staged or another version, is worse trained on
  than stopped for: nothing is lost by the refusal, the checkpoint stays;
* another list at an epoch's end (the next order is drawn afresh over the new list): a
  warning;
* the same images in the same order with other boxes: a warning (the order holds).

The images are named relative to their common folder: the same dataset staged under another
``data.root`` (another machine) is the same list. Their bytes are not part of it: a damaged
image replaced with a good copy (:mod:`trainer.unreadable`) is the same list.
"""
from __future__ import annotations

import hashlib
import logging
import os
from typing import Any, Optional, Sequence

from trainer.errors import CheckpointError

logger = logging.getLogger(__name__)


def fingerprint(lines: Sequence[str]) -> dict:
    """``{"count", "images", "boxes"}`` of annotation ``lines``: their number, a digest of
    their images in order (relative to the images' common folder) and one of their boxes."""
    split = [line.split() for line in lines]
    paths = [os.path.normpath(parts[0]) if parts else "" for parts in split]
    try:
        base = os.path.commonpath({os.path.dirname(p) for p in paths if p}) if any(paths) else ""
    except ValueError:   # (absolute and relative paths mixed: named as they are)
        base = ""
    cut = len(base) + 1 if base and base != os.sep else len(base)
    images, boxes = hashlib.sha256(), hashlib.sha256()
    for path, parts in zip(paths, split):
        images.update(path[cut:].encode("utf-8", "replace") + b"\n")
        boxes.update(" ".join(parts[1:]).encode("utf-8", "replace") + b"\n")
    return {"count": len(lines), "images": images.hexdigest(), "boxes": boxes.hexdigest()}


def check(saved: Any, now: Optional[dict], pos: Any, path: str, allow: bool,
          meter: Any = None, main: bool = True) -> None:
    """Compare the list ``saved`` with (a checkpoint's ``train_samples``) with ``now`` for a
    resume at ``pos`` from ``path``: a refusal (:class:`CheckpointError`) or a warning (on
    rank 0, ``main``), as the module says. A checkpoint without one (before trainfault36)
    is taken as it comes."""
    if not isinstance(saved, dict) or now is None or not isinstance(saved.get("count"), int):
        return
    if saved.get("images") == now["images"] and saved["count"] == now["count"]:
        if saved.get("boxes") != now["boxes"] and main:
            logger.warning("%s was saved from the same images of the training list "
                           "(data.train) with other boxes; training goes on with the new ones",
                           path)
        return
    counts = (f"{saved['count']} images then, {now['count']} now" if saved["count"] !=
              now["count"] else f"{now['count']} images then and now, not the same ones in "
              "the same order")
    if not pos.epoch_iteration:
        if main:
            logger.warning("%s was saved from another training list (data.train; %s); "
                           "training goes on with the new one", path, counts)
        return
    epoch = pos.epoch + 1
    if not allow:
        raise CheckpointError(
            f"cannot resume from {path} in the middle of epoch {epoch}: the training list "
            f"(data.train) changed since it was saved ({counts}), and the rest of that epoch "
            "would be drawn from the new list in another order (samples trained twice, others "
            "left out); put the list back as it was, or resume with --set "
            "data.allow_change=true to go on with the new one")
    if main:
        seen = getattr(meter, "samples", None)
        trained = f"the {seen} samples it trained" if seen is not None else \
            "the samples it trained"
        logger.warning("%s was saved in the middle of epoch %d from another training list "
                       "(data.train; %s): data.allow_change is set, so the rest of that epoch "
                       "is drawn from the new list (%s skipped in the new list's order)",
                       path, epoch, counts, trained)


def check_seed(saved: Any, now: int, pos: Any, path: str, allow: bool, main: bool = True) -> None:
    """As :func:`check` for ``train.seed`` (of ``saved``, the checkpoint's config): the
    epoch's order is drawn from it as from the list, so another seed in the middle of an
    epoch is another order (only warned of, as a watched key, before attacktrain36)."""
    train = saved.get("train") if isinstance(saved, dict) else None
    saved = train.get("seed") if isinstance(train, dict) else None
    if not pos.epoch_iteration or isinstance(saved, bool) or not isinstance(saved, int) or \
            saved == now:
        return
    epoch = pos.epoch + 1
    if not allow:
        raise CheckpointError(
            f"cannot resume from {path} in the middle of epoch {epoch}: train.seed changed "
            f"since it was saved ({saved} then, {now} now), and the rest of that epoch would be "
            "drawn in another order (samples trained twice, others left out); put train.seed "
            "back as it was, or resume with --set data.allow_change=true to go on with the new "
            "order")
    if main:
        logger.warning("%s was saved in the middle of epoch %d with train.seed %d: "
                       "data.allow_change is set, so the rest of that epoch is drawn in the "
                       "order of train.seed %d", path, epoch, saved, now)


def resumed_epoch(loader: Any, epoch: int, start: int, seen: Optional[int], run: Any) -> int:
    """:func:`trainer.data.dataset.set_loader_epoch` for the ``epoch`` a run resumes in (or
    any other, ``start`` 0), first saying where a checkpoint from before train27 (``seen``
    None: its samples of the epoch not counted, so its ``start`` steps are skipped at this
    loader's batch) holds more steps of the epoch than the epoch has: the skip passed the
    epoch's end and its rest was left out without a word (attackb51's left).

    Said, not refused: such a file holds no record of its list either (``train_samples``,
    from trainfault36 on), so another list cannot be told from a larger ``train.batch_size``
    (a watched key, warned of: the batches done are skipped at the new size) or a damaged
    file, and a shorter list is what ``data.allow_change`` lets a resume go on over, the skip
    clamped to it, as this one is (sweep51). Checkpoints that count their samples are checked
    as they are loaded (:func:`trainer.state.bookkeeping_problem`)."""
    from trainer.data.dataset import set_loader_epoch

    sampler, batch = getattr(loader, "sampler", None), loader.batch_size or 1
    per_process = getattr(sampler, "num_samples", None)
    if start and seen is None and isinstance(per_process, int):
        steps = per_process // batch if loader.drop_last else -(-per_process // batch)
        if start > steps and run.info.is_main:
            logger.warning(
                "%s holds %d steps of epoch %d done, more than the %d it has with this training "
                "list (data.train) at %d sample%s a step on each of %d process%s: saved by a "
                "trainer that did not count its samples, from a longer list, with a smaller "
                "batch, or damaged; the rest of epoch %d is skipped (stop and put the list and "
                "train.batch_size back as they were to train it)", run.resumed_from, start,
                epoch + 1, steps, batch, "" if batch == 1 else "s", run.info.world_size,
                "" if run.info.world_size == 1 else "es", epoch + 1)
    return set_loader_epoch(loader, epoch, start=start, seen=seen)
