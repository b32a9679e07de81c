"""Room in the run folder for what the run writes next, checked before a single step is trained.

A checkpoint holds the model, its EMA and the optimizer's state: about 90 MiB for
YOLOv4-tiny. An epoch's save writes ``last.pt`` and, when the policy says so,
``epoch_NNN.pt`` and ``best.pt`` (copies of it). Without this check a run on a small disk
(Kaggle's working folder, a spot VM's boot disk) trained its first epoch and then lost it:
the save met a full disk. The estimate of a checkpoint's size (:func:`checkpoint_bytes`) is
the bytes of its tensors plus what ``torch.save`` adds around each; measured against real
checkpoints of the tiny test model and of YOLOv4-tiny on 20 classes, it is a little above
the file's size (tests/test_trainer22_room.py).

Beside the epoch's files the run writes, on the same disk (counted since trainer23):

* with ``train.save_minutes``, the autosaves: the newest two are kept in the run folder
  (:data:`trainer.writer.LOCAL_AUTOSAVES`), beside the epoch's files, each a checkpoint of
  the same size (a third exists while one is written mid-epoch: never more at once than
  two beside the epoch's files); with ``drive.logs`` twice that, as the two a slow push is
  sending stay until it ends (:mod:`trainer.autosaves`). Those already in the folder up to
  the start take their space already; those numbered above it (passed over by a resume,
  left by a branch) stay beside the run's own (:func:`_autosaves_beside`).
* with ``data.cache=disk``, the decoded images, written into ``data.root/image-cache``
  before the first step: their bytes from the images' headers, as the cache computes them
  (:func:`trainer.data.cache.plan_disk_cache`), when the cache is on the run folder's disk
  and would be written (it leaves :data:`~trainer.data.cache.DISK_RESERVE` free, or is not
  made). So it can crowd out only checkpoints needing more than that reserve; below it,
  the images are not even read for the estimate.
"""
from __future__ import annotations

import os
import shutil
from typing import Any, Callable, Collection, Optional, Sequence

import torch

from drivestage.sizes import format_size
from trainer.local_retention import epoch_files
from trainer.state import AUTOSAVE_NAME

#: What ``torch.save`` writes around each tensor (its zip entry's headers, the 64-byte
#: alignment, its pickled reference), rounded up.
PER_TENSOR = 512
#: The rest of a checkpoint: config, history, RNG states, class names (measured: < 100 KiB).
FIXED = 1 << 20
#: That rest as the file-size limit counts it (:func:`file_limit_text`): room on a disk is
#: better overcounted, but a limit between the file's size and an estimate a whole MiB above
#: it refused a run whose every checkpoint fitted (attackstream40).
FIXED_IN_FILE = 256 << 10


def _tensor_bytes(obj: Any) -> tuple[int, int]:
    """``(bytes, tensors)`` of every tensor in a nested state structure."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size(), 1
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    size = count = 0
    for v in items:
        s, c = _tensor_bytes(v)
        size, count = size + s, count + c
    return size, count


def _optimizer_slots(optimizer: torch.optim.Optimizer) -> int:
    """Tensors the optimizer keeps per parameter once it has stepped (its state is empty
    before the first step, and the first save comes after it)."""
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        return 3 if any(g.get("amsgrad") for g in optimizer.param_groups) else 2
    if isinstance(optimizer, torch.optim.SGD):
        return 1 if any(g.get("momentum") for g in optimizer.param_groups) else 0
    return 2


def checkpoint_bytes(model: torch.nn.Module, ema: Any, optimizer: torch.optim.Optimizer) -> int:
    """About how many bytes a checkpoint of this run takes on disk (never much less)."""
    size, count = _tensor_bytes(model.state_dict())
    if ema is not None:
        s, c = _tensor_bytes(ema.state_dict())
        size, count = size + s, count + c
    if optimizer.state:   # resumed: its real state
        s, c = _tensor_bytes(optimizer.state_dict()["state"])
    else:
        params = [p for g in optimizer.param_groups for p in g["params"]]
        slots = _optimizer_slots(optimizer)
        s = slots * sum(p.numel() * p.element_size() for p in params) + 4 * len(params)
        c = (slots + 1) * len(params)
    return size + s + (count + c) * PER_TENSOR + FIXED


def epoch_save_names(cfg: Any, epochs_done: int) -> list[str]:
    """The files the next epoch's save writes (as :class:`trainer.saving.Checkpointer` names
    them), ``best.pt`` whenever that epoch is evaluated (it may improve)."""
    t = cfg.train
    epoch = epochs_done + 1
    names = ["last.pt"]
    if epoch % t.save_period == 0 or epoch == t.epochs:
        names.append(f"epoch_{epoch:03d}.pt")
    if epoch % t.eval_period == 0 or epoch == t.epochs:
        names.append("best.pt")
    return names


def later_files(cfg: Any, epochs_done: int, names: Sequence[str],
                aside: Collection[str] = ()) -> tuple[list[str], bool, bool]:
    """What the run writes after the next epoch's save of ``names``, by its last epoch, that is
    not in ``train.out_dir`` yet: ``(epoch files, best.pt, a temporary file)``. Without
    ``train.keep_local`` (:func:`kept_at_once` with it) the epoch files are never deleted here (``drive.keep_last`` prunes Drive only: the run folder
    keeps every ``epoch_NNN.pt``), so they pile up over a run; ``best.pt`` comes at an
    evaluation (the last epoch always evaluates); the temporary file is the one beside a file
    a later save replaces (``last.pt``, every epoch), counted when the next save has none."""
    t, out_dir = cfg.train, cfg.train.out_dir

    def there(name: str) -> bool:
        return _there(out_dir, name, aside)

    epochs = [f"epoch_{e:03d}.pt" for e in range(epochs_done + 2, t.epochs + 1)
              if e % t.save_period == 0 or e == t.epochs]
    new = [n for n in epochs if not there(n)]
    more = epochs_done + 1 < t.epochs
    best = more and "best.pt" not in names and not there("best.pt")
    replaced = any(there(n) for n in names)
    return new, best, more and not replaced


def kept_at_once(cfg: Any, epochs_done: int, epochs: Sequence[str]) -> int:
    """How many of the new ``epochs`` files (:func:`later_files`) need room of their own. All
    of them without ``train.keep_local``; with N, the run folder holds N + 1 epoch files at
    once (the newest N and the one just written, before the oldest goes:
    :mod:`trainer.local_retention`; more only while Drive has not verified the older ones),
    those of the run already there (up to ``epochs_done``) among them, and the first new one
    is written before any goes."""
    keep = getattr(cfg.train, "keep_local", 0)
    if not keep or not epochs:
        return len(epochs)
    here = sum(1 for e in epoch_files(cfg.train.out_dir).values() if e <= epochs_done)
    return min(len(epochs), max(1, keep + 1 - here))


def _later_text(cfg: Any, files: tuple[list[str], bool, bool], epochs_done: int) -> str:
    """``, and by epoch 10 the run adds 7 more of that size (epoch_002.pt to epoch_010.pt: 5
    files, train.save_period 2; best.pt; a temporary file …), none deleted here (…)``."""
    epochs, best, temp = files
    kept = kept_at_once(cfg, epochs_done, epochs)
    count = kept + best + temp
    if not count:
        return ""
    parts = []
    keep = getattr(cfg.train, "keep_local", 0)
    if epochs:
        span = epochs[0] if len(epochs) == 1 else f"{epochs[0]} to {epochs[-1]}"
        at_once = (f", {kept} of them at once: train.keep_local {keep} deletes the older ones"
                   if keep and kept < len(epochs) else "")
        parts.append(f"{span}: {len(epochs)} file{'s' if len(epochs) != 1 else ''}, "
                     f"train.save_period {cfg.train.save_period}{at_once}")
    if best:
        parts.append("best.pt")
    if temp:
        parts.append("a temporary file beside a file a save replaces")
    none = ", none deleted here (drive.keep_last prunes Drive only)" if epochs and not keep else ""
    return (f", and by epoch {cfg.train.epochs} the run adds {count} more of that size "
            f"({'; '.join(parts)}){none}")


def _fewer(cfg: Any, epochs: Sequence[str]) -> str:
    """The remedy that keeps fewer epoch files, when the run adds some."""
    if not epochs:
        return ""
    if getattr(cfg.train, "keep_local", 0):
        return ", or raise train.save_period or lower train.keep_local"
    return (", or raise train.save_period, or set train.keep_local (the newest epoch files "
            "kept here)")


def _archive(cfg: Any) -> str:
    """The remedy that frees the dataset archive a pull kept in ``data.root`` beside its
    members, when it lies on the run folder's disk: the next start's pull with
    ``data.keep_archive=false`` removes it (its members stay)."""
    from drivestage import stamps
    from drivestage.errors import DriveStageError

    d = getattr(cfg, "data", None)
    if not getattr(d, "drive_zip", None) or not getattr(d, "keep_archive", False):
        return ""
    try:
        kept = stamps.kept_archives(d.root)
    except (OSError, DriveStageError):
        return ""     # an unreadable state folder: the pull itself will say why
    disk, here, size = _disk(cfg.train.out_dir), [], 0
    for path in kept:
        try:
            st = os.stat(path)
        except OSError:
            continue      # removed since: nothing to free
        if st.st_dev == disk:
            here.append(os.path.basename(path))
            size += st.st_size
    if not here:
        return ""
    names = ", ".join(here)
    return (f", or set data.keep_archive=false (the next start removes the dataset archive "
            f"{names} from {d.root} once its members are in place: {format_size(size)})")


def _autosaves_beside(cfg: Any, resumed_at: Optional[int] = None) -> int:
    """Autosaves the run keeps beside the epoch's files that are not in the run folder yet.
    Only those numbered up to ``resumed_at`` (the start's iteration) are the run's own, which
    its next ones replace: the writer leaves those above alone (a resume past bad autosaves,
    a branch), and the run's two come on top of them."""
    from trainer.writer import LOCAL_AUTOSAVES

    if not cfg.train.save_minutes:
        return 0
    # With drive.logs, those a push under way may be sending stay until it ends, beside the
    # newest ones written meanwhile (trainer.autosaves).
    kept = LOCAL_AUTOSAVES * (2 if getattr(getattr(cfg, "drive", None), "logs", None) else 1)
    try:
        have = sum(1 for n in os.listdir(cfg.train.out_dir) for m in [AUTOSAVE_NAME.match(n)]
                   if m is not None and (resumed_at is None
                                         or int(m.group("iteration")) <= resumed_at))
    except OSError:
        have = 0
    return max(0, kept - have)


def _there(out_dir: str, name: str, aside: Collection[str]) -> bool:
    """Whether ``name`` is in the run folder for the run's saves: not when the run's first save
    moves it aside (``aside``: a bad state ``--resume auto`` passed over,
    :meth:`trainer.saving.Checkpointer.keep_aside`; its bytes stay on the disk, so the
    run's file of that name needs room of its own)."""
    return name not in aside and os.path.exists(os.path.join(out_dir, name))


def needed_bytes(cfg: Any, names: list[str], size: int, resumed_at: Optional[int] = None,
                 epochs_done: Optional[int] = None, aside: Collection[str] = ()) -> int:
    """The most the run writes in ``train.out_dir``: the next epoch's save of ``names`` (each
    new file, plus one temporary file beside a file it replaces: written in full, then
    renamed over it; the copies are made one after the other, so one such temporary file at
    a time), the autosaves kept beside them (:func:`_autosaves_beside`) and, given
    ``epochs_done``, what the run adds by its last epoch (:func:`later_files`: the epoch
    files pile up; before trainer24 only the next epoch's were counted)."""
    out_dir = cfg.train.out_dir
    new = [n for n in names if not _there(out_dir, n, aside)]
    files = len(new) + (1 if len(new) < len(names) else 0)
    if epochs_done is not None:
        epochs, best, temp = later_files(cfg, epochs_done, names, aside)
        files += kept_at_once(cfg, epochs_done, epochs) + best + temp
    return size * (files + _autosaves_beside(cfg, resumed_at))


def _disk(path: str) -> Optional[int]:
    """The device of the file system ``path`` is (or would be) on: its nearest existing folder."""
    path = os.path.abspath(path)
    while True:
        try:
            return os.stat(path).st_dev
        except OSError:
            parent = os.path.dirname(path)
            if parent == path:
                return None
            path = parent


def cache_folder(cfg: Any) -> str:
    """Where ``data.cache=disk`` writes (as :func:`trainer.engine._datasets` sets it)."""
    return os.path.join(cfg.data.root, "image-cache")


def cache_bytes(cfg: Any, train_lines: Sequence[str], val_lines: Sequence[str], *, free: int,
                checkpoints: int) -> int:
    """The bytes ``data.cache=disk`` writes on the run folder's disk before the first step
    (the training images' cache, then the validation images'), each only if it fits the
    cache's own budget (else it is not made: it writes nothing). 0 when the cache cannot
    crowd out ``checkpoints`` bytes of saves: it always leaves ``DISK_RESERVE`` free, so
    then the images are not read (each is read and hashed once for its entry's name)."""
    from trainer.data.cache import DISK_RESERVE, plan_disk_cache
    from trainer.data.voc import parse_annotation_line

    folder = cache_folder(cfg)
    if cfg.data.cache != "disk" or checkpoints <= DISK_RESERVE or \
            _disk(folder) != _disk(cfg.train.out_dir):
        return 0
    written: set[str] = set()
    total = 0
    for lines in (train_lines, val_lines):
        paths = [parse_annotation_line(line)[0] for line in lines]
        if not paths:
            continue
        plan = plan_disk_cache(paths, cfg.model.input_size, folder, written=written)
        if plan.total > free - total - DISK_RESERVE:
            continue   # over the cache's budget: it is not made (a warning says so)
        written.update(plan.entries[i] for i in plan.todo)
        total += plan.total
    return total


def unwritable_text(out_dir: str) -> Optional[str]:
    """Why nothing can be written into ``out_dir``, the run folder (made before): on a file
    system mounted read-only (a disk remounted after I/O errors, a read-only bind mount), or
    one this user may not write; None when it may be written, or cannot be looked at (the
    save says why then). Such a run trained every epoch with nothing saved (an error line
    each, its end keeping the last state in /tmp). Asked of the folder, nothing written:
    a probe file a kill left behind would go to Drive with the folder."""
    try:
        if os.statvfs(out_dir).f_flag & os.ST_RDONLY:
            why = "it is on a read-only file system"
        elif not os.access(out_dir, os.W_OK | os.X_OK):
            why = "this user may not write into it"
        else:
            return None
    except OSError:
        return None
    return (f"train.out_dir {out_dir} cannot be written ({why}): no checkpoint of the run "
            f"could be saved there; nothing was trained: set train.out_dir to a folder you "
            f"can write")


def file_limit_text(size: int) -> Optional[str]:
    """Why no checkpoint of about ``size`` bytes can be written by this process: its
    file-size limit (``ulimit -f``, RLIMIT_FSIZE: a batch system's, a container's) is below
    it; None when there is none or it is above. Free space was all the check counted: such a
    run trained, then every save failed with "File too large" while it went on."""
    import resource

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit == resource.RLIM_INFINITY or limit >= size:
        return None
    return (f"this process may write no file larger than {format_size(limit)} (its file-size "
            f"limit, ulimit -f), and the run's checkpoints are about {format_size(size)} each: "
            f"none could be saved; nothing was trained: raise the limit (ulimit -f unlimited) "
            f"and run the same command again")


def shortage(cfg: Any, epochs_done: int, size: int,
             free_bytes: Callable[[str], int] = lambda p: shutil.disk_usage(p).free,
             images: Optional[tuple[Sequence[str], Sequence[str]]] = None,
             resumed_at: Optional[int] = None, aside: Collection[str] = ()) -> Optional[str]:
    """Why the next epoch's save, with the autosaves beside it and the image cache written
    before it (``images``: the train and val annotation lines), would not fit in
    ``train.out_dir`` (one line), or could not be written there at all
    (:func:`unwritable_text`, :func:`file_limit_text`); None if it does or nothing is left
    to train."""
    t = cfg.train
    if epochs_done >= t.epochs:
        return None
    refused = unwritable_text(t.out_dir) or file_limit_text(size - FIXED + FIXED_IN_FILE)
    if refused is not None:
        return refused
    names = epoch_save_names(cfg, epochs_done)
    saves = needed_bytes(cfg, names, size, resumed_at, epochs_done, aside)
    free = free_bytes(t.out_dir)
    cache = cache_bytes(cfg, *images, free=free, checkpoints=saves) if images else 0
    needed = saves + cache
    if needed <= free:
        return None
    autos = _autosaves_beside(cfg, resumed_at)
    beside = (f", with {autos} autosave{'s' if autos != 1 else ''} of that size kept beside "
              f"them (train.save_minutes)") if autos else ""
    first = (f", after {format_size(cache)} of decoded images the image cache writes first into "
             f"{cache_folder(cfg)} (data.cache=disk)") if cache else ""
    later = later_files(cfg, epochs_done, names, aside)
    when = "by the run's end" if later[0] or later[1] or later[2] else "at once"
    return (f"not enough free disk space in {t.out_dir} for the checkpoint of epoch "
            f"{epochs_done + 1}: its save writes {', '.join(names)} of about {format_size(size)} "
            f"each{beside}{first}{_later_text(cfg, later, epochs_done)}, {format_size(needed)} ({needed} "
            f"bytes) {when}, only "
            f"{format_size(free)} ({free} bytes) free; nothing was trained: free some space or "
            f"set train.out_dir to a folder on a larger disk{_fewer(cfg, later[0])}"
            f"{', or set data.cache=none' if cache else ''}{_archive(cfg)}")
