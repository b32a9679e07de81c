"""The ids this machine chose for files it is about to create on a store: recorded before the
create is sent, so that a create whose answer was lost (a timeout, a reset, the process killed
or Ctrl-C'd while the answer was on its way) is sent again with the same id by the next push,
and the store refuses it (Drive answers 409) instead of making a second file of the name.

One JSON file under the state folder (``create-ids.json``): ``"<local path>|<folder id>|<name>"``
-> ``{"id", "folder", "t"}``. A push writes it once per pass (the ids of every file it is
about to create, and the records it no longer needs), never once per file: every state write
is an fsync. A record older than :data:`MAX_AGE` is dropped, never retried for ever.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from drivestage.state import JsonFile, state_dir

#: A recorded id is of use while its lost create may still be made, or shown by a listing:
#: seconds to minutes. After a week (as long as Drive keeps an upload session) it is dropped.
MAX_AGE = 7 * 24 * 3600


class CreateIds:
    """The recorded ids (see the module's doc); every method reads or writes the file once."""

    def __init__(self, path: Optional[Path] = None):
        self._file = JsonFile(Path(path) if path else state_dir() / "create-ids.json")

    @staticmethod
    def key(local_path: str, folder_id: str, name: str) -> str:
        """What a record is of: the local file and where it goes (its folder and name)."""
        return "|".join([os.path.abspath(local_path), folder_id, name])

    def recorded(self) -> dict[str, dict[str, Any]]:
        """The records younger than :data:`MAX_AGE`, well formed, by key."""
        now = time.time()
        return {k: v for k, v in self._file.read().items() if _fresh(v, now)}

    def update(self, add: Mapping[str, tuple[str, str]], drop: Iterable[str]) -> bool:
        """Record ``add`` (key -> (id, folder id)) and forget ``drop``, in one write (old
        and damaged records go too); whether it was written (not when the state folder
        cannot be: then a create cut now may be made twice, as before ids)."""
        gone = set(drop)
        now = time.time()

        def change(data: dict[str, Any]) -> None:
            for key in [k for k, v in data.items() if k in gone or not _fresh(v, now)]:
                del data[key]
            for key, (file_id, folder_id) in add.items():
                data[key] = {"id": file_id, "folder": folder_id, "t": now}
        return self._file.update_or_warn(change, "a create cut now may be made twice")


def _fresh(record: Any, now: float) -> bool:
    """Whether ``record`` is one (an id, a folder, a time) and younger than MAX_AGE."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str) \
            or not isinstance(record.get("folder"), str):
        return False
    t = record.get("t")
    return isinstance(t, (int, float)) and not isinstance(t, bool) and 0 <= now - t <= MAX_AGE
