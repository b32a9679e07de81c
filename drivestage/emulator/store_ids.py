"""Ids in the emulator's store: new ones, and those files.generateIds hands out and a create
may take (:class:`StoreIds`, a mixin of :class:`~drivestage.emulator.store.EmulatorStore`;
split from store.py at its line cap).
"""
from __future__ import annotations

import secrets

from drivestage.emulator.errors import EmulatorApiError


def new_id(prefix: str = "1") -> str:
    """A Drive-looking opaque id (URL-safe, 33 characters)."""
    return prefix + secrets.token_urlsafe(24)[: 33 - len(prefix)].replace("-", "x").replace("_", "y")


def id_in_use() -> EmulatorApiError:
    """Drive's answer to a create naming the id of a file that exists (a create retried
    after its answer was lost): nothing is created."""
    return EmulatorApiError(409, "duplicate", "A file already exists with the provided ID.",
                            location="id", location_type="other")


def id_not_usable() -> EmulatorApiError:
    """Drive's answer to a create naming an id files.generateIds never gave."""
    return EmulatorApiError(400, "invalid", "The provided file ID is not usable.",
                            location="id", location_type="other")


class StoreIds:
    """The generated ids of :class:`~drivestage.emulator.store.EmulatorStore`."""

    def generate_ids(self, count: int) -> list[str]:
        """``count`` new ids a create may name as its file's ``id`` (files.generateIds)."""
        with self.lock:
            self.check_open()
            ids = [new_id() for _ in range(count)]
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO ids VALUES (?, ?)",
                                     [(i, "false") for i in ids])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.generated.update(dict.fromkeys(ids, False))
            return ids

    def check_new_id(self, file_id: object) -> str:
        """``file_id`` if a create may name it (Drive's answers otherwise: 409 when it is a
        file's id, or was - a used id is never free again -, 400 when Drive never generated
        it); the id is not taken (see :meth:`create`)."""
        with self.lock:
            if not isinstance(file_id, str) or not file_id:
                raise id_not_usable()
            if file_id in self.files or self.generated.get(file_id):
                raise id_in_use()
            if file_id not in self.generated:
                raise id_not_usable()
            return file_id
