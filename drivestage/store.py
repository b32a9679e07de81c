"""The remote store interface: what push, pull, prune and the hooks need.

Google Drive (:mod:`drivestage.drive`) is one implementation; a plain local
directory (:mod:`drivestage.localdir`, e.g. a Colab Drive mount or a NAS) is
another. Entries are plain frozen dataclasses (:mod:`drivestage.store_entries`); everything
else is derived.
"""
from __future__ import annotations

import abc
import os
import time
from typing import Callable, Collection, Iterable, Iterator, Literal, Mapping, Optional, \
    Protocol, Sequence, Union

from drivestage import pool
from drivestage.errors import DanglingShortcutError, DriveStageError, KeptMovedError, \
    LeftAloneError, NotFoundError, PermissionDeniedError, QuotaExceededError, RemoteError, UsageError
from drivestage.paths import StorePath
from drivestage.sizes import format_size
# (re-exported: every caller names them as the store's)
from drivestage.store_entries import Mark as Mark, Quota as Quota, RemoteEntry as RemoteEntry, \
    TakenOut as TakenOut

#: Progress callbacks receive the number of bytes just moved.
ProgressFn = Callable[[int], None]


class RemoteStore(abc.ABC):
    """A place files are mirrored to and staged from: the boundary between the generic layers
    (stage, download, push, prune, hooks) and a backend (Google Drive, a directory).

    Every capability a caller uses is a method here. Optional ones have a default built on
    the required ones (as fsspec's ``AbstractFileSystem`` does), which a backend overrides to
    go faster: :meth:`fetch_range` over :meth:`read_range`, :meth:`set_retries` (a backend
    without retries ignores it)."""

    #: What a message says of a file of the store that changed while it was read (a
    #: directory store's file is in a folder, not on Drive).
    changed_while_read = "changed on Drive while downloading"
    #: What a message says of a file whose bytes did not match its checksum twice: what they
    #: did not match, and why that may be.
    mismatch = ("the downloaded bytes do not match Drive",
                "The file may be changing on Drive, or something between here and Drive alters "
                "data.")

    def trash_place(self) -> str:
        """Where an item deleted to the trash goes, as a message says it."""
        return "the Drive trash"

    def in_trash(self, path: StorePath) -> Optional[str]:
        """Where ``path``, which a resolve found leading nowhere, meets an item in the trash
        (its path, for a message); None where none does or the store has no trash."""
        return None

    @abc.abstractmethod
    def describe(self, entry: RemoteEntry) -> str:
        """A human-readable location for messages (``drive:a/b/c.zip``)."""

    @abc.abstractmethod
    def resolve(self, path: Union[str, StorePath]) -> RemoteEntry:
        """Find the entry at ``path`` (parsed, or text: store-relative, ``/``-separated, or
        ``id:...``). Raises NotFoundError, or DuplicateNameError naming the colliding ids."""

    def known_folder(self, path: StorePath) -> Optional[str]:
        """The id of the folder at ``path`` as this store last found or made it (no request;
        None: none kept): a push made it anew where its folder went (a lease asks)."""
        return None

    def public_properties(self, entry: RemoteEntry) -> dict[str, str]:
        """``entry``'s PUBLIC custom properties, read now (a lease's claim on a full Drive:
        :mod:`drivestage.run_claims`); none where the store keeps none (the default)."""
        return {}

    @abc.abstractmethod
    def stat(self, entry: RemoteEntry) -> RemoteEntry:
        """Fresh metadata for ``entry`` (one API call)."""

    def access_hint(self, entry: RemoteEntry) -> Optional[str]:
        """What a later run needs besides the id to :meth:`stat` ``entry`` (Drive: the
        resource keys of a link-shared item); None when nothing (the default)."""
        return None

    def use_access_hint(self, entry_id: str, hint: str) -> None:
        """Learn an :meth:`access_hint` saved by an earlier run (the default: nothing)."""

    @abc.abstractmethod
    def list(self, folder: RemoteEntry) -> list[RemoteEntry]:
        """Children of ``folder`` (one listing, all pages), trashed items excluded."""

    def listed_at(self, path: StorePath, folder_id: str, parent_id: str
                  ) -> Optional[RemoteEntry]:
        """The folder ``folder_id`` (a folder pull's record of an earlier run: plain, no
        link), if ``path``'s last name still names it, and only it, in ``parent_id``, found
        with its listing in one request (the next :meth:`list` returns it). None when not
        (moved, renamed, trashed, gone, a same-named item beside it), or where the store cannot
        tell in one request (the default): the caller resolves ``path``."""
        return None

    @abc.abstractmethod
    def make_folders(self, path: Union[str, StorePath], *, mark: bool = False) -> RemoteEntry:
        """``mkdir -p`` for ``path``; returns the deepest folder. ``mark``: made by this, the
        deepest folder is a marked run folder (:attr:`RemoteEntry.run_mark`) where the store
        keeps marks."""

    def mark_run_folder(self, folder: RemoteEntry, mark: bool = True) -> bool:
        """Mark ``folder`` as a run folder on the store (``mark`` False: clear the mark);
        whether the store keeps marks (the default: it keeps none, and does nothing)."""
        return False

    def run_marked(self, folder: RemoteEntry) -> bool:
        """Whether ``folder`` carries the run-folder mark, asked of the store (a listing may
        not show it; a deletion rests on the answer); the default: what the entry says."""
        return folder.run_mark

    def forget_unmarked(self) -> None:
        """Drop the "no mark" answers :meth:`run_marked` keeps (a push asks them again): a
        mirror's store lives for days; a folder asked once, unmarked then, stayed plain to
        every later period though a run marked it since (attacksync34). Nothing, where none."""

    def first_seen(self, entry: RemoteEntry, now: float, write: bool = True) -> Optional[Mark]:
        """When retention first saw ``entry`` as one it may retire, by the mark the store
        keeps on the file (:mod:`drivestage.first_seen`): where it has none of its own (or
        one that is no time before ``now``), one made ``now`` is written (``write`` False:
        taken, not written). None where no mark can be kept: the file is kept. The default:
        a store that keeps no marks (a directory, where nothing is retired by age)."""
        return None

    def clock(self) -> tuple[float, float]:
        """The earlier and the later of this machine's clock and the store's (the default:
        this machine's, twice): retention measures ages by the earlier and writes first-seen
        marks with the later (:mod:`drivestage.drive.server_clock`)."""
        now = time.time()
        return now, now

    def clock_shift(self) -> float:
        """The store's clock less this machine's, where the two differ past a tolerance (the
        default: 0, a store on this machine): a local file's mtime plus this is its time by
        the store's own dates, which retention compares it with (attack48)."""
        return 0.0

    def clear_seen(self, entry: RemoteEntry, came: Optional[float] = None) -> bool:
        """Remove ``entry``'s first-seen mark (:func:`drivestage.first_seen.clear`), or, given
        ``came``, write it over with one that says only when its bytes came
        (:func:`drivestage.first_seen.whole`): whether done. The default: none kept."""
        return False

    def forget_folders(self, walk: bool = False) -> None:
        """Drop the path -> folder ids this store remembers, so the next path resolves as in
        a fresh process (a push that found its folder gone goes into the path's folder now).
        Nothing, where none is kept. ``walk``: a look at the path again (a mirror's, now and
        then), saying so when it leads to another folder now (one above DEST renamed)."""

    @abc.abstractmethod
    def read_range(self, entry: RemoteEntry, start: int, end: int) -> Iterator[bytes]:
        """Stream bytes ``[start, end)`` of a file."""

    def fetch_range(self, entry: RemoteEntry, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of a file in one piece (a download's chunk)."""
        return b"".join(self.read_range(entry, start, end))

    def mismatched(self, entry: RemoteEntry) -> None:
        """The bytes read of ``entry`` did not match its checksum: read it afresh next time
        (Drive: not from the signed address it was redirected to). Nothing here."""

    def read_into(self, entry: RemoteEntry, start: int, sink: ByteSink) -> int:
        """Stream bytes from ``start`` up to ``sink.limit()`` (read again as it goes: it may
        move down while the read runs) into ``sink.write(offset, data)``, in as few requests
        as the backend can (Drive: one ranged GET, resumed with ``Range`` after a failure);
        returns where it stopped. The default reads :meth:`read_range` (a local folder's
        file) where a Ctrl-C leaves it (:func:`drivestage.pool.aside`): a read of a hung FUSE
        mount in the main thread (a zip's end, fetched first) held every Ctrl-C until the
        mount answered (streams52)."""
        return pool.aside(lambda: self._read_blocks_into(entry, start, sink), "drivestage-read")

    def _read_blocks_into(self, entry: RemoteEntry, start: int, sink: ByteSink) -> int:
        pos, end = start, sink.limit()
        for block in self.read_range(entry, start, end):
            n = min(len(block), sink.limit() - pos)
            if n > 0:
                sink.write(pos, memoryview(block)[:n])
                pos += n
            if pos >= sink.limit():
                break
        if pos < sink.limit():
            # The file ended early (it got shorter after it was listed): a caller asking for
            # the rest again would get nothing again, for good.
            raise RemoteError(f"{self.describe(entry)} ended at byte {pos} of the "
                              f"{entry.size} it had when listed: it changed while it was "
                              "read; pull again")
        return pos

    def requests_made(self) -> Optional[int]:
        """Requests sent to the backend so far (Drive charges quota units per request), or
        None for a backend that does not count them."""
        return None

    @abc.abstractmethod
    def upload(self, local_path: str, folder: RemoteEntry, name: str, *,
               replace: Optional[RemoteEntry] = None, progress: Optional[ProgressFn] = None,
               chunk_size: Optional[int] = None, md5_cache: Optional[Md5Source] = None,
               follow: bool = False, real: str = "") -> RemoteEntry:
        """Upload a local file as ``folder/name`` (in place of ``replace`` when given, keeping
        its id) and return its entry, **verified**: its md5 is the local file's, or the
        upload raised (ChecksumMismatchError, SourceChangedError, ...). ``chunk_size`` is a
        hint for backends that send in chunks; ``md5_cache`` learns the local md5. A link at
        ``local_path`` is read through only where ``follow`` (one a push's walk let through);
        else it, or a FIFO, device or folder there, is
        :class:`~drivestage.errors.BecameOtherError`. ``real``: where a push's walk found
        it (:attr:`drivestage.local_tree.LocalFile.real`): every read lands there, or
        BecameOtherError (a folder on its way swapped for a link since, pushlefts47)."""

    def reserve_creates(self, creates: Sequence[tuple[str, RemoteEntry, str]],
                        within: Iterable[RemoteEntry]) -> None:
        """Before a pass of uploads: ``creates`` (local path, folder, name) are the new files
        it will make, ``within`` its folders. A backend whose creates can be sent twice
        without making a second file (Drive: ids chosen beforehand) readies them here; by
        default there is nothing to do. Called with nothing once the pass ended, failed or
        not: what it verified is recorded so (a next process's create of it, answered 409,
        never updates that file in place: push27)."""

    @abc.abstractmethod
    def delete(self, entry: RemoteEntry, *, trash: bool = False) -> None:
        """Delete permanently, or move to the trash when ``trash``."""

    def delete_many(self, entries: Sequence[RemoteEntry], *, trash: bool = False,
                    kept: Sequence[RemoteEntry] = (),
                    check: Optional[Callable[[], None]] = None,
                    removed_from: Optional[Mapping[str, Collection[str]]] = None,
                    into: Optional[dict[str, Optional[DriveStageError]]] = None
                    ) -> dict[str, Optional[DriveStageError]]:
        """:meth:`delete` of each of ``entries``: id -> None (deleted) or the error its
        deletion ended with (NotFoundError: gone already; LeftAloneError: changed since the
        listing). It stops at the first other failure; the items it did not try are not in
        the answer. A backend may send them in fewer requests (Drive: batches). ``kept``:
        what the plan keeps, read first: one gone or not as listed (:func:`kept_moved`)
        leaves every entry alone, with that error. ``check`` (a push's guard:
        :mod:`drivestage.push_fence`) is called before each request that removes: what it
        raises stops the pass there, raised; ``into``, the answer, holds what went before.
        ``removed_from``: by id, the folders besides the one it was listed in that the caller
        removes an item from too (an item with several parents, which a deletion takes from
        all): a backend that leaves an item also in another folder (Drive) lets it go where
        those are all its folders. Ignored here: a directory's item is in one folder."""
        out: dict[str, Optional[DriveStageError]] = {} if into is None else into
        for k in kept:
            try:
                now = self.stat(k)
            except NotFoundError:
                change: Optional[str] = "deleted"
            else:
                change = f"renamed {now.name!r}" if now.name != k.name else \
                    "given other content" if k.md5 and now.md5 and now.md5 != k.md5 else None
            if change is not None:
                out.update(dict.fromkeys((e.id for e in entries), kept_moved(
                    self.describe(k), change)))
                return out
        for e in entries:
            if check is not None:
                check()
            try:
                self.delete(e, trash=trash)
            except DriveStageError as exc:
                out[e.id] = exc
                if not isinstance(exc, (NotFoundError, LeftAloneError)):
                    break
            else:
                out[e.id] = None
        return out

    def take_out(self, entry: RemoteEntry, *, trash: bool = False,
                 check: Optional[Callable[[], None]] = None) -> "TakenOut":
        """Remove ``entry`` from the folder it was listed in: :meth:`delete` it (``trash``:
        to the trash), or, where the store keeps it in other folders too (Drive: a file with
        two parents, kept from before 2020), take only that folder's link away, said in one
        line: "stays" then (it stays in the others), or "placed" where it was in none of them
        any more (taken out meanwhile: Drive put it elsewhere, said); else "deleted". For
        callers whose item is not wanted in that folder and whose bytes stay there anyway (a
        replaced checkpoint's old copy, a dedupe's same-bytes copy): a link taken away is for
        good (Drive adds no second parent since 2020). ``check``: a push's guard, before each
        request that removes. The default: :meth:`delete` (a directory's item: one folder)."""
        if check is not None:
            check()
        self.delete(entry, trash=trash)
        return "deleted"

    def move(self, entry: RemoteEntry, source: RemoteEntry, target: RemoteEntry) -> None:
        """Move ``entry`` out of the folder ``source`` into the folder ``target``, keeping
        what it is (Drive: its id, bytes and sharing). Only a backend whose folders can hold
        two items of one name needs it (``drivestage dedupe``); the default refuses."""
        raise UsageError(f"{self.describe(entry)}: this store cannot move items")

    @abc.abstractmethod
    def quota(self, into: Optional[RemoteEntry] = None) -> Quota:
        """Storage quota of the account (or the filesystem); with ``into``, the one what is
        written into that folder counts toward (Drive: none for a shared drive's folder)."""

    def set_retries(self, attempts: Optional[int]) -> None:
        """Attempts per remote request (None: the default); ignored by stores that do not
        retry."""

    def aside(self, kept: RemoteEntry) -> Sequence[RemoteEntry]:
        """The old copies an upload of ``kept`` (a new file taking a name) kept aside, which
        the caller removes once ``kept`` and its sidecar are verified: a store that holds one
        file of a name keeps the old one so (a directory store: :mod:`drivestage.local_held`),
        as Drive keeps same-named copies. None by default."""
        return []

    def dropped(self, kept: RemoteEntry) -> Sequence[RemoteEntry]:
        """The copy an in-place update that wrote ``kept`` removed itself, under another id
        (a directory store writes at the name and removes the copy updated when that was
        listed under it from another name: :mod:`drivestage.local_held`), for what the push
        says; never to delete. None by default (on Drive an update keeps its id; a target of
        another id was gone, and sent as a new file)."""
        return []

    def check_replaceable(self, entry: RemoteEntry) -> None:
        """Raise when an upload must not take the place of ``entry`` (a Drive shortcut: its
        target is someone's file). Checked before a byte is sent."""

    def check_writable(self, path: StorePath) -> None:
        """Raise PermissionDeniedError where the backend's metadata says nothing can be
        written at ``path``: the folder there or, where none is yet (a push makes it), the
        nearest one above it (a folder shared read-only: :attr:`RemoteEntry.read_only`).
        What no push could ever get past fails too, as the push would: a file there or
        above (UsageError), a shortcut on the way whose target is gone
        (DanglingShortcutError). No write is tried; a backend that does not say lets every
        other path pass."""
        for depth in range(len(path.names), -1, -1):
            try:
                entry = self.resolve(StorePath(path.start, path.names[:depth], path.key))
            except DanglingShortcutError:
                raise  # not "not there yet": a push would fail on it every time
            except NotFoundError:
                continue
            if not entry.is_dir:
                raise UsageError(f"{self.describe(entry)} exists and is a file, not a folder")
            self._check_into(entry)
            return

    def _check_into(self, folder: RemoteEntry) -> None:
        """Raise where ``folder``'s metadata says nothing may be written into it."""
        if folder.read_only:
            raise PermissionDeniedError(folder.read_only)

    def place(self, path: StorePath) -> str:
        """A text naming the place ``path`` is in this store, the same in every process of
        this machine (push serialises pushes into one place by it)."""
        return f"{self!r}|{path}"

    def lineage(self, folder: RemoteEntry) -> Sequence[tuple[str, str]]:
        """The :meth:`place` of ``folder`` and of each folder it sits in, nearest first,
        with its description: a push into any of them writes into ``folder`` too (push
        serialises them: :func:`drivestage.locks.tree_lock`). Here ``folder`` alone."""
        return [(self.place(StorePath(folder.id, ())), self.describe(folder))]


class ByteSink(Protocol):
    """Where :meth:`RemoteStore.read_into` puts bytes (a download's stream)."""

    def limit(self) -> int:
        """Where the read stops now (another stream may take over the rest)."""
        ...

    def write(self, offset: int, data: memoryview) -> None:
        """``data`` is the file's bytes at ``offset``."""
        ...

    def whole_answer(self) -> None:
        """The answer holds the whole file from byte 0: the server ignored ``Range`` (a proxy
        that strips it). The bytes before the range are skipped; the body is read on past
        :meth:`limit` should the limit grow meanwhile."""
        ...


class Md5Source(Protocol):
    """A cache of local md5s (:class:`drivestage.state.Md5Cache`): what stores use of it."""

    def get(self, path: str, st: Optional[os.stat_result] = None) -> Optional[str]: ...

    def put(self, path: str, st: os.stat_result, md5: str, *,
            began_ns: Optional[int] = None) -> None: ...


def quota_error(needed: int, where: str, quota: Optional[Quota]) -> QuotaExceededError:
    """The error for ``needed`` bytes that do not fit into a store, with the free and trash
    bytes of ``quota`` when known, and what to do about it."""
    free = trash = None
    if quota is not None:
        free, trash = quota.free, quota.trash
    parts = [f"needed {format_size(needed)}"]
    if free is not None:
        parts.append(f"free {format_size(free)}")
    if trash is not None:
        parts.append(f"in trash {format_size(trash)}")
    if quota is not None and quota.other:
        # Why a Drive that holds little is full: the storage is shared with them.
        parts.append(f"used by Gmail and Google Photos {format_size(quota.other)}")
    hint = "Free space on Drive"
    if trash:
        hint = "Empty the Drive trash (it counts toward the quota), free space on Drive"
    head = f"Not enough Drive storage for {where or 'the upload'}: " + ", ".join(parts) \
        + f". {hint}"
    return QuotaExceededError(f"{head}, or prune with a policy (--keep-last/--max-bytes).",
                              needed=needed, free=free, trash=trash, head=head)


def kept_moved(where: str, change: str) -> KeptMovedError:
    """The error (and warning) of a pass of deletions whose plan keeps ``where``, which was
    ``change`` (``"moved to the trash"``) since the listing: Drive's listing lagged, and the
    plan, counting it among what it keeps, deleted every other checkpoint."""
    return KeptMovedError(f"{where}, which the plan keeps, was {change} since it was listed; "
                          "nothing deleted (the listing lagged behind that change: run it "
                          "again in a minute, with a plan made anew)")
