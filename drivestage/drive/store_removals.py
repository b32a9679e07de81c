"""The requests that remove, of a pass of deletions (:class:`Removals`, a mixin of
:class:`drivestage.drive.store_deletes.Deletes`; split from store_deletes.py at its line
cap): the deletes (or trashes) the checks let through, in one batch request per 100, or one
request each on a server without Drive's batches; each call's own answer acted on as a lone
delete's (:meth:`Removals._settle`).

The caller's ``check`` (a push's guard) is called before each request that removes, each
retry of it too (:func:`drivestage.drive.batches.call_many`'s ``before``,
:func:`drivestage.drive.removal.remove`'s ``check``); what it raises is raised as it is,
never taken for an item's outcome. Outcomes go into the pass's answer (``out``) as each is
known: a guard that refuses midway leaves in it what Drive removed before (guards40: the
"deleted …" lines of the batches done were lost with the pass's answer)."""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar

from drivestage.drive import answers, batches, removal, retry
from drivestage.errors import (ChangedSinceCheckedError, DriveStageError, LeftAloneError,
                               NotFoundError)
from drivestage.store import RemoteEntry

T = TypeVar("T")

#: A pass's outcomes by id: None (gone) or why not.
Outcomes = dict[str, Optional[DriveStageError]]

log = logging.getLogger("drivestage.drive.store")


class Removals:
    """Sending the removals of a pass; the store supplies what it names and knows."""

    transport: Any
    drive: Any
    drive_id: Optional[str]
    label: str
    _no_batches: bool
    #: By id, the etag the check before an item's removal read: its removal names it
    #: (``If-Match``), so Drive refuses it where the item changed since (412: kept).
    _etags: dict[str, str]

    def describe(self, entry: RemoteEntry) -> str:  # the store's
        raise NotImplementedError

    def call(self, what: str, fn: Callable[[], T]) -> T:  # the store's
        raise NotImplementedError

    def _get(self, file_id: str, where: str) -> dict[str, Any]:  # the store's
        raise NotImplementedError

    @staticmethod
    def _key(entry: RemoteEntry) -> str:  # the store's
        raise NotImplementedError

    def _drive_of(self, entry: RemoteEntry) -> Optional[str]:  # the deletes'
        raise NotImplementedError

    def _forget(self, entry: RemoteEntry) -> None:  # the deletes'
        raise NotImplementedError

    def _remove_many(self, ok: list[RemoteEntry], trash: bool,
                     check: Callable[[], None], out: Outcomes) -> None:
        """The deletes (or trashes) of ``ok``, checked, their outcomes into ``out``: in one
        batch request, or one request each on a server without Drive's batches (or for one
        item); ``check()`` before each such request and each retry (the caller's guard: one
        per batch request, where its deletes go at once)."""
        if len(ok) < 2 or self._no_batches:
            self._remove_each(ok, trash, check, out)
            return
        where = {self._key(e): self.describe(e) for e in ok}
        sent: dict[str, int] = {}
        got: dict[str, batches.Got] = {}
        try:   # (the guard before each batch request, a retry's too)
            batches.call_many(self.transport, where, "trash" if trash else "delete", sent,
                              before=check, out=got, etags=self._etags_of(ok))
        except batches.NoBatches as exc:
            # Refused whole (nothing done), or an answer that is not Drive's (some may be
            # done: a lone delete then answers 404, taken as gone). What an earlier attempt's
            # answer (Drive's) said done is done: told, never sent again alone (a guard
            # stopping those left it unsaid: attackguard40).
            log.info("%s; each item is removed alone", exc)
            self._no_batches = True
            self._done(ok, got, out)
            # Sent in a batch whose answer was lost (or not Drive's): Drive may have done
            # them. A guard stopping the lone removals before theirs left them unsaid
            # (attackpush41: three permanent deletes done, no line). A refusal of the only
            # attempt did nothing.
            maybe = [e for e in ok if e.id not in out and (
                sent.get(self._key(e), 0) > (1 if exc.refused else 0))]
            self._remove_each([e for e in ok if e.id not in out], trash, check, out,
                              sent_before=maybe)
            return
        except BaseException:   # (the guard refused a retry, a Ctrl-C): what went is told
            self._done(ok, got, out)
            # (and what was sent without an answer had: Drive may have done it)
            removal.say_unanswered([where[self._key(e)] for e in ok
                                    if e.id not in out and sent.get(self._key(e))])
            raise
        self._done(ok, got, out)   # (first: a guard refusing below leaves them told)
        refused: dict[str, DriveStageError] = {}
        for e in ok:
            key, name = self._key(e), where[self._key(e)]
            if e.id in out:
                continue
            outcome = self._settle(e, got[key], name, trash, sent.get(key, 1), check)
            if outcome is not None and answers.drive_refused(outcome) and not trash:
                refused[e.id] = outcome  # tried as a trash below, as a lone delete is
            else:
                out[e.id] = outcome
                if outcome is None:
                    self._forget(e)
        if refused:
            self._trash_instead([e for e in ok if e.id in refused], refused, check, out)

    def _etags_of(self, items: Sequence[RemoteEntry]) -> dict[str, str]:
        """The etags the checks read of ``items``, by the id their removal names."""
        return {self._key(e): self._etags[e.id] for e in items if e.id in self._etags}

    def _sender(self, e: RemoteEntry, trashed: bool = False
                ) -> Optional[Callable[[bool, bool], None]]:
        """A lone removal of ``e`` that names the etag its check read; None where none was
        read (``f``'s own Delete/Trash then, unconditional), or where ``trashed``: a trash
        of it named the etag already (a batch whose answers were lost), and Drive, had it
        done that, gave the item a new one (a retry's: attackint46)."""
        etag = None if trashed else self._etags.get(e.id)
        return batches.sender(self.transport, self._key(e), etag) if etag else None

    def _done(self, ok: list[RemoteEntry], got: Mapping[str, batches.Got],
              out: Outcomes) -> None:
        """The items of ``ok`` whose call Drive answered done in ``got``, into ``out``."""
        for e in ok:
            if e.id not in out and self._key(e) in got and \
                    not isinstance(got[self._key(e)], BaseException):
                out[e.id] = None
                self._forget(e)

    def _settle(self, e: RemoteEntry, got: batches.Got, where: str, trash: bool,
                sent: int, check: Callable[[], None] = lambda: None
                ) -> Optional[DriveStageError]:
        """The outcome of one delete (or trash) call in a batch: None when done."""
        verb = "trash" if trash else "delete"
        if isinstance(got, batches.Doubtful):
            return self._recheck(e, where, trash, check)
        if not isinstance(got, BaseException):
            return None
        failure = answers.failure_of(got)
        if failure is not None and failure.gone and sent > 1:
            return None  # an earlier attempt went through before its answer was lost
        typed = retry.translate(got, f"{verb} {where}")  # the one place that types answers
        if isinstance(typed, ChangedSinceCheckedError):
            log.warning("%s", typed)   # (412 to its If-Match: kept, as a lone one says)
        return typed if isinstance(typed, DriveStageError) else DriveStageError(str(typed))

    def _recheck(self, e: RemoteEntry, where: str, trash: bool,
                 check: Callable[[], None] = lambda: None) -> Optional[DriveStageError]:
        """A call whose answer came twice in the batch's: neither is believed. The item is
        read alone: gone (or in the trash, asked for that) is done; else it is removed
        alone, its own answer acted on."""
        try:
            raw = self._get(self._key(e), where)
        except NotFoundError:
            log.info("%s: the batch's answer named its call twice; it is gone", where)
            return None
        except DriveStageError as exc:
            return exc
        labels = raw.get("labels")
        if trash and (raw.get("trashed") or (isinstance(labels, dict) and labels.get("trashed"))):
            return None
        log.info("%s: the batch's answer named its call twice; it is still there, removed "
                 "alone", where)
        return self._remove_each([e], trash, check, {})[e.id]

    def _remove_each(self, ok: list[RemoteEntry], trash: bool, check: Callable[[], None],
                     out: Outcomes, sent_before: Sequence[RemoteEntry] = ()) -> Outcomes:
        """One request each (:func:`removal.remove`), ``check()`` before each (and before
        each retry), stopping at a failure; the outcomes into ``out`` (returned).
        ``sent_before``: those of ``ok`` sent already (a batch whose answer was lost): a
        stop before their own answer says they may be gone."""
        refusals: list[BaseException] = []
        lost: list[str] = []   # (a retry refused: sent, its answer not had)
        went = {b.id for b in sent_before} if trash else set()   # (a trash: etag named)

        def ask() -> None:   # (what the guard raises is raised, never an item's outcome)
            try:
                check()
            except BaseException as exc:
                refusals.append(exc)
                raise
        for e in ok:
            try:
                removal.remove(self.call, self.drive.CreateFile({"id": self._key(e)}),
                               self.describe(e), trash, drive_id=self._drive_of(e),
                               scope=self._drive_of(e) or self.label, check=ask,
                               unanswered=lost, send=self._sender(e, e.id in went))
            except BaseException as exc:
                if exc in refusals or not isinstance(exc, DriveStageError):
                    removal.say_unanswered(lost + [
                        name for name in (self.describe(b) for b in sent_before
                                          if b.id not in out) if name not in lost])
                    raise
                out[e.id] = exc
                if stops(exc):
                    break
            else:
                out[e.id] = None
                self._forget(e)
        return out

    def _trash_instead(self, items: list[RemoteEntry], refused: Mapping[str, DriveStageError],
                       check: Callable[[], None], out: Outcomes) -> None:
        """Permanent deletes Drive refused, tried as trashes in one batch (a shared drive's
        Content manager), one warning per shared drive and process; both refused: why
        (:func:`drivestage.drive.removal.not_removed`). The outcomes into ``out``."""
        where = {self._key(e): self.describe(e) for e in items}
        sent: dict[str, int] = {}
        got: dict[str, batches.Got] = {}
        maybe: list[RemoteEntry] = []   # (sent in a batch whose answer was lost)
        try:
            batches.call_many(self.transport, where, "trash", sent, before=check, out=got,
                              etags=self._etags_of(items))
        except batches.NoBatches as exc:
            got = {}
            maybe = [e for e in items
                     if sent.get(self._key(e), 0) > (1 if exc.refused else 0)]
        except BaseException:   # (the guard refused a retry, a Ctrl-C): what went is told
            done = [e for e in items if self._key(e) in got
                    and not isinstance(got[self._key(e)], BaseException)]
            for e in done:
                removal.warn_trashed_instead(self._drive_of(e) or self.label,
                                             where[self._key(e)], refused[e.id],
                                             self._drive_of(e))
                out[e.id] = None
                self._forget(e)
            removal.say_unanswered([where[self._key(e)] for e in items
                                    if self._key(e) not in got and sent.get(self._key(e))])
            raise
        for e in items:
            key = self._key(e)
            if key in got:
                again = self._settle(e, got[key], where[key], True, sent.get(key, 1), check)
            else:  # no batch: alone (a stop says those sent in it may be gone)
                again = self._remove_each([e], True, check, {}, sent_before=[
                    m for m in maybe if m.id not in out])[e.id]
            if again is None:
                removal.warn_trashed_instead(self._drive_of(e) or self.label, where[key],
                                             refused[e.id], self._drive_of(e))
                out[e.id] = None
                self._forget(e)
            else:
                out[e.id] = removal.not_removed(where[key], refused[e.id], again,
                                                self._drive_of(e))


def stops(exc: Optional[DriveStageError]) -> bool:
    """A deletion's outcome after which no more are tried: a failure, not gone (the goal is
    reached) nor left alone (changed since the listing: the store said why)."""
    return exc is not None and not isinstance(exc, (NotFoundError, LeftAloneError))
