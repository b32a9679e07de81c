"""The retention policy: what to keep in a managed checkpoint folder, validated when built
(the rules themselves are in :mod:`drivestage.retention`)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Union

from drivestage import sidecar
from drivestage.errors import PolicyError
from drivestage.paths import plain_name
from drivestage.sizes import format_size, parse_size

#: The suffixes of a weights file.
_WEIGHTS = r"(?:pt|pth|ckpt|bin|safetensors|h5|keras|weights|pkl|npz|tar)"
#: ``epoch_NNN`` with the suffix of a weights file: a plot or a table named after its epoch
#: (``loss_epoch_001.png``) is the user's, not a checkpoint.
DEFAULT_PATTERN = r"epoch[_-]?(?P<epoch>\d+)\." + _WEIGHTS + r"\Z"
#: ``autosave_<number>``, as the trainer names its time checkpoints, with the suffix of a
#: weights file or none (``autosave_notes.txt`` and a plot ``autosave_0001.png`` are the
#: user's).
DEFAULT_AUTOSAVE_PATTERN = r"^autosave[_-]\d+(?:\." + _WEIGHTS + r")?\Z"

#: What a decision is about.
CHECKPOINT, AUTOSAVE, SIDECAR, OTHER = "checkpoint", "autosave", "sidecar", "other"


def _check_count(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyError(f"{name}={value!r} is invalid; it must be a whole number >= 1")


@dataclass(frozen=True)
class RetentionPolicy:
    """What to keep in a managed checkpoint folder; validated when built."""

    keep_last: Optional[int] = None      # keep the N newest checkpoints
    keep_best: Optional[int] = None      # keep the K best by ``metric``
    metric: Optional[str] = None         # required with keep_best
    mode: str = "max"                    # "max": higher is better; "min": lower is better
    keep_every: Optional[int] = None     # keep epochs that are multiples of E
    max_bytes: Optional[int] = None      # budget for the managed checkpoints (+ incoming)
    pattern: str = DEFAULT_PATTERN       # regex; named groups: epoch, optionally the metric
    autosave_pattern: str = DEFAULT_AUTOSAVE_PATTERN  # regex: time-based checkpoints
    keep_runs: Optional[int] = None      # keep only the N most recent runs' checkpoints

    def __post_init__(self) -> None:
        _check_count("keep_last", self.keep_last)
        _check_count("keep_best", self.keep_best)
        _check_count("keep_every", self.keep_every)
        _check_count("keep_runs", self.keep_runs)
        if self.mode not in ("min", "max"):
            raise PolicyError(f"mode={self.mode!r} is invalid; use 'min' or 'max'")
        if self.keep_best is not None and not self.metric:
            raise PolicyError(
                f"keep_best={self.keep_best} needs a metric to rank by; "
                "add --metric NAME (e.g. --metric map50 --mode max)")
        if self.metric is not None and (not isinstance(self.metric, str) or not self.metric.strip()):
            raise PolicyError(f"metric={self.metric!r} is invalid; give a metric name like map50")
        if self.max_bytes is not None and (
                isinstance(self.max_bytes, bool) or not isinstance(self.max_bytes, int)
                or self.max_bytes < 1):
            raise PolicyError(f"max_bytes={self.max_bytes!r} is invalid; it must be a size > 0")
        if self.pattern == "":
            # (`--pattern "$PATTERN"` unset: it matches every name, and a push with
            # --keep-last 1 deleted the run's results.csv and logs as old checkpoints: attack52)
            raise PolicyError("pattern='' is empty (an unset variable?): it matches every name, "
                              "and the policy would prune files that are no checkpoint; give "
                              "a regex of checkpoint names, or leave it out for the default "
                              "(epoch_004.pt, .pth, .ckpt, ...)")
        try:
            compiled = re.compile(self.pattern)
        except (re.error, TypeError) as exc:
            raise PolicyError(f"pattern={self.pattern!r} is not a valid regular expression: {exc}")
        if self.keep_every is not None and "epoch" not in compiled.groupindex:
            raise PolicyError(
                f"keep_every={self.keep_every} needs the epoch number, but pattern="
                f"{self.pattern!r} has no (?P<epoch>...) group")
        try:
            autosave = re.compile(self.autosave_pattern)
        except (re.error, TypeError) as exc:
            raise PolicyError(f"autosave_pattern={self.autosave_pattern!r} is not a valid "
                              f"regular expression: {exc}")
        object.__setattr__(self, "_regex", compiled)
        object.__setattr__(self, "_autosave", autosave)

    @classmethod
    def from_options(cls, *, keep_last: Union[int, str, None] = None,
                     keep_best: Union[int, str, None] = None, metric: Optional[str] = None,
                     mode: Optional[str] = None, keep_every: Union[int, str, None] = None,
                     max_bytes: Union[int, str, None] = None,
                     pattern: Optional[str] = None,
                     keep_runs: Union[int, str, None] = None) -> "RetentionPolicy":
        """Build from CLI-style values (strings allowed: ``"3"``, ``"10GB"``)."""
        def count(name: str, value: Union[int, str, None]) -> Optional[int]:
            if value is None or isinstance(value, int):
                return value
            try:
                return int(str(value).strip())
            except ValueError:
                raise PolicyError(f"{name}={value!r} is invalid; it must be a whole number >= 1")
        return cls(
            keep_last=count("keep_last", keep_last), keep_best=count("keep_best", keep_best),
            metric=metric, mode="max" if mode is None else str(mode).strip().lower(),
            keep_every=count("keep_every", keep_every),
            max_bytes=None if max_bytes is None else parse_size(max_bytes),
            pattern=DEFAULT_PATTERN if pattern is None else pattern,
            keep_runs=count("keep_runs", keep_runs))

    @property
    def regex(self) -> "re.Pattern[str]":
        """The compiled pattern."""
        return self._regex  # type: ignore[attr-defined,no-any-return]

    @property
    def autosave_regex(self) -> "re.Pattern[str]":
        """The compiled autosave pattern."""
        return self._autosave  # type: ignore[attr-defined,no-any-return]

    def kind_of(self, name: str) -> str:
        """``checkpoint``, ``autosave``, ``sidecar`` or ``other`` (by name alone)."""
        if not inside_folder(name):
            return OTHER
        if sidecar.is_sidecar(name):
            return SIDECAR
        if self.autosave_regex.search(name):
            return AUTOSAVE
        return CHECKPOINT if self.regex.search(name) else OTHER

    @property
    def active(self) -> bool:
        """True when any option would delete something."""
        return any(v is not None for v in (self.keep_last, self.keep_best, self.keep_every,
                                           self.max_bytes, self.keep_runs))

    def describe(self) -> str:
        """A one-line summary for logs and tables."""
        parts = []
        if self.keep_last is not None:
            parts.append(f"keep last {self.keep_last}")
        if self.keep_best is not None:
            parts.append(f"keep best {self.keep_best} by {self.metric} ({self.mode})")
        if self.keep_every is not None:
            parts.append(f"keep every {self.keep_every} epochs")
        if self.max_bytes is not None:
            parts.append(f"max {format_size(self.max_bytes)}")
        if self.keep_runs is not None:
            parts.append(f"keep {self.keep_runs} run{'' if self.keep_runs == 1 else 's'}")
        return ", ".join(parts) or "keep everything"


def check_metric_name(policy: RetentionPolicy, metrics: Iterable[Mapping[str, object]]) -> None:
    """Refuse a ``metric`` that none of ``metrics`` (the checkpoints' sidecars) has while one
    of them has a name equal to it but for case and punctuation (``mAP50``, ``map_50`` for
    ``map50``): a typo that ranks nothing, so the real best checkpoint was deleted with the
    rest, permanently and without a word. A metric absent from every sidecar with no such
    near name (none computed yet: early epochs) is left to the rules, as before."""
    if not policy.keep_best or not policy.metric:
        return
    names: set[str] = set()
    for m in metrics:
        names.update(str(k) for k in m)
    if policy.metric in names:
        return

    def plain(name: str) -> str:
        return re.sub(r"[^0-9a-z]", "", name.lower())

    close = sorted(n for n in names if plain(n) == plain(policy.metric))
    if close:
        raise PolicyError(f"no checkpoint's sidecar has the metric {policy.metric!r}, and they "
                          f"have {close[0]!r} (metric names are case-sensitive): give --metric "
                          f"{close[0]}, or no checkpoint is kept as best")


def inside_folder(name: str) -> bool:
    return plain_name(name)


def lone_json_reason(name: str, others: Iterable[str]) -> str:
    """The plan's reason for a ``.json`` no managed checkpoint owns. Beside a weights file the
    pattern does not manage (``best.json`` with ``best.pt``), it said "json without its
    checkpoint" while that checkpoint was right there: now it names it. Neither is deleted."""
    weights = re.compile(r"\." + _WEIGHTS + r"\Z")
    beside = sorted(sidecar.owners([n for n in others if weights.search(n)] + [name])
                    .get(name, ()))
    if beside:
        return f"not a checkpoint (the sidecar of {beside[0]}, which the pattern does not " \
               "manage)"
    return "not a checkpoint (json without its checkpoint)"
