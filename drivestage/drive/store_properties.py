"""Custom properties :class:`drivestage.drive.store.DriveStore` reads and writes on an item (a
mixin of :class:`~drivestage.drive.store_folders.FolderMaking`; split from store_folders.py at
its line cap): PUBLIC ones read now and written one by one (the trainer's lease claim on a
full Drive, :mod:`trainer.lease_props`), all of an item's read with its etag and written back
only where it is still as read (the trainer's lease arbiter, :mod:`trainer.lease_cas`), and the
first-seen mark of a file retention waits on (:mod:`drivestage.first_seen`), with the store's
clocks retention reads it by."""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Optional, TypeVar

from drivestage import first_seen
from drivestage.drive import answers, server_clock
from drivestage.drive.transport import Transport
from drivestage.errors import DriveStageError, NotFoundError, PermissionDeniedError
from drivestage.store import RemoteEntry

log = logging.getLogger("drivestage.drive.store")

T = TypeVar("T")


class Properties:
    """An item's custom properties; the store supplies what it names and knows."""

    transport: Transport
    _seen: dict[str, Optional[first_seen.Mark]]

    def describe(self, entry: RemoteEntry) -> str:  # the store's
        raise NotImplementedError

    def call(self, what: str, fn: Callable[[], T]) -> T:  # the store's
        raise NotImplementedError

    def public_properties(self, entry: RemoteEntry) -> dict[str, str]:
        """The PUBLIC custom properties of ``entry`` (key -> value), by one ``files.get`` of
        its properties alone, read now (a listing may leave them out): what every OAuth
        client sees. The trainer's lease claim on a full Drive (:mod:`trainer.lease_props`)."""
        res = self.call(f"read the properties of {self.describe(entry)}", lambda: (
            self.transport.files().get(fileId=entry.id, supportsAllDrives=True,
                                       fields="properties(key,value,visibility)")
            .execute(http=self.transport.http())))
        props = res.get("properties") if isinstance(res, dict) else None
        return {str(p["key"]): str(p.get("value", "")) for p in props or ()
                if isinstance(p, Mapping) and p.get("visibility") == "PUBLIC"
                and isinstance(p.get("key"), str)} if isinstance(props, list) else {}

    def set_public_property(self, entry: RemoteEntry, key: str, value: Optional[str]) -> None:
        """Write the PUBLIC custom property ``key`` of ``entry`` (one ``properties.insert``:
        the others stay), or remove it where ``value`` is None (one ``properties.delete``;
        none there is fine). Drive's refusal raises (a full Drive's may: storage quota)."""
        where = self.describe(entry)
        props = self.transport.service.properties()
        if value is not None:
            body = {"key": key, "value": value, "visibility": "PUBLIC"}
            self.call(f"write the property {key} of {where}", lambda: props.insert(
                fileId=entry.id, body=body).execute(http=self.transport.http()))
            return

        def remove() -> None:
            try:
                props.delete(fileId=entry.id, propertyKey=key, visibility="PUBLIC"
                             ).execute(http=self.transport.http())
            except Exception as exc:
                failure = answers.failure_of(exc)
                if failure is None or failure.status != 404:   # (404: none there any more)
                    raise
        self.call(f"remove the property {key} of {where}", remove)

    def properties_as_read(self, entry: RemoteEntry) -> tuple[str, list[dict[str, str]]]:
        """``entry``'s etag and the custom properties this app sees (each a dict of key,
        value, visibility), by one ``files.get`` read now (strongly consistent, unlike a
        listing): what :meth:`swap_properties` names and writes back. The etag is "" where
        the server sends none (no conditional write there). The trainer's lease
        (:mod:`trainer.lease_cas`)."""
        res = self.call(f"read the properties of {self.describe(entry)}", lambda: (
            self.transport.files().get(fileId=entry.id, supportsAllDrives=True,
                                       fields="etag,properties(key,value,visibility)")
            .execute(http=self.transport.http())))
        etag = res.get("etag") if isinstance(res, dict) else None
        props = res.get("properties") if isinstance(res, dict) else None
        return etag if isinstance(etag, str) else "", [
            {"key": p["key"], "value": str(p.get("value", "")),
             "visibility": str(p.get("visibility") or "PRIVATE")}
            for p in (props if isinstance(props, list) else ())
            if isinstance(p, Mapping) and isinstance(p.get("key"), str)]

    def swap_properties(self, entry: RemoteEntry, etag: str,
                        properties: Optional[list[dict[str, str]]]) -> str:
        """Write ``properties`` (those :meth:`properties_as_read` gave, changed) on ``entry``
        only where it is still as read: one ``files.patch`` naming ``etag`` (``If-Match``,
        which Drive v2 honours on a patch). Every property read goes back, so a patch that
        replaces the array loses none (Drive's reference does not say whether it merges).
        Returns the new etag ("" where none is sent); raises
        :class:`~drivestage.errors.PreconditionFailedError` where it changed since the read
        (nothing written). A retry after a lost answer meets this write's own etag: a 412
        its caller reads as any other (it reads again and finds its own value).
        ``properties`` None: a patch that writes nothing and reads nothing back (whether
        ``etag`` is honoured: :func:`trainer.lease_cas.probe`); it returns ""."""
        def send() -> Any:
            request = self.transport.files().patch(
                fileId=entry.id, supportsAllDrives=True,
                **({"fields": "id", "body": {}} if properties is None else
                   {"fields": "etag", "body": {"properties": properties}}))
            request.headers["If-Match"] = etag
            return request.execute(http=self.transport.http())
        res = self.call(f"{answers.IF_UNCHANGED}the properties of {self.describe(entry)}", send)
        made = res.get("etag") if isinstance(res, dict) else None
        return made if isinstance(made, str) else ""

    def first_seen(self, entry: RemoteEntry, now: float,
                   write: bool = True) -> Optional[first_seen.Mark]:
        """The file's own first-seen mark (:mod:`drivestage.first_seen`): as listed, else read
        by one ``files.get`` of its properties (a listing may leave them out); where it has
        none to trust (none, garbage, a copy's, of other bytes, of another folder or name,
        ahead of ``now``: the later of this machine's clock and Drive's), one made ``now``
        written by one ``properties.insert`` (``write`` False: not written), with the
        arrival a mark of these bytes says (:func:`drivestage.first_seen.made`). None
        where Drive refuses the write (no writer access; at its limit of public properties)
        or the file is gone: it is kept. Asked once per file, bytes, place and store."""
        # (a mirror's store lives on: bytes change, files are moved)
        key = f"{entry.id}\n{entry.md5}\n{first_seen.place(entry)}"
        if key in self._seen:
            return self._seen[key]
        where = self.describe(entry)
        value = entry.seen_mark
        if value is None:
            try:
                res = self.call(f"read the properties of {where}", lambda: (
                    self.transport.files().get(fileId=entry.id, supportsAllDrives=True,
                                               fields="properties(key,value,visibility)")
                    .execute(http=self.transport.http())))
            except NotFoundError:   # gone since the listing: nothing to retire
                self._seen[key] = None
                return None
            props = res.get("properties") if isinstance(res, dict) else None
            value = next((str(p.get("value")) for p in props if isinstance(p, Mapping)
                          and p.get("key") == first_seen.SEEN_MARK
                          and p.get("visibility") == "PUBLIC"),
                         None) if isinstance(props, list) else None
        mark = first_seen.parse(value, entry, now)
        if mark is None:   # (written anew; a moved file's bytes still came when they came)
            if not write:   # (a dry run: taken as now, not kept, so a real pass writes it)
                return first_seen.made(entry, now, value)
            mark = first_seen.made(entry, now, value) \
                if self._mark_seen(entry, where, first_seen.stamp(entry, now, value)) else None
        self._seen[key] = mark
        return mark

    def clock(self) -> tuple[float, float]:
        """:meth:`drivestage.store.RemoteStore.clock`: this machine's and Drive's, as its
        answers' ``Date`` says (:func:`drivestage.drive.server_clock.span`)."""
        return server_clock.span()

    def clock_shift(self) -> float:
        """:meth:`drivestage.store.RemoteStore.clock_shift`: Drive's ``Date`` less this
        machine's clock, past ``server_clock.TOLERANCE``, as last heard with a ``Date``
        (:func:`server_clock.heard_skew`: an answer since without one is no news of it)."""
        return server_clock.heard_skew() or 0.0

    def clear_seen(self, entry: RemoteEntry, came: Optional[float] = None) -> bool:
        """Remove the file's first-seen mark (one ``properties.delete``), now that it is
        whole (:func:`drivestage.first_seen.clear`); given ``came`` (a checkpoint's), write
        it over (one ``properties.insert``: :func:`drivestage.first_seen.whole`). None there
        any more (another pass's clear, the file gone), Drive's refusal (no writer access:
        nor then could this account delete it) or a failure past the retries leaves it:
        False (a mark left costs nothing now; the pass's work is done)."""
        where = self.describe(entry)
        props = self.transport.service.properties()
        body = {"key": first_seen.SEEN_MARK, "visibility": "PUBLIC",
                "value": first_seen.whole(entry, came or 0.0)}
        try:
            self.call(f"clear the first-seen mark of {where}", lambda: (
                props.delete(fileId=entry.id, propertyKey=first_seen.SEEN_MARK,
                             visibility="PUBLIC") if came is None
                else props.insert(fileId=entry.id, body=body))
                .execute(http=self.transport.http()))
        except DriveStageError as exc:
            log.info("left the first-seen mark of %s (%s)", where, exc)
            return False
        self._seen.pop(f"{entry.id}\n{entry.md5}\n{first_seen.place(entry)}", None)
        return True

    def _mark_seen(self, entry: RemoteEntry, where: str, value: str) -> bool:
        """Write the first-seen mark ``value`` on ``entry``; whether Drive took it."""
        body = {"key": first_seen.SEEN_MARK, "value": value, "visibility": "PUBLIC"}
        try:
            self.call(f"mark when {where} was first seen", lambda: (
                self.transport.service.properties().insert(fileId=entry.id, body=body)
                .execute(http=self.transport.http())))
        except DriveStageError as exc:
            # (No writer access: nor could it be deleted. At Drive's limit of 30 public
            # properties: kept, as a file it cannot tell the age of.)
            failure = answers.failure_of(exc)
            if not isinstance(exc, (PermissionDeniedError, NotFoundError)) and (
                    failure is None or failure.reason != "propertyCountLimitExceeded"):
                raise
            log.info("kept %s: its first-seen mark could not be written (%s)", where, exc)
            return False
        return True
