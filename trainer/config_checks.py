"""The checks of a config: of a value as it is read (:func:`check_value`), and of the whole
config once every key is read (:func:`validate`): every value a run cannot train with, or would
train with on something else than asked, refused in one line naming its key
(:class:`~trainer.errors.ConfigError`, exit 2) before anything is staged.

A value let through here fails later, after the dataset was staged (minutes for VOC), in a
traceback (``model.phi: 9``, ``model.anchors_mask`` naming anchor 6), or trains for hours on
what no one meant (``train.ema_decay: 1.5``: an average that leaves the weights' range; a
``train.conf_thresh`` of 1.5: no detection, mAP 0 at every epoch).
"""
from __future__ import annotations

import math
import os
import re
import typing
from typing import TYPE_CHECKING, Any, Union

from trainer.errors import ConfigError

if TYPE_CHECKING:
    from trainer.config import Config

#: The network's coarsest stride: the input side must be a multiple of it (the stride-32
#: head's grid is input_size / 32 cells).
STRIDE = 32
#: The input sides taken: one cell of the stride-32 head at the least; at the most 4096
#: (about 100 times 416's pixels; 4160, 416 with a zero too many, is refused: 100000 was
#: taken, and the first step asked for more memory than there was).
INPUT_MIN, INPUT_MAX = STRIDE, 4096
#: The most DataLoader worker processes: each is a process with its own copy of the dataset
#: index and prefetched batches; 10000 was taken, and the loader died starting them.
MAX_WORKERS = 64
#: The largest batch: a loader's batch is an index, and 1e308 (an int once read) was taken, the
#: data staged and the model built, then torch's traceback at the first batch (trainatk47).
MAX_BATCH = 2**31 - 1


def check_value(key: str, value: Any, where: str, tp: Any, path: bool) -> None:
    """Refuse a value no key can take, before it is read as the key's type: a NUL byte in a
    string (YAML's ``"\\0"``: each path key met it as ``ValueError: embedded null byte``, a
    traceback); for a path key (``path``), a Windows path on this machine (``C:\\Users\\me``
    was a folder of that name made in the working folder) or no value where one is needed
    (``root: ~``, YAML's null, read ``expects str, got None``) (ux35)."""
    texts = [value] if isinstance(value, str) else \
        [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
    for text in texts:
        if "\0" in text:
            at = text.index("\0")
            raise ConfigError(f"config key '{key}'{where} holds a NUL byte (\\0, character "
                              f"{at + 1}): no path or name can; remove it")
    if not path:
        return
    if value is None and type(None) not in typing.get_args(tp):
        raise ConfigError(f"config key '{key}'{where} has no value (YAML reads an empty value, "
                          "null and a lone ~ as none); give a path, e.g. ./data (~/data: in the "
                          "home folder)")
    if isinstance(value, str) and os.sep == "/" and _WINDOWS.match(value):
        raise ConfigError(f"config key '{key}'{where} is a Windows path ({value}), and this "
                          "machine's paths are written /content/data or ./data: give one of "
                          "this machine's")


#: ``C:\\...`` or ``C:/...``: a path on Windows, where the config was written.
_WINDOWS = re.compile(r"[A-Za-z]:[\\/]")


def _nearest_size(size: int) -> str:
    """``; use 416`` for a side in range but off the stride: the multiples around it."""
    if not INPUT_MIN < size < INPUT_MAX or size % STRIDE == 0:
        return ""
    below, above = size // STRIDE * STRIDE, (size // STRIDE + 1) * STRIDE
    return f": use {below} or {above}"


def validate(cfg: "Config") -> None:
    """Reject impossible combinations with a message naming the key."""
    _check_model(cfg)
    _check_numbers(cfg)
    _check_rest(cfg)


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _check_model(cfg: "Config") -> None:
    from trainer.config import shown

    m = cfg.model
    if not (INPUT_MIN <= m.input_size <= INPUT_MAX and m.input_size % STRIDE == 0):
        raise ConfigError(
            f"model.input_size must be a multiple of {STRIDE} from {INPUT_MIN} to {INPUT_MAX} "
            f"(YOLOv4-tiny's coarsest head has stride {STRIDE}), got {m.input_size}"
            + _nearest_size(m.input_size))
    if isinstance(m.width, bool) or not isinstance(m.width, (int, float)) or not 0 < m.width <= 4:
        raise ConfigError(f"model.width must be a number above 0 and at most 4 (1 is YOLOv4-tiny), "
                          f"got {shown(m.width)}")
    if not float(m.width * 8).is_integer():
        raise ConfigError(_width_off_step(m.width))
    if len(m.anchors) != 6 or any(not isinstance(a, list) or len(a) != 2 for a in m.anchors):
        raise ConfigError(f"model.anchors must be six [w, h] pairs, got {shown(m.anchors)}")
    # (A size of 'a': float()'s traceback once the data was staged; 0 or below: a box that
    # never matches, or a log of it.)
    if not all(_number(v) and v > 0 for a in m.anchors for v in a):
        raise ConfigError(f"model.anchors must be six [w, h] pairs of sizes above 0, in pixels, "
                          f"got {shown(m.anchors)}")
    if len(m.anchors_mask) != 2 or any(not isinstance(x, list) or len(x) != 3
                                       for x in m.anchors_mask):
        raise ConfigError(f"model.anchors_mask must be two lists of three indices, got "
                          f"{shown(m.anchors_mask)}")
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(m.anchors)
               for x in m.anchors_mask for i in x):   # (the model's traceback after staging)
        raise ConfigError(f"model.anchors_mask must be two lists of three indices 0..5 (of "
                          f"model.anchors), got {shown(m.anchors_mask)}")
    if not 0 <= m.phi <= 4:   # (the model's ValueError, once the data was staged)
        raise ConfigError(f"model.phi must be 0..4 (0 none, 1 SE, 2 CBAM, 3 ECA, 4 coordinate "
                          f"attention), got {m.phi}")


def _check_numbers(cfg: "Config") -> None:
    from trainer.config import MAX_GRACE_SECONDS, shown

    t = cfg.train
    for key in ("epochs", "batch_size", "freeze_batch_size", "save_period", "eval_period", "nbs"):
        if getattr(t, key) < 1:
            raise ConfigError(f"train.{key} must be >= 1, got {getattr(t, key)}")
    for key in ("batch_size", "freeze_batch_size"):
        if getattr(t, key) > MAX_BATCH:
            raise ConfigError(f"train.{key} must be from 1 to {MAX_BATCH}, got "
                              f"{shown(getattr(t, key))}")
    if not 0 <= t.freeze_epochs <= t.epochs:
        raise ConfigError(f"train.freeze_epochs must be between 0 and train.epochs ({t.epochs}), "
                          f"got {t.freeze_epochs}")
    # (log_period < 0 was taken as 0 (attacktr29); max_val_images -3 cut 3 lines off: attacktrain34)
    for key, zero in (("train.keep_local", " (0 = keep every epoch file)"), ("data.workers", ""),
                      ("train.log_period", " (0 = only the progress bar)"), ("train.save_minutes",
                      " (0 = off)"), ("train.silent_rank_minutes", " (0 = off)"),
                      ("data.max_val_images", " (0 = all)")):
        value = getattr(getattr(cfg, key.split(".")[0]), key.split(".")[1])
        if value < 0:
            raise ConfigError(f"{key} must be >= 0{zero}, got {value}")
    if cfg.data.workers > MAX_WORKERS:   # (10000: a traceback once threads or memory ran out)
        raise ConfigError(f"data.workers must be from 0 to {MAX_WORKERS} (loader processes; 0 = "
                          f"load in the main process), got {cfg.data.workers}")
    # (-1: the clip taken as off; a negative decay pushes every weight away from 0)
    for key, zero in (("grad_clip", " (0 = off)"), ("weight_decay", "")):
        if getattr(t, key) < 0:
            raise ConfigError(f"train.{key} must be >= 0{zero}, got {getattr(t, key):g}")
    if not 0 <= t.seed < 2**64:   # (-1: a loader worker's traceback; 2**64: torch.manual_seed's)
        raise ConfigError(f"train.seed must be between 0 and 2**64 - 1, got {t.seed}")
    if t.silent_rank_minutes * 60 > MAX_GRACE_SECONDS:  # (its threads' waits: as the grace's)
        raise ConfigError(f"train.silent_rank_minutes must be at most {MAX_GRACE_SECONDS / 60:.0f} "
                          f"(30 days; 0 = off), got {t.silent_rank_minutes:g}")
    if t.grace_seconds <= 0:
        raise ConfigError(f"train.grace_seconds must be > 0, got {t.grace_seconds}")
    if t.grace_seconds > MAX_GRACE_SECONDS:  # a wait past threading.TIMEOUT_MAX: a traceback
        raise ConfigError(f"train.grace_seconds must be at most {MAX_GRACE_SECONDS:.0f} "
                          f"(30 days), got {t.grace_seconds:g}")
    if t.lr <= 0:
        raise ConfigError(f"train.lr must be > 0, got {t.lr}")
    if not 0 < t.min_lr_ratio <= 1:
        raise ConfigError(f"train.min_lr_ratio must be in (0, 1], got {t.min_lr_ratio}")
    for key in ("mosaic_prob", "mixup_prob", "special_aug_ratio"):
        if not 0 <= getattr(t, key) <= 1:
            raise ConfigError(f"train.{key} must be in [0, 1], got {getattr(t, key)}")
    # An EMA decay of 1 or more leaves the weights' range (inf, then NaN: every evaluation and
    # best.pt of no use); below 0 it swings around them. A momentum of 1 or more makes SGD's
    # steps grow for good (torch refuses it for Adam, and below 0 for both: a traceback).
    for key, what in (("ema_decay", ""), ("momentum", " (SGD momentum / Adam beta1)"),
                      ("label_smoothing", ""), ("conf_thresh", "")):
        if not 0 <= getattr(t, key) < 1:
            raise ConfigError(f"train.{key} must be in [0, 1){what}, got {getattr(t, key):g}")
    if not 0 < t.nms_thresh <= 1:   # (3: no box suppressed; the mAP of duplicates)
        raise ConfigError(f"train.nms_thresh must be in (0, 1], got {t.nms_thresh:g}")


def _check_rest(cfg: "Config") -> None:
    from trainer.config import shown

    t, d = cfg.train, cfg.drive
    if not t.out_dir:   # (os.makedirs('')'s traceback)
        raise ConfigError(f"train.out_dir must name a folder, got {t.out_dir!r}")
    if not (t.device in ("auto", "cpu", "cuda") or (t.device.startswith("cuda:") and t.device[5:].isdigit())):
        raise ConfigError(f"train.device must be auto, cpu, cuda or cuda:N, got {t.device!r}")
    if isinstance(d.logs, str) and d.logs.strip().rstrip("/") == "drive:":
        # (It trained, its files loose among the user's own, without a word: attackcli39.)
        raise ConfigError(f"drive.logs {d.logs} is the top of My Drive: the run's files would "
                          "land there loose, beside everything else in it, and its retention "
                          "would prune checkpoints there; give a folder, e.g. drive:runs/exp1")
    check_year(cfg.data.year, "data.year")
    if d.keep_last < 0 or d.keep_best < 0:
        raise ConfigError("drive.keep_last and drive.keep_best must be >= 0")
    if d.max_bytes is not None:
        d.max_bytes = _parse_size(d.max_bytes)
    # (Longer: a dead runtime's run waits an hour or more. Shorter than 0.01 (0.6 s): the
    # renewal thread waits one period between renewals, each a request to Drive; 1e-300 sent
    # them back to back for the whole run, until Drive's rate limits refused them: trainatk47.)
    if d.lease_minutes != 0 and not 0.01 <= d.lease_minutes <= 60:
        raise ConfigError(f"drive.lease_minutes must be 0 (no lease) or from 0.01 to 60 (each "
                          f"renewal is a request to Drive), got {d.lease_minutes!r}")
    if isinstance(cfg.data.classes, list) and not cfg.data.classes:
        raise ConfigError("data.classes is an empty list; give class names or a classes file")
    if isinstance(cfg.data.classes, list) and not all(isinstance(n, (str, int, float))
                                                       for n in cfg.data.classes):
        # (A name made of a list: YAML aliases make 10**9 of them in 500 bytes, spelt out later.)
        raise ConfigError(f"data.classes must list class names, got {shown(cfg.data.classes)}")


#: A VOC year: what follows VOC in the dataset's folder name (VOC2007), a plain name.
_YEAR = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*")


def check_year(year: str, key: str) -> None:
    """ConfigError unless ``year`` (``key``: data.year, --year) is a plain name: one with a
    ``/`` or ``..`` named files of another folder (``{out}/{year}_train.txt``: attackcli39)."""
    if not _YEAR.fullmatch(year):
        raise ConfigError(f"{key} {year!r} is not a VOC year: give what follows VOC in the "
                          "dataset's folder name (2007 for VOC2007)")


def _parse_size(value: Union[int, str]) -> int:
    from drivestage.errors import PolicyError
    from drivestage.retention import parse_size

    try:
        size = parse_size(value)
    except PolicyError as exc:
        raise ConfigError(f"drive.max_bytes: {exc}") from None
    if size <= 0:
        raise ConfigError(f"drive.max_bytes must be > 0 (or empty for no cap), got {value!r}")
    return size


def _width_off_step(width: float) -> str:
    """The refusal of a ``model.width`` between eighths, naming the two around it (the CSP
    blocks double their channels, each a multiple of 8: 0.3 built blocks of 16 and 40
    channels, a traceback at the first step; trainer.model.backbone.WIDTH_STEP)."""
    below, above = max(1, math.floor(width * 8)) / 8, math.ceil(width * 8) / 8
    near = f"{below:g}" if below == above else f"{below:g} or {above:g}"
    return (f"model.width must be a multiple of 0.125 (each layer's channels a multiple of 8), "
            f"got {width:g}: use {near}")
