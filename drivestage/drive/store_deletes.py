"""Deletions of :class:`drivestage.drive.store.DriveStore` (a mixin; split from store.py at
its line cap): an item is deleted only while Drive still shows it as the listing did
(:func:`drivestage.drive.provenance.check_as_listed`), and removed by
:func:`drivestage.drive.removal.remove` (the trash where Drive allows only that)."""
from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

from drivestage.drive import provenance, removal
from drivestage.drive.resources import DriveEntry
from drivestage.store import RemoteEntry

T = TypeVar("T")


class Deletes:
    """Deleting items; the store supplies what it names and knows."""

    drive: Any
    drive_id: Optional[str]
    label: str
    _names: dict[str, str]
    _listed_in: dict[str, str]
    _targets: dict[str, str]
    _folder_ids: dict[tuple[str, ...], str]

    def describe(self, entry: RemoteEntry) -> str:  # the store's
        raise NotImplementedError

    def call(self, what: str, fn: Callable[[], T]) -> T:  # the store's
        raise NotImplementedError

    def _get(self, file_id: str, where: str) -> dict[str, Any]:  # the store's
        raise NotImplementedError

    @staticmethod
    def _key(entry: RemoteEntry) -> str:  # the store's
        raise NotImplementedError

    def delete(self, entry: RemoteEntry, *, trash: bool = False) -> None:
        """Delete permanently (or move to the trash); already gone on a retry is fine. A
        shortcut is removed, never its target. Where Drive refuses a permanent delete but
        allows the trash (a shared drive's Content manager), the item goes to the trash, with
        one warning per run naming the role that deletes (:mod:`drivestage.drive.removal`)."""
        if not (isinstance(entry, DriveEntry) and entry.via_shortcut):  # not on a stale listing
            where = self.describe(entry)
            provenance.check_as_listed(self._get(entry.id, where), entry,
                                       self._listed_in.get(entry.id), where)
        removal.remove(self.call, self.drive.CreateFile({"id": self._key(entry)}),
                       self.describe(entry), trash, drive_id=self.drive_id,
                       scope=self.drive_id or self.label)
        self._names.pop(self._key(entry), None)
        self._listed_in.pop(entry.id, None)
        self._targets.pop(entry.id, None)
        self._folder_ids = {k: v for k, v in self._folder_ids.items() if v != entry.id}
