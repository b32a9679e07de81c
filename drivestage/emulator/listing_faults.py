"""The faults of ``files.list`` (:class:`ListingFaults`, a mixin of
:class:`~drivestage.emulator.faults.Faults`; split from faults.py at its line cap): short and
empty pages, page tokens rejected, an OR of parents answered in part
(:mod:`drivestage.emulator.split_or`), listings that lag behind the store
(:class:`ListingLag`). Their state is made in ``Faults.__init__``, shown by ``describe`` and
cleared by ``clear``, under the one lock of the faults.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

from drivestage.emulator.split_or import SplitOr


class ListingFaults:
    """The ``files.list`` faults of :class:`~drivestage.emulator.faults.Faults`."""

    _lock: threading.Lock
    split_or: SplitOr

    def short_pages(self, size: Optional[int]) -> None:
        """Answer every files.list page with at most ``size`` items (None: as many as asked),
        a nextPageToken still following: Drive's reference says "Partial or empty result
        pages are possible even before the end of the files list has been reached"."""
        with self._lock:
            self._page_size = None if size is None else max(1, int(size))

    def empty_pages(self, times: int = 1, query: Optional[str] = None) -> None:
        """Answer the next ``times`` files.list pages that have items left with none, and a
        nextPageToken (a new one each time) that goes on from the same place: the v2
        reference's "Partial or empty result pages are possible even before the end of the
        files list has been reached" (``maxResults``); a client that stops at an empty page
        misses every item after it. ``query``: only listings whose ``q`` this regular
        expression finds (a folder's id: its listing)."""
        if query:
            re.compile(query)
        with self._lock:
            self._empty_pages = max(0, int(times))
            self._empty_query = query or None

    def drop_or_parents(self, times: Optional[int] = 1, keep: Optional[int] = 0,
                        after: int = 0) -> None:
        """Answer the next ``times`` files.list requests (None: every one) whose ``q`` names
        two parents or more (``('A' in parents) or ('B' in parents)``) with the items of the
        ``keep``-th parent named only (None: of none), every other named parent's left out,
        no error and ``incompleteSearch`` false: Drive's known failure of such queries
        (:mod:`drivestage.emulator.split_or` names the reports); the first ``after`` such
        requests (a listing's first pages) are answered whole."""
        self.split_or.set(times, keep, after)

    def expire_page_tokens(self, times: Optional[int] = 1) -> None:
        """Reject the page token of the next ``times`` files.list requests that carry one
        (None: every one) as Drive rejects a stale token: 400 ``invalid``, location
        ``pageToken``; its reference says to restart the listing from the first page."""
        with self._lock:
            self._tokens_rejected = -1 if times is None else max(0, int(times))

    def lag_listing(self, created: int = 0, updated: int = 0, deleted: int = 0,
                    titles: Optional[str] = None) -> None:
        """Make ``files.list`` (listings and searches by name) eventually consistent, as
        Drive's is, counted in answers instead of seconds: from now on an item created is
        left out of the next ``created`` list answers that would hold it; one whose metadata
        or content changed shows as it was before in the next ``updated``; one deleted or
        trashed is still listed, as it was, in the next ``deleted``. ``titles``: only items
        whose title this regular expression finds lag. files.get stays current (Drive's
        reads by id are). All zero: listings are current again (what already lags keeps
        its count)."""
        if titles:
            re.compile(titles)
        with self._lock:
            counts = (max(0, int(created)), max(0, int(updated)), max(0, int(deleted)))
            self._lag = ListingLag(*counts, titles) if any(counts) else None

    def note_change(self, old: Optional[dict], new: Optional[dict]) -> None:
        """The store changed one file record (``old`` None: created; ``new`` None: deleted):
        what a lagging listing (:meth:`lag_listing`) shows of it for a while."""
        with self._lock:
            lag = self._lag
            rec = new if new is not None else old
            if lag is None or rec is None or (lag.titles and not re.search(lag.titles, rec["title"])):
                return
            fid = rec["id"]
            before = self._lagging.get(fid)
            shown = before[0] if before is not None else old   # what the listing last showed
            if old is None:
                count = lag.created
            elif new is None or (new.get("trashed") and not old.get("trashed")):
                count = lag.deleted
            else:
                count = lag.updated
            if count > 0:
                self._lagging[fid] = [shown, max(count, before[1] if before else 0)]

    def lagged(self, found: list, admit: Callable[[dict], Any]) -> list:
        """A files.list answer ``found`` ((record, access) pairs) as a lagging listing gives
        it; ``admit(record)``: the access that lets the query find a record, else None."""
        with self._lock:
            if not self._lagging:
                return found
            out, touched = [], set()
            listed = {rec["id"] for rec, _ in found}
            for rec, acc in found:
                entry = self._lagging.get(rec["id"])
                if entry is None:
                    out.append((rec, acc))
                    continue
                touched.add(rec["id"])
                if entry[0] is not None and (was := admit(entry[0])) is not None:
                    out.append((entry[0], was))
            for fid, (shown, _) in self._lagging.items():
                if fid not in listed and shown is not None and (was := admit(shown)) is not None:
                    out.append((shown, was))
                    touched.add(fid)
            for fid in touched:
                entry = self._lagging[fid]
                entry[1] -= 1
                if entry[1] <= 0:
                    del self._lagging[fid]
            return out

    # ------------------------------------------------------------- server side
    def page_size(self, asked: int) -> int:
        """How many items the files.list page now answered may hold (``asked``, or fewer
        under :meth:`short_pages`)."""
        with self._lock:
            return asked if self._page_size is None else min(asked, self._page_size)

    def take_empty_page(self, q: Optional[str]) -> Optional[int]:
        """The serial number of an empty page (:meth:`empty_pages`) the files.list page now
        answered (for the query ``q``) must be, once per count; None: it holds its items."""
        with self._lock:
            if self._empty_pages <= 0 or (
                    self._empty_query and not re.search(self._empty_query, q or "")):
                return None
            self._empty_pages -= 1
            self._empty_served += 1
            return self._empty_served

    def take_token_rejected(self) -> bool:
        """True (once per count) when the page token of the listing now answered must be
        rejected (:meth:`expire_page_tokens`)."""
        with self._lock:
            if self._tokens_rejected == 0:
                return False
            if self._tokens_rejected > 0:
                self._tokens_rejected -= 1
            return True


@dataclass
class ListingLag:
    """How many list answers lag behind a change (:meth:`Faults.lag_listing`)."""

    created: int
    updated: int
    deleted: int
    titles: Optional[str] = None
