"""What a push watches while it uploads (:mod:`drivestage.upload_tree`): when to start no
more uploads (:class:`Halt`), and whether the folders it wrote into are still live
(:func:`check_folders`), asked before anything that trusts those uploads: a sidecar sent,
an old copy deleted."""
from __future__ import annotations

import threading
from typing import Iterable, Mapping, Optional

from drivestage.errors import AuthError, DailyLimitError, DailyUploadCapError, \
    FolderGoneError, NotFoundError, QuotaExceededError, RetriesExhaustedError, \
    TrashedError
from drivestage.store import RemoteEntry, RemoteStore

#: Failures of the account, not of a file: the first one stops the push's uploads.
ACCOUNT_WIDE = (QuotaExceededError, DailyUploadCapError, DailyLimitError, AuthError)
#: Uploads in a row, none verified between them, that ran out of retries before a push
#: starts no other (:class:`Halt`).
GIVEN_UP_IN_A_ROW = 2


class Halt:
    """Whether a push still starts uploads. Once Drive failed uploads through every retry,
    each other upload would wait through its own retries in vain (hours, for a log folder);
    but one file's own failure (Drive answering 500 to every update of one file, a session
    it broke) must not stop the rest, every push, at the same file. So an upload given up
    halts only when the one before it was given up too, none verified between them (a
    Drive down costs two files' retries); a quota, daily-limit or auth error at once."""

    def __init__(self) -> None:
        self.cause: Optional[BaseException] = None   # the failure that halted the push
        self._in_a_row = 0
        self._lock = threading.Lock()

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if isinstance(exc, RetriesExhaustedError):
                self._in_a_row += 1
            if self.cause is None and (isinstance(exc, ACCOUNT_WIDE) or (
                    isinstance(exc, RetriesExhaustedError)
                    and self._in_a_row >= GIVEN_UP_IN_A_ROW)):
                self.cause = exc

    def verified(self) -> None:
        with self._lock:
            self._in_a_row = 0


def check_folders(store: RemoteStore, folders: Mapping[str, RemoteEntry],
                  written: Iterable[str]) -> None:
    """Each folder of ``written`` (relative to DEST; ``folders`` maps them to entries) is
    still live (one files.get each). Drive takes uploads into a trashed folder without a
    word, so one trashed while the push ran (dedupe emptying a duplicate, the user cleaning
    up) held files the push called verified, in the trash: FolderGoneError (saying whether
    it is in the trash or deleted for good)."""
    for rel in sorted(set(written)):
        folder = folders[rel]
        try:
            store.stat(folder)
        except TrashedError as exc:
            raise FolderGoneError(
                f"{store.describe(folder)} went to the trash while this push wrote "
                "into it (a dedupe, or a clean-up on Drive)") from exc
        except NotFoundError as exc:
            # A 404, not the trash: what was sent there is not in the trash either, and a
            # user told so would look there for it in vain.
            raise FolderGoneError(
                f"{store.describe(folder)} was deleted for good while this push wrote into "
                "it (or is no longer shared with you)", stop="what deletes it") from exc
