"""The ids this machine chose for files it is about to create on a store: recorded before the
create is sent, so that a create whose answer was lost (a timeout, a reset, the process killed
or Ctrl-C'd while the answer was on its way) is sent again with the same id by the next push,
and the store refuses it (Drive answers 409) instead of making a second file of the name.

One JSON file under the state folder (``create-ids.json``): ``"<local path>|<folder id>|<name>"``
-> ``{"id", "folder", "t"}``, and ``"md5"`` once the file was made and verified. A push writes
it once per pass (the ids of every file it is about to create, then which were verified and
the records it no longer needs), never once per file: every state write is an fsync. A
record older than :data:`MAX_AGE` is dropped, never retried for ever; a verified one after
:data:`VERIFIED_AGE`: while Drive's listing may not show the file yet, the next process's
create of it names the id (answered 409: the file, read by id, is not sent again).
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
#: A verified file's record is of use while a listing may not show the file yet (Drive's
#: lag: seconds, at times minutes): a restarted mirror or training run, or a second push,
#: sent it again (attackpush26). An hour, then dropped.
VERIFIED_AGE = 3600


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

    def update(self, add: Mapping[str, tuple[str, str]], drop: Iterable[str],
               verified: Optional[Mapping[str, str]] = None) -> bool:
        """Record ``add`` (key -> (id, folder id)), mark ``verified`` (key -> the md5 the
        made file was verified with) and forget ``drop``, in one write (old and damaged
        records go too); whether it was written (not when the state folder cannot be: then
        a create cut now may be made twice, as before ids)."""
        gone = set(drop)
        now = time.time()

        def change(data: dict[str, Any]) -> None:
            for key in [k for k, v in data.items() if k in gone or not _fresh(v, now)]:
                del data[key]
            for key, (file_id, folder_id) in add.items():
                data[key] = {"id": file_id, "folder": folder_id, "t": now}
            for key, md5 in (verified or {}).items():
                if key in data and key not in gone:
                    data[key] = dict(data[key], md5=md5, t=now)
        return self._file.update_or_warn(change, "a create cut now may be made twice")


def _fresh(record: Any, now: float) -> bool:
    """Whether ``record`` is one (an id, a folder, a time, an md5 once verified) and younger
    than MAX_AGE (VERIFIED_AGE once verified)."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str) \
            or not isinstance(record.get("folder"), str):
        return False
    md5 = record.get("md5")
    if md5 is not None and not isinstance(md5, str):
        return False
    t = record.get("t")
    age = MAX_AGE if md5 is None else VERIFIED_AGE
    # Dated after now: written before this machine's clock stepped back (NTP setting a VM
    # that booted ahead), kept as long either way. Taken for no record, a lost create was
    # made a second time (attack48).
    return isinstance(t, (int, float)) and not isinstance(t, bool) and abs(now - t) <= age
