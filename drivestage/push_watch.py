"""What a push watches while it uploads (:mod:`drivestage.upload_tree`): when to start no
more uploads (:class:`Halt`), and whether the folders it wrote into are still live
(:func:`check_folders`), asked before anything that trusts those uploads: a sidecar sent,
an old copy deleted."""
from __future__ import annotations

import logging
import threading
from typing import Iterable, Mapping, Optional

from drivestage.errors import ArrivedInTrashError, AuthError, BlockedByGoogleError, \
    DailyLimitError, DailyUploadCapError, DriveStageError, FolderGoneError, ItemCreationLimitError, \
    NotFoundError, QuotaExceededError, RemoteError, RetriesExhaustedError, SharingLimitError, \
    TrashedError
from drivestage.paths import StorePath
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger("drivestage.upload_tree")

#: Failures of the account, not of a file: the first one stops the push's uploads. And a
#: file that arrived in the trash: its folder is there, and DEST's too, or a folder above
#: it, most often; a subfolder alone costs the others one push more (check_folders).
ACCOUNT_WIDE = (QuotaExceededError, DailyUploadCapError, DailyLimitError, AuthError,
                ItemCreationLimitError, BlockedByGoogleError, ArrivedInTrashError,
                SharingLimitError)
#: Uploads in a row, none verified between them, that ran out of retries before a push
#: starts no other (:class:`Halt`).
GIVEN_UP_IN_A_ROW = 2
#: Folders climbed, at most, to say where a moved folder went (Drive nests at most 100).
MAX_CLIMB = 100


class Halt:
    """Whether a push still starts uploads. Once Drive failed uploads through every retry,
    each other upload would wait through its own retries in vain (hours, for a log folder);
    but one file's own failure (Drive answering 500 to every update of one file, a session
    it broke) must not stop the rest, every push, at the same file. So an upload given up
    halts only when the one before it was given up too, none verified between them (a
    Drive down costs two files' retries); a quota, daily-limit, item-creation-limit, sharing-limit
    or auth error at once."""

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


def all_live(halted: Optional[BaseException], errors: list[BaseException],
             left_out: int) -> list[BaseException]:
    """``errors`` once every folder the push wrote into was read live (:func:`check_folders`
    passed), the ``left_out`` files not sent (the push halted on ``halted``) said. An upload
    whose answer said it arrived in the trash halted the push; its folder is live now (put
    back since, or a server whose answer misreports a live file): its line said the folder
    is in the trash and that "Drive kept failing" (attackpush41), both false. Now it says
    what is known (each such upload's: several were under way at once); the push still
    fails (exit 1): the answer is not believed either way."""
    if left_out:
        log.error("%d files not sent: %s; the next push sends them", left_out,
                  "the push stopped at an upload whose answer said it arrived in the trash"
                  if isinstance(halted, ArrivedInTrashError) else "Drive kept failing")
    return [RemoteError(
        f"{e.where}: Drive's answer to its upload said it arrived in the trash, but no "
        "folder this push wrote into is there now (put back since, or a server that "
        "misreports): check it on Drive, then push again")
        if isinstance(e, ArrivedInTrashError) else e for e in errors]


def check_folders(store: RemoteStore, folders: Mapping[str, RemoteEntry],
                  written: Iterable[str], said: Optional[set[str]] = None,
                  by_path: bool = True) -> None:
    """Each folder of ``written`` (relative to DEST; ``folders`` maps them to entries) is
    still live (one files.get each). Drive takes uploads into a trashed folder without a
    word, so one trashed while the push ran (dedupe emptying a duplicate, the user cleaning
    up) held files the push called verified, in the trash: FolderGoneError (saying whether
    it is in the trash or deleted for good). One moved or renamed meanwhile is warned of
    once (``said`` holds the folders already warned of; DEST itself only when it was given
    ``by_path``: an id alone names no place to leave)."""
    for rel in sorted(set(written)):
        folder = folders[rel]
        try:
            now = store.stat(folder)
        except TrashedError as exc:
            raise FolderGoneError(
                f"{store.describe(folder)} went to the trash while this push wrote "
                "into it (a dedupe, or a clean-up on Drive)") from exc
        except NotFoundError as exc:
            if not folder.removable:
                # Someone else's folder: its owner's deletion takes only the owner's items
                # (v2 files.delete); what this push sent is this account's, put in its My
                # Drive ("placed under its owner's root"), or still there if only unshared.
                raise FolderGoneError(
                    f"{store.describe(folder)} is gone while this push wrote into it: its "
                    "owner deleted it or stopped sharing it with you. The files this push "
                    "sent there stay yours (in My Drive, if the folder was deleted)",
                    stop="what removes it") from exc
            # A 404, not the trash: what was sent there is not in the trash either, and a
            # user told so would look there for it in vain.
            raise FolderGoneError(
                f"{store.describe(folder)} was deleted for good while this push wrote into "
                "it (or is no longer shared with you)", stop="what deletes it") from exc
        if said is not None and rel not in said and _moved(folders, rel, now, by_path):
            said.add(rel)
            where = store.describe(folder)
            # Not followed: a push writes only under the path it was given, and the next
            # push, finding no folder there, makes it anew and sends everything again (a
            # second copy of every checkpoint, against the quota): the user must know now.
            log.warning("%s was moved or renamed on Drive while this push wrote into it (it "
                        "is now %s); what this push sent is there. The next push makes %s "
                        "anew and sends everything to it again: move the folder back first "
                        "to keep one copy", where, where_now(store, now), where)


def _moved(folders: Mapping[str, RemoteEntry], rel: str, now: RemoteEntry,
           by_path: bool) -> bool:
    """Whether ``now`` (the folder of ``rel`` as the store has it now) has left its place:
    another parent, or another name, than the push found it under (as the store said then:
    a folder with several parents, an old Drive's, names the first, which need not be the
    one the path goes through). Unknown parents (DEST given by id; a folder the store does
    not say the parent of) count as staying."""
    was = folders[rel]
    if not (rel or by_path) or was.parent_id is None or now.parent_id is None:
        return False
    return now.parent_id != was.parent_id or now.name != was.name


def where_now(store: RemoteStore, entry: RemoteEntry) -> str:
    """``entry``'s place as its parents say now, climbed by files.get (at most
    :data:`MAX_CLIMB`): ``drive:a/b`` when the climb reaches the store's root, else its id
    and the root it is outside of."""
    root = store.resolve(StorePath(None, ()))
    names, cur = [entry.name], entry.parent_id
    try:
        top = store.stat(root).id  # Drive's "root" is an alias: parents name its real id
        for _ in range(MAX_CLIMB):
            if cur is None or cur in (root.id, top):
                break
            up = store.stat(RemoteEntry(id=cur, name="", is_dir=True))
            names.append(up.name)
            cur = up.parent_id
    except DriveStageError:
        cur = None
    base = store.describe(root)
    if cur is None or cur not in (root.id, top):  # a shared drive, another's folder
        return f"outside {base}, id {entry.id}"
    return base + ("" if base.endswith((":", "/")) else "/") + "/".join(reversed(names))
