"""``PushResult``: what one push did (:func:`drivestage.upload_tree.push` returns it);
``Outstanding``: what a push under way has still to send."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterable, Optional

from drivestage.other_runs import Left
from drivestage.retention import Decision, Plan
from drivestage.unread import Unread


@dataclass
class PushResult:
    """What one push did (relative ``/``-separated paths)."""

    uploaded: list[str] = field(default_factory=list)    # sent and verified
    unchanged: int = 0                                    # already identical on the remote
    skipped_by_policy: list[str] = field(default_factory=list)  # the policy deletes them
    deleted: list[str] = field(default_factory=list)     # removed by --delete (paths)
    deleted_items: int = 0   # what that removed, in items (a folder with what it held; once)
    pruned: list[Decision] = field(default_factory=list)  # Decisions applied (deleted)
    bytes_sent: int = 0
    folders_created: int = 0
    plan: Optional[Plan] = None                           # retention plan of the DEST folder
    skipped_links: list[str] = field(default_factory=list)  # links not followed
    replaced_duplicates: list[str] = field(default_factory=list)  # older same-named copies
    further_on: list[str] = field(default_factory=list)  # left: the store's copy is further on
    other_run: list[str] = field(default_factory=list)   # left: the store's copy is another run's
    #: left: the store's copy's sidecar is flagged by Drive (whose run: unknown; flagged)
    unknown_run: list[str] = field(default_factory=list)
    left: list[Left] = field(default_factory=list)       # all three, with what the store holds
    #: Paths of SRC it could not read (the walk's, then the files refused as they were sent):
    #: not sent, and nothing on the store at or under them removed or replaced (unread.py).
    unread: list[Unread] = field(default_factory=list)
    #: Files not sent, a folder on the store at their name (their copies there kept, the
    #: folder too: name_blocked).
    blocked: list[str] = field(default_factory=list)



def attach(exc: BaseException, result: PushResult) -> None:
    """Give ``exc``, raised out of a push, what the push had done by then (``pushed``): a
    caller that passed no :class:`Outstanding` (the CLI's push, ``mirror``'s periods) could
    not tell what went, only read it in the lines printed as it went. The first push it
    left keeps it (a second try's error is the one raised)."""
    if not isinstance(getattr(exc, "pushed", None), PushResult):
        try:
            exc.pushed = result   # type: ignore[attr-defined]
        except AttributeError:   # (an exception type without a __dict__: none of ours)
            pass


def pushed_of(exc: Optional[BaseException]) -> Optional[PushResult]:
    """What the push ``exc`` (or the error it was raised from: a ``MirrorError``, the
    trainer's retyped ``BudgetError``) stopped had done by then (:func:`attach`); None where
    no push said."""
    seen = 0
    while exc is not None and seen < 8:   # (a chain of causes is short; never a cycle)
        got = getattr(exc, "pushed", None)
        if isinstance(got, PushResult):
            return got
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def went(result: Optional[PushResult]) -> bool:
    """Whether ``result`` changed anything on the store (sent, pruned or deleted)."""
    return result is not None and bool(result.uploaded or result.pruned or result.deleted)


class Outstanding:
    """What a push under way has not sent yet, for a caller that may have to leave before it
    ends (``drivestage mirror --grace``) and must say what did not reach the store. Filled
    from the push's threads; read from any thread."""

    def __init__(self, final: bool = True) -> None:
        self._lock = threading.Lock()
        self._todo: Optional[set[str]] = None
        #: False for a mirror's period push begun before the stop: what changed since it
        #: began is not in its list, and no push sends it once the grace runs out.
        self.final = final
        #: The push's :class:`PushResult` as it fills: what a push that then failed (Drive
        #: refusing a deletion of retention, at its end) had verified, and what it left out.
        self.result: Optional[PushResult] = None

    def begin(self, result: PushResult) -> None:
        """A push (or its second try, into the folder the path leads to now) begins: it knows
        nothing of what it sends yet; ``result`` is what it fills."""
        with self._lock:
            self._todo, self.result = None, result

    def start(self, rels: Iterable[str]) -> None:
        """The push knows what it sends (relative paths): its listings and plan are done."""
        with self._lock:
            self._todo = set(rels)

    def done(self, rel: str) -> None:
        """``rel`` is verified on the store (or gone from the disk: nothing to send)."""
        with self._lock:
            if self._todo is not None:
                self._todo.discard(rel)

    def left(self) -> Optional[list[str]]:
        """The files not sent yet, sorted; None while the push does not know what it sends
        (it lists the store, or waits for it)."""
        with self._lock:
            return None if self._todo is None else sorted(self._todo)
