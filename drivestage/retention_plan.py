"""What a retention plan says: one :class:`Decision` per file (keep or delete, why, and what
kind of file it is), the :class:`Plan` (the decisions plus the budget verdict), and
:func:`format_plan`, the table ``prune`` prints. The rules that make a plan are in
:mod:`drivestage.retention`."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Union, overload

from drivestage.paths import printable
from drivestage.retention_policy import OTHER
from drivestage.sizes import format_size


@dataclass(frozen=True)
class Decision:
    """Keep or delete one file, and why."""

    name: str
    keep: bool
    reason: str
    size: int = 0
    id: Optional[str] = None
    kind: str = OTHER               # checkpoint | autosave | sidecar | other
    orphan_md5: Optional[str] = None  # an orphan sidecar's retirement: its md5 when planned
                                      # (:mod:`drivestage.orphans`, re-checked before it goes)
    #: The md5 the listing showed for ``id``: deleted only while the store still has those
    #: bytes (an in-place update since, another machine's, is not what the plan meant).
    md5: Optional[str] = None

    @property
    def managed(self) -> bool:
        """A checkpoint, an autosave or one of their sidecars (what retention manages)."""
        return self.kind != OTHER


@dataclass(frozen=True)
class Plan(Sequence[Decision]):
    """The decisions (a sequence of :class:`Decision`) plus the budget verdict."""

    decisions: tuple[Decision, ...]
    fits: bool = True               # False: the budget cannot hold the kept files + incoming
    kept_bytes: int = 0             # managed checkpoints + sidecars that stay
    incoming_bytes: int = 0
    max_bytes: Optional[int] = None
    #: When the budget cannot hold what is kept (``fits`` False): the smallest budget that
    #: could, what no budget deletes (``pinned``: the newest, the best, the protected...)
    #: plus the incoming bytes. The plan then deletes nothing for the budget (see
    #: :mod:`drivestage.retention`), which a user reads as "a smaller budget deleted less"
    #: unless told (include29).
    floor_bytes: int = 0
    pinned: tuple[str, ...] = ()

    @overload
    def __getitem__(self, i: int) -> Decision: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Decision]: ...

    def __getitem__(self, i: Union[int, slice]) -> Union[Decision, Sequence[Decision]]:
        return self.decisions[i]

    def __len__(self) -> int:
        return len(self.decisions)

    def __iter__(self) -> Iterator[Decision]:
        return iter(self.decisions)

    @property
    def to_delete(self) -> list[Decision]:
        """Decisions to delete, in plan order (checkpoints before their sidecars)."""
        return [d for d in self.decisions if not d.keep]

    @property
    def deleted_names(self) -> set[str]:
        """Names with at least one delete decision."""
        return {d.name for d in self.decisions if not d.keep}

    @property
    def kept_ids(self) -> set[str]:
        """Ids the plan keeps as a checkpoint, autosave or sidecar."""
        return {d.id for d in self.decisions if d.keep and d.id and d.managed}

    @property
    def shortfall(self) -> int:
        """Bytes the budget lacks (0 when it fits)."""
        if self.max_bytes is None:
            return 0
        return max(self.kept_bytes + self.incoming_bytes - self.max_bytes, 0)


def format_plan(decisions: Iterable[Decision]) -> str:
    """A plain-text table (action, size, name, reason) and a summary; names and reasons
    escaped (a reason quotes a sidecar's run name, anybody's text as much as a title)."""
    rows = list(decisions)
    if not rows:
        return "Nothing to prune: the folder holds no files."
    header = ("ACTION", "SIZE", "NAME", "REASON")
    table = [header] + [("keep" if d.keep else "delete", format_size(d.size), printable(d.name),
                         printable(d.reason)) for d in rows]
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
             for r in table]
    gone = [d for d in rows if not d.keep]
    freed = sum(d.size for d in gone)
    summary = f"{len(gone)} to delete ({format_size(freed)}), {len(rows) - len(gone)} kept"
    if isinstance(decisions, Plan) and not decisions.fits:
        summary += (f"; the {format_size(decisions.max_bytes or 0)} budget cannot hold "
                    f"what is kept plus {format_size(decisions.incoming_bytes)} incoming "
                    f"(short by {format_size(decisions.shortfall)}; it deletes nothing for "
                    f"a budget below what no budget deletes: at least "
                    f"{format_size(decisions.floor_bytes)})")
    lines.append(summary)
    return "\n".join(lines)
