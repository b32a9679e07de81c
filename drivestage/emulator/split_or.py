"""Drive's known failure of a ``files.list`` whose ``q`` ORs several parents
(``('A' in parents ...) or ('B' in parents ...)``): its answer holds the items of some of
those parents and silently none of the others', with ``incompleteSearch`` false and no
error. rclone's drive backend works around it (``--drive-fast-list-bug-fix``: "a bug in
google drive where (A in parents) or (B in parents) returns nothing sometimes", its issues
3114 and 4289, Google's issue tracker 149522397), and its issue 9810 and wiserain/rclone
pull request 64 show the second mode: "Google Drive can return entries for some parents in a
grouped query ... while silently returning no entries for other parents in the same group".

A fault of :class:`~drivestage.emulator.faults.Faults` (``drop_or_parents``), held here so
that module does not grow: which answers it hits, and what it leaves of them.
"""
from __future__ import annotations

import re
import threading
from typing import Callable, Optional

#: ``'<id>' in parents`` inside a ``q`` (the id as written, escapes and all).
_IN_PARENTS = re.compile(r"'((?:[^'\\]|\\.)*)'\s+in\s+parents", re.IGNORECASE)


def named_parents(q: Optional[str], resolve: Callable[[str], str]) -> list[str]:
    """The parent ids ``q`` names in ``'<id>' in parents`` terms, in the order written,
    each once (``root`` resolved to its id)."""
    out: list[str] = []
    for m in _IN_PARENTS.finditer(q or ""):
        pid = resolve(re.sub(r"\\(.)", r"\1", m.group(1)))
        if pid not in out:
            out.append(pid)
    return out


class SplitOr:
    """The state of the ``drop_or_parents`` fault (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._left = 0                 # answers left to hit (-1: every one)
        self._keep: Optional[int] = 0  # the index of the parent whose items stay
        self._after = 0                # such answers still let through whole first

    def set(self, times: Optional[int] = 1, keep: Optional[int] = 0, after: int = 0) -> None:
        """Hit the next ``times`` answers (None: every one), keeping the items of the
        ``keep``-th parent named (None: of none), once ``after`` such answers went whole
        (the second page of a listing: attackguard40)."""
        if keep is not None and int(keep) < 0:
            raise ValueError(f"keep must be a parent's index (0, 1, ...) or None, not {keep}")
        with self._lock:
            self._left = -1 if times is None else max(0, int(times))
            self._keep = None if keep is None else int(keep)
            self._after = max(0, int(after))

    def clear(self) -> None:
        with self._lock:
            self._left, self._keep, self._after = 0, 0, 0

    def describe(self) -> Optional[dict]:
        with self._lock:
            return None if self._left == 0 else {
                "times": None if self._left < 0 else self._left, "keep": self._keep,
                **({"after": self._after} if self._after else {})}

    def apply(self, q: Optional[str], found: list, resolve: Callable[[str], str]) -> list:
        """``found`` ((record, access) pairs, the answer to ``q``) as the failing Drive gives
        it: where ``q`` names two parents or more and the fault is on, every item in a named
        parent other than the one kept is left out (an item ``q`` found by another term
        stays); one answer counted. Else ``found`` as it is."""
        parents = named_parents(q, resolve)
        if len(parents) < 2:
            return found
        with self._lock:
            if self._left == 0:
                return found
            if self._after > 0:
                self._after -= 1
                return found
            if self._left > 0:
                self._left -= 1
            keep = self._keep
        kept = parents[keep] if keep is not None and keep < len(parents) else None
        dropped = set(parents) - {kept}
        return [(rec, acc) for rec, acc in found
                if kept in rec["parents"] or not dropped & set(rec["parents"])]
