"""Deletions of :class:`drivestage.drive.store.DriveStore` (a mixin; split from store.py at
its line cap): an item is deleted only while Drive still shows it as the listing did
(:func:`drivestage.drive.provenance.check_as_listed`), and removed by
:func:`drivestage.drive.removal.remove` (the trash where Drive allows only that).

That check is a files.get per deletion, and each delete a request: a prune of 1,000 files
was 2,000 round trips. A pass of deletions (prune, retention, room for a push, ``push
--delete``) calls :meth:`Deletes.delete_many`: per 100 items
(:data:`~drivestage.drive.batches.MAX_CALLS`), one batch request of checks, then one of the
deletes those let through, sent at once (the window between check and delete is one round
trip, as with a lone files.get). Each call's own answer is acted on as a lone delete's: gone
(204, or 404: already gone, or gone on a retry after an attempt whose answer was lost),
retried alone in the next batch (429, 5xx, a rate limit: the transport's bounded
attempts), refused (a 403 the permanent delete refused is tried as a trash, in a batch, as
:mod:`drivestage.drive.removal` does for one); a call whose answer came twice is read again
alone first (:class:`~drivestage.drive.batches.Doubtful`). A lone :meth:`Deletes.delete`
reads its item alone, right before its delete. An item renamed or moved on Drive since the
listing is left alone either way. The requests that remove, and the caller's ``check`` (a
push's guard) before each of them and each retry: :mod:`drivestage.drive.store_removals`."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Collection, Mapping, Optional, Sequence, TypeVar

from drivestage.drive import answers, batches, marks_below, provenance, removal, reparent, retry
from drivestage.drive.store_removals import Outcomes, Removals, stops as _stops
from drivestage.drive.resources import DriveEntry, is_trashed
from drivestage.drive.transport import Transport
from drivestage.errors import DriveStageError, KeptMovedError, NotFoundError
from drivestage.store import RemoteEntry, TakenOut, kept_moved

T = TypeVar("T")

log = logging.getLogger("drivestage.drive.store")

#: How old (seconds) a batch's files.get answers may be when their items are deleted; a batch
#: whose retries took longer is read again (a rename in that window went unseen).
FRESH_FOR = 30.0


class Deletes(Removals):
    """Deleting items; the store supplies what it names and knows."""

    transport: Transport
    drive: Any
    drive_id: Optional[str]
    label: str
    _names: dict[str, str]
    _listed_in: dict[str, str]
    _held: dict[str, dict[str, marks_below.Stamp]]
    _targets: dict[str, str]
    _folder_ids: dict[tuple[str, ...], str]
    _item_drives: dict[str, str]
    _marks_asked: dict[str, bool]

    def describe(self, entry: RemoteEntry) -> str:  # the store's
        raise NotImplementedError

    def call(self, what: str, fn: Callable[[], T]) -> T:  # the store's
        raise NotImplementedError

    def _get(self, file_id: str, where: str) -> dict[str, Any]:  # the store's
        raise NotImplementedError

    def _children(self, parent_id: str, where: str, name: Optional[str] = None, *,
                  checking: bool = False) -> list[dict[str, Any]]:  # the store's
        raise NotImplementedError

    def _got(self, raw: Mapping[str, Any], file_id: str, where: str) -> dict[str, Any]:
        raise NotImplementedError  # the store's

    @staticmethod
    def _key(entry: RemoteEntry) -> str:  # the store's
        raise NotImplementedError

    def _init_deletes(self) -> None:
        #: The server refused a batch request itself (:class:`batches.NoBatches`).
        self._no_batches = False
        self._etags = {}

    def delete(self, entry: RemoteEntry, *, trash: bool = False,
               check: Optional[Callable[[], None]] = None) -> None:
        """Delete permanently (or move to the trash); already gone on a retry is fine. A
        shortcut is removed, never its target. Where Drive refuses a permanent delete but
        allows the trash (a shared drive's Content manager), the item goes to the trash, with
        one warning per run naming the role that deletes (:mod:`drivestage.drive.removal`).
        ``check`` (a push's guard) before each request that removes, each retry's too."""
        where = self.describe(entry)
        if not (isinstance(entry, DriveEntry) and entry.via_shortcut):  # not on a stale listing
            # (A mount's mark, a run folder inside: before its own read.)
            changed = self._unmarked_below(entry, where) if entry.is_dir else None
            res = self._get(entry.id, where)
            provenance.check_as_listed(res, entry, self._listed_in.get(entry.id), where,
                                       marked_before=self._marks_asked.get(entry.id, False))
            if changed is not None:   # (its own mark, read above, said first)
                marks_below.leave(changed)
        else:  # (a shortcut: what its id names is one, never a folder listed as one)
            res = self._get(self._key(entry), where)
            provenance.check_shortcut(res, entry, self._listed_in.get(self._key(entry)), where)
        self._read_as(entry, res)
        removal.remove(self.call, self.drive.CreateFile({"id": self._key(entry)}),
                       self.describe(entry), trash, drive_id=self._drive_of(entry),
                       scope=self._drive_of(entry) or self.label, check=check,
                       send=self._sender(entry))
        self._forget(entry)

    def take_out(self, entry: RemoteEntry, *, trash: bool = False,
                 check: Optional[Callable[[], None]] = None) -> TakenOut:
        """:meth:`delete`, except for a file also in another folder (a second parent kept
        from before 2020), which only the folder it was listed in loses (files.update
        ``removeParents``; the same files.get check first, the answer checked after): it
        stays in its other folders, said in one line: "stays" then ("placed" where another
        process took it out of those meanwhile, and Drive put it elsewhere). For good: Drive adds no
        second parent since 2020, so that link cannot be put back (a shortcut may stand for
        it). Where Drive refuses (:func:`~drivestage.drive.answers.drive_refused`), it is left
        in all, as a deletion leaves it (:func:`~drivestage.drive.provenance.stays_elsewhere`).
        No request more than a deletion's: the files.get, then the update in its place.
        ``check`` (a push's guard) before the request that removes, each retry's too."""
        if entry.is_dir or (isinstance(entry, DriveEntry) and entry.via_shortcut):
            self.delete(entry, trash=trash, check=check)
            return "deleted"
        where, listed_in = self.describe(entry), self._listed_in.get(entry.id)
        res = self._get(entry.id, where)
        provenance.check_unchanged(res, entry, listed_in, where)
        home = listed_in or entry.parent_id
        other = provenance.elsewhere(res, entry, listed_in)
        if home is None or other is None:
            self._read_as(entry, res)
            removal.remove(self.call, self.drive.CreateFile({"id": entry.id}), where, trash,
                           drive_id=self._drive_of(entry),
                           scope=self._drive_of(entry) or self.label, check=check,
                           send=self._sender(entry))
            self._forget(entry)
            return "deleted"
        folder = where.rsplit("/", 1)[0] if "/" in where else f"drive:id:{home}"
        refusals: list[BaseException] = []

        def guard() -> None:
            if check is not None:   # (before each try: a lease lost before a retry)
                try:
                    check()
                except BaseException as exc:
                    refusals.append(exc)
                    raise
        try:
            # (A retry after an answer lost once Drive did it asks to remove a parent it
            # no longer has: the same end state, read again where Drive answers an error.)
            now = reparent.update_parents(
                self.call, lambda: self._get(entry.id, where),
                self.drive.CreateFile({"id": entry.id}), f"take {where} out of {folder}",
                {"removeParents": home}, reparent.moved(None, home), before=guard)
        except DriveStageError as exc:
            if exc in refusals or not answers.drive_refused(exc):
                raise
            raise provenance.stays_elsewhere(where, answers.drive_words(exc)) from None
        provenance.check_taken_out(now, entry.id, home, where)
        if provenance.in_no_folder(now):
            # Drive's answer for an item it put in its owner's My Drive, and a liar's for
            # one it kept: one read (only here) tells which, before a line says it went.
            now = self._get(entry.id, where)
            provenance.check_read_after(now, entry.id, home, where)
        line, stays = provenance.taken_out(now, res, home, where, folder)
        log.warning("%s", line)
        self._forget(entry)
        return "stays" if stays else "placed"

    def _unmarked_below(self, folder: RemoteEntry, where: str) -> Optional[str]:
        """LeftAloneError where a run folder was marked in ``folder`` (by a mount) or at any
        depth inside it since the listing; why it is to be left where an item came into it
        or changed since (:func:`drivestage.drive.marks_below.left_unmarked`)."""
        return marks_below.left_unmarked(
            lambda at_id, at: self._children(at_id, at, checking=True),
            self._children, folder, where, self._held)

    def _read_as(self, entry: RemoteEntry, res: Mapping[str, Any]) -> None:
        """``entry``'s check read it as ``res``: its removal names that etag (If-Match)."""
        etag = res.get("etag")
        if isinstance(etag, str) and etag:
            self._etags[entry.id] = etag
        else:   # (a server without etags: the removal goes unconditional, as before)
            self._etags.pop(entry.id, None)

    def _drive_of(self, entry: RemoteEntry) -> Optional[str]:
        """The shared drive ``entry`` is in, as the check before its deletion read it (a
        folder of one reached through a shortcut from My Drive), else the store's: what a
        refusal's words say (attacksync34: "in My Drive" of a shared drive's file)."""
        return self._item_drives.get(self._key(entry)) or self.drive_id

    def _forget(self, entry: RemoteEntry) -> None:
        """What this store knew of ``entry``, deleted."""
        self._names.pop(self._key(entry), None)
        self._listed_in.pop(entry.id, None)
        self._held.pop(entry.id, None)
        self._targets.pop(entry.id, None)
        self._item_drives.pop(self._key(entry), None)
        self._etags.pop(entry.id, None)
        self._folder_ids = {k: v for k, v in self._folder_ids.items() if v != entry.id}

    def delete_many(self, entries: Sequence[RemoteEntry], *, trash: bool = False,
                    kept: Sequence[RemoteEntry] = (),
                    check: Optional[Callable[[], None]] = None,
                    removed_from: Optional[Mapping[str, Collection[str]]] = None,
                    into: Optional[Outcomes] = None) -> Outcomes:
        """:meth:`delete` of each of ``entries``, in batches of
        :data:`~drivestage.drive.batches.MAX_CALLS`: a files.get batch (the check), then a
        batch of the deletes the checks let through, each call's own answer acted on as a
        lone delete's (:func:`_settle`). Stops after a batch in which an item failed
        otherwise than gone or left alone; what it did not try is not in the answer
        (:meth:`drivestage.store.RemoteStore.delete_many`). ``kept`` are read with the first
        checks (in their batch) and told first: one not as listed (:class:`KeptMovedError`)
        or not read leaves every entry alone, with that error. ``check`` is called before
        each request that removes (a batch of deletes, or a lone item's, each retry's too:
        :meth:`_remove_many`); what it raises stops the pass there, raised: ``into``, the
        answer, holds what went before it (said by the caller: guards40).
        ``removed_from``: the folders
        the caller removes an item from besides the one it was listed in (by id), which the
        check lets it go from (:func:`drivestage.drive.provenance.elsewhere`)."""
        out: Outcomes = {} if into is None else into
        entries = list({e.id: e for e in entries}.values())  # one call per item in a batch
        doomed = {e.id for e in entries}
        kept = [k for k in {k.id: k for k in kept}.values() if k.id not in doomed]
        for at in range(0, len(entries), batches.MAX_CALLS):
            chunk = entries[at:at + batches.MAX_CALLS]
            # (over 100 calls: two batch requests)
            checked = self._check_many(chunk, kept, removed_from or {})
            bad = ([checked[k.id] for k in kept if checked.get(k.id) is not None] + [None])[0]
            if bad is not None:
                # What the plan keeps is not what it counted on (a lagging listing still
                # showed the newest checkpoint the user had just trashed; keep_last then
                # deleted every other one): nothing goes.
                out.update(dict.fromkeys(doomed, bad))
                return out
            checked = {e.id: checked[e.id] for e in chunk if e.id in checked}
            kept = []
            # (Those to remove are told once removed: a guard refusing first leaves them out.)
            out.update({i: exc for i, exc in checked.items() if exc is not None})
            ok = [e for e in chunk if e.id in checked and checked[e.id] is None]
            self._remove_many(ok, trash, check or _unchecked, out)
            # (Lists, not generators: a Ctrl-C in a generator closed later is ignored.)
            if any([_stops(exc) for exc in out.values()]):
                break
        return out

    def _check_many(self, chunk: list[RemoteEntry], kept: Sequence[RemoteEntry] = (),
                    removed_from: Mapping[str, Collection[str]] = {}
                    ) -> dict[str, Optional[DriveStageError]]:
        """The check of :meth:`delete` for each item of ``chunk``, read in one batch: id ->
        None (to delete) or why not; it stops at an item whose check failed otherwise (an
        outage: the items after it are not asked, nor in the answer). An item of ``kept``
        is checked as one the plan keeps (:class:`KeptMovedError` when not as listed)."""
        keeps = {k.id for k in kept}
        # What is inside each folder first, then the batch: its answers are the freshest
        # word when the deletes go (a walk of many folders takes a while).
        below: dict[str, DriveStageError] = {}
        changed: dict[str, str] = {}   # (left once its own read passed: its mark said first)
        for e in chunk:
            if e.is_dir and not (isinstance(e, DriveEntry) and e.via_shortcut):
                try:
                    said = self._unmarked_below(e, self.describe(e))
                    if said is not None:
                        changed[e.id] = said
                except DriveStageError as exc:
                    below[e.id] = exc
                    if _stops(exc):
                        break   # (an outage: the items from here on are not asked)
        # A shortcut is read by its own id (the one its delete names).
        asked = {e.id: self._key(e) for e in chunk}
        ids = list(asked.values())
        ids += [k.id for k in kept]  # last in the batch, but told first: they decide for all
        for _ in range(2):
            began = time.monotonic()
            got = self._read_many(ids)
            if time.monotonic() - began <= FRESH_FOR:
                break
            # The batch's retries (a call's Retry-After) outlasted FRESH_FOR: the answers of
            # its first attempt are too old to act on. Read again; slow again, each alone.
            got = {}
        out: dict[str, Optional[DriveStageError]] = {}
        for e in list(kept) + chunk:
            where, read = self.describe(e), e.id if e.id in keeps else asked[e.id]
            try:
                res = got.get(read)
                if res is None or isinstance(res, batches.Doubtful):
                    raw = self._get(read, where)  # read alone
                elif isinstance(res, BaseException):
                    typed = retry.translate(res, f"stat {where}")
                    raise typed from (None if typed is res else res)
                else:
                    raw = self._got(res, read, where)
                if e.id in keeps:
                    _check_kept(raw, e, self._listed_in.get(e.id), where)
                elif isinstance(e, DriveEntry) and e.via_shortcut:
                    provenance.check_shortcut(  # removed itself, never its target
                        raw, e, self._listed_in.get(self._key(e)), where)
                else:
                    if e.id in below:
                        raise below[e.id]
                    also, home = removed_from.get(e.id, ()), self._listed_in.get(e.id)
                    if also and home not in also:
                        # Last listed in a folder the caller does not take it out of (a
                        # folder to go whole, left at its own check): that one is elsewhere
                        # (attackrm39).
                        home = min(also)
                        if home in self._names:   # (named where it goes from: its advice
                            where = f"{self._names[home]}/{e.name}"   # named the other)
                    provenance.check_as_listed(raw, e, home, where, also=also,
                                               marked_before=self._marks_asked.get(e.id, False))
                    if e.id in changed:
                        marks_below.leave(changed[e.id])
                if e.id not in keeps:
                    self._read_as(e, raw)
            except NotFoundError as exc:
                out[e.id] = kept_moved(where, "deleted") \
                    if e.id in keeps and not isinstance(exc, KeptMovedError) else exc
                if e.id in keeps:
                    break
            except DriveStageError as exc:
                out[e.id] = exc
                if _stops(exc):
                    break
            else:
                out[e.id] = None
        return out

    def _read_many(self, ids: list[str]) -> dict[str, batches.Got]:
        """files.get of ``ids`` in one batch; {} where each is to be read alone (one item,
        a server without Drive's batches)."""
        if len(ids) < 2 or self._no_batches:
            return {}
        try:
            got = batches.get_many(self.transport, {i: self._names.get(i) or f"drive:id:{i}"
                                                    for i in ids})
        except batches.NoBatches as exc:
            log.info("%s; each item is read alone before its deletion", exc)
            if exc.unanswered:
                # No attempt answered: a proxy that resets batches, or an outage. A lone
                # read tells which; in an outage it fails as every item's would, and the
                # batches stay for a later pass (a mirror's store lives for hours).
                first = ids[0]
                try:
                    self._get(first, self._names.get(first) or f"drive:id:{first}")
                except DriveStageError as lone:
                    return {i: lone for i in ids}
            self._no_batches = True
            return {}
        if all([_gone(got[i]) for i in ids]):
            # Every call 404 while the listing just showed the items: a proxy that takes the
            # batch endpoint but not its calls, or another machine's prune. One read alone
            # tells which (taken as gone, a prune deleted nothing and said so, exit 0).
            try:
                self._get(ids[0], self._names.get(ids[0]) or f"drive:id:{ids[0]}")
            except NotFoundError:
                return got
            log.info("every call of a batch request answered 404, but its first item is "
                     "there; each item is read alone before its deletion")
            self._no_batches = True
            return {}
        return got

def _unchecked() -> None:
    """No guard: every removal goes on."""


def _check_kept(res: Mapping[str, Any], entry: RemoteEntry, listed_in: Optional[str],
                where: str) -> None:
    """files.get shows ``entry``, which the plan keeps, as ``res``: KeptMovedError unless it
    is still as listed (not trashed, not renamed or moved, the same md5)."""
    now = res.get("md5Checksum")
    change = "moved to the trash" if is_trashed(res) else \
        provenance.moved_since_listed(res, entry, listed_in)
    if change is None and entry.md5 and isinstance(now, str) and now.lower() != entry.md5.lower():
        change = f"given other content (md5 {now})"
    if change is not None:
        raise kept_moved(where, change)


def _gone(got: batches.Got) -> bool:
    """A call in a batch answered 404 (or 410)."""
    failure = answers.failure_of(got) if isinstance(got, BaseException) else None
    return failure is not None and failure.gone
