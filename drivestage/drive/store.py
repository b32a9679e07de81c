"""Google Drive as a :class:`~drivestage.store.RemoteStore`.

:func:`drivestage.drive.places.connect` builds PyDrive2's ``GoogleAuth``/``GoogleDrive`` and
the googleapiclient service without touching the network (the Drive v2 discovery document ships with
googleapiclient), for Google or for any endpoint given by ``api_root`` /
``$DRIVESTAGE_API_ROOT`` such as ``drivestage emulator``.

PyDrive2 does metadata (listing, folders, trash/delete, about); bytes go through raw
ranged reads (:mod:`drivestage.drive.media`) and the resumable upload protocol
(:mod:`drivestage.drive.upload`). PyDrive2 never retries, so every call here runs under the
:class:`~drivestage.drive.transport.Transport`'s retry loop, and a failed answer is typed by
:func:`drivestage.drive.answers.typed_error`.

Shortcuts are followed as rclone does: a path may pass through folder shortcuts, a file
shortcut stands for its target's bytes (under the shortcut's name, verified against the
target's md5), listings show targets, a shortcut whose target is gone is an error naming it,
and a folder shortcut that leads back into a folder above it is a cycle. Resource keys (from
a sharing link, a shortcut, a listing) are remembered by the transport and sent where a
request needs them.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Mapping, Optional, TypeVar, Union

from drivestage.drive import answers, folders, ids, made_mark, marks_below, paging, provenance, \
    relist, reparent, server_clock, shortcuts
from drivestage.drive.media import MediaReader
from drivestage.drive.resources import (FOLDER_MIME, DriveEntry, check_resource,
                                        entry_from_resource, is_shortcut, is_trashed,
                                        quota_of, trashed_message)
from drivestage.drive.store_bytes import ByteReads
from drivestage.drive.store_deletes import Deletes
from drivestage.drive.store_folders import SHARED_WITH_ME, FolderMaking
from drivestage.drive.store_uploads import Uploads, joined as _join
from drivestage.drive.transport import Transport
from drivestage.errors import (DanglingShortcutError, DriveStageError, DuplicateNameError,
                               MalformedAnswerError, NotFoundError, RemoteError, ShortcutCycleError,
                               TrashedError, UsageError, WrongItemError)
from drivestage.paths import DrivePath, StorePath, printable
from drivestage.shell_words import exclude_pattern
from drivestage.store import Mark, Quota, RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

T = TypeVar("T")


def _escape(name: str) -> str:
    """A name inside a ``q`` string literal."""
    return name.replace("\\", "\\\\").replace("'", "\\'")


class DriveStore(ByteReads, Deletes, FolderMaking, Uploads, RemoteStore):
    """Google Drive (My Drive, one shared drive, or "Shared with me") behind the
    :class:`RemoteStore` protocol.

    Store paths are ``a/b/c`` from the store's root or ``id:<ID>[:<KEY>][/a/b]``. Folder ids
    found while resolving are cached for the life of the store (one run).
    """

    def __init__(self, transport: Transport, drive: Any, *, api_root: Optional[str] = None,
                 root_id: str = "root", drive_id: Optional[str] = None,
                 label: str = "drive:", root_read_only: Optional[str] = None):
        self.transport = transport
        self.drive = drive            # PyDrive2's GoogleDrive: metadata calls
        self.api_root = api_root
        self.root_id = root_id
        self.drive_id = drive_id      # set for a shared drive
        self.label = label            # "drive:", "drive:shared/<name>/", "drive:shared-with-me/"
        #: Why nothing can be written at the root (a shared drive this account reads only).
        self.root_read_only = root_read_only
        self._reader = MediaReader(transport)
        self._folder_ids: dict[tuple[str, ...], str] = {(): root_id}
        #: The folder each cached plain folder was found in (not one reached by a shortcut).
        self._parent_ids: dict[tuple[str, ...], str] = {}
        self._walked: dict[tuple[str, ...], str] = {}  # what paths led to before a walk
        self._names: dict[str, str] = {root_id: label}
        #: file shortcut id -> target id (where its bytes are read), for entries rebuilt by
        #: callers from an id alone.
        self._targets: dict[str, str] = {}
        self._elsewhere: set[str] = set()  # folders outside this shared drive (via shortcuts)
        self._listed_in: dict[str, str] = {}  # item id -> the folder it was listed in, last
        #: folder id -> what its last listing showed (the check before its removal: lag36).
        self._held: dict[str, dict[str, marks_below.Stamp]] = {}
        self._gone_below: dict[str, set[str]] = {}   # (store_folders._note_gone)
        self._above: dict[str, Optional[str]] = {}  # folder id -> its parent (lineage)
        self._marks_asked: dict[str, bool] = {}  # folder id -> its mark, read of it alone
        self._item_drives: dict[str, str] = {}  # item id -> its shared drive, as last read
        self._seen: dict[str, Optional[Mark]] = {}  # file id and md5 -> its first-seen mark
        self._prelisted: dict[str, list[dict[str, Any]]] = {}  # folder id -> listed_at's
        self.creates = ids.Creates(transport, api_root)  # the ids new files are made with
        self._init_deletes()

    def __repr__(self) -> str:
        return f"<DriveStore {self.label} at {self.api_root or 'googleapis.com'}>"

    def place(self, path: StorePath) -> str:
        """By id, one place from every root (a shared drive, Shared with me): one lock."""
        return f"drive at {self.api_root or ''}|{path}" if path.start else super().place(path)

    def lineage(self, folder: RemoteEntry) -> list[tuple[str, str]]:
        """By the folders' ids as Drive has them (once per store: see :func:`folders.moved`)."""
        self._above, parent = folders.moved(self._above, folder)
        ids = folders.lineage(self._get, folder.id, self._above, parent) or [folder.id]
        names = dict(self._names, **{self._above.get("root") or "": "drive:"})
        return [(self.place(StorePath(i, ())), self.describe(folder) if at == 0 else
                 names.get(i) or f"drive:id:{i}") for at, i in enumerate(ids)]

    @property
    def service(self) -> Any:
        """The googleapiclient Drive v2 service."""
        return self.transport.service

    def set_retries(self, attempts: Optional[int]) -> None:
        """Attempts per Drive request (None: ``$DRIVESTAGE_RETRY_ATTEMPTS`` or 8)."""
        self.transport.attempts = attempts

    def _list_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"maxResults": 1000, "supportsAllDrives": True,
                                  "includeItemsFromAllDrives": True}
        if self.drive_id:
            params.update(corpora="drive", driveId=self.drive_id)
        return params

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """A metadata call under the retry loop; an answer PyDrive2 cannot read (not JSON, a
        field of the wrong type) is one line naming it, not a traceback."""
        what += " (the top of My Drive)" if what.endswith(" drive:") else ""  # not "drive::"
        try:
            return self.transport.call(what, fn)
        except DriveStageError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise MalformedAnswerError(
                f"{what}: the server's answer is not what Drive sends ({type(exc).__name__}: "
                f"{str(exc)[:120]}); is --api-root / DRIVESTAGE_API_ROOT a Drive API?") from exc

    # ----------------------------------------------------------------- entries

    @staticmethod
    def _key(entry: RemoteEntry) -> str:
        """What names an entry: a folder reached through a shortcut by the shortcut."""
        if isinstance(entry, DriveEntry) and entry.shortcut_id:
            return entry.shortcut_id
        return entry.id

    def describe(self, entry: RemoteEntry) -> str:
        """``drive:a/b/c.zip`` when we know the path, else ``drive:id:<ID>``."""
        return self._names.get(self._key(entry)) or f"drive:id:{self._key(entry)}"

    def _remember(self, entry: RemoteEntry, where: str) -> RemoteEntry:
        self._names[self._key(entry)] = where
        return entry

    def _entry(self, res: Mapping[str, Any], where: str, *,
               ancestors: tuple[str, ...] = ()) -> DriveEntry:
        """``res`` as an entry, a shortcut followed to its target (see the module doc)."""
        entry = entry_from_resource(res, where)
        # Drive's clock was at least its creation stamp; not the modified date, which is
        # a client's word (rclone and Drive for desktop send a file's mtime): attack50. The
        # creation stamp is Drive's for sure on what this app made (made_mark: clockmark51).
        server_clock.stamped(entry.created, made=made_mark.carries(res))
        if is_shortcut(res):
            entry = shortcuts.follow(res, entry, where, self._get,
                                     self.transport.resource_keys)
            if entry.target_id and not entry.unreadable:
                self._targets[entry.id] = entry.target_id
        entry = dataclasses.replace(entry, ancestors=ancestors)
        if self.drive_id and entry.is_dir and entry.drive_id != self.drive_id:
            self._elsewhere.add(entry.id)
        self._remember(entry, where)
        return entry

    # ----------------------------------------------------------------- metadata

    def _get(self, file_id: str, where: str) -> dict[str, Any]:
        f = self.drive.CreateFile({"id": file_id})
        self.call(f"stat {where}", f.FetchMetadata)
        return self._got(dict(f), file_id, where)

    def _got(self, raw: Mapping[str, Any], file_id: str, where: str) -> dict[str, Any]:
        """files.get's answer ``raw`` for ``file_id`` (alone or in a batch), checked."""
        res = dict(check_resource(raw, where))
        provenance.check_got(res, file_id, where)  # never act on another item's answer
        if isinstance(res.get("driveId"), str):   # (a deletion's words: Deletes._drive_of)
            self._item_drives[file_id] = res["driveId"]
        key = res.get("resourceKey")
        self.transport.resource_keys.learn(res["id"], key if isinstance(key, str) else None)
        return res

    def access_hint(self, entry: RemoteEntry) -> Optional[str]:
        """The resource keys a later run's request for ``entry`` by id needs."""
        return self.transport.resource_keys.chain(self._key(entry))

    def use_access_hint(self, entry_id: str, hint: str) -> None:
        self.transport.resource_keys.restore(entry_id, hint)

    def stat(self, entry: RemoteEntry) -> RemoteEntry:
        """Fresh metadata for ``entry`` (one files.get; a shortcut's target costs one more)."""
        where = self.describe(entry)
        res = self._get(self._key(entry), where)
        if is_trashed(res):
            raise TrashedError(trashed_message(where, res))
        found = self._entry(res, where)
        if found.unreadable:
            raise DanglingShortcutError(found.unreadable)
        return found

    def _children(self, parent_id: str, where: str, name: Optional[str] = None, *,
                  checking: bool = False) -> list[dict[str, Any]]:
        """``parent_id``'s children, trashed ones left out (``name``: of that exact name;
        ``checking``: with the fields the check before a removal reads, properties included:
        :data:`drivestage.drive.marks_below.FIELDS`)."""
        if name is None and not checking and parent_id in self._prelisted:
            return self._prelisted.pop(parent_id)   # (listed with it: listed_at, once)
        if parent_id == SHARED_WITH_ME:
            q = "sharedWithMe = true and trashed=false"
        else:
            q = f"'{parent_id}' in parents and trashed=false"
        if name is not None:
            q += f" and title='{_escape(name)}'"
        params = {k: v for k, v in self._list_params().items()  # corpora=drive finds nothing
                  if parent_id not in self._elsewhere or k not in ("corpora", "driveId")}
        if checking:
            params["fields"] = marks_below.FIELDS
        params["q"] = q

        keys = self.transport.resource_keys
        via = None if parent_id == SHARED_WITH_ME else parent_id
        for again in (False, True):
            items = paging.all_pages(self.call, self.drive.ListFile(params), where)
            for it in items:
                check_resource(it, where)
                key = it.get("resourceKey")
                keys.learn(it["id"], key if isinstance(key, str) else None, via=via)
            try:
                provenance.check_listed(items, via, where)  # a prune deletes on this listing
                break
            except WrongItemError:
                # Listed once more before it is refused: an item renamed between two pages
                # of a long listing shows on both, under two names (Drive pages a folder as
                # it changes), which stopped a push or prune as "Drive never does that".
                if again:
                    raise
        if name is not None:  # Drive's title match ignores case: keep exact names only
            items = [it for it in items if it.get("title") == name]
        # One item listed twice (a page served again) is one item, not a duplicate name.
        unique = {it.get("id"): it for it in items}
        return [it for it in unique.values() if not is_trashed(it)]

    def _child(self, parent_id: str, name: str, parent_where: str,
               where: str) -> Optional[dict[str, Any]]:
        # Not listed yet (Drive's listing lags): a folder this machine made a moment ago.
        found = self._children(parent_id, parent_where, name) or \
            folders.made_here(self._get, parent_id, name, where)
        if len(found) > 1:
            ids = [it["id"] for it in found]
            merge = f" or merge them: drivestage dedupe {where}" if len(folders.folders(found)) \
                == len(found) else ""
            raise DuplicateNameError(
                f"{where} matches {len(ids)} items with that exact name (ids "
                f"{', '.join(ids)}); Drive allows duplicates. Address one by id, e.g. "
                f"drive:id:{ids[0]}, or rename/delete the others{merge}.", ids=ids)
        return found[0] if found else None

    def resolve(self, path: Union[str, StorePath]) -> RemoteEntry:
        """The entry at ``path`` (``a/b/c`` or ``id:<ID>[:<KEY>][/a/b]``), exact names;
        folder shortcuts on the way are followed."""
        sp = path if isinstance(path, StorePath) else StorePath.parse(path)
        start, names = sp.start, sp.names
        cur: RemoteEntry
        if start is not None:
            if sp.key:
                self.transport.resource_keys.learn(start, sp.key)
            base_where = f"drive:id:{start}"
            res = self._get(start, base_where)
            if is_trashed(res):
                raise TrashedError(trashed_message(base_where, res))
            cur = self._entry(res, base_where)
            key: Optional[tuple[str, ...]] = None
        else:
            base_where = self.label.rstrip("/") if names else self.label
            cur = self._root()
            key = ()
        where = base_where
        for i, name in enumerate(names):
            if cur.unreadable:
                raise DanglingShortcutError(cur.unreadable)
            parent_where, where = where, _join(where, name)
            if not cur.is_dir:
                raise NotFoundError(f"{where}: {self.describe(cur)} is a file, not a folder")
            cached = self._folder_ids.get(key + (name,)) if key is not None else None
            if cached is not None and i < len(names) - 1:
                cur = RemoteEntry(id=cached, name=name, is_dir=True)
                self._remember(cur, where)
            else:
                parent_id, child = cur.id, self._child(cur.id, name, parent_where, where)
                if child is None:
                    hint = folders.mount_name_hint(start is None and self.label == "drive:",
                                                   names, i) or folders.typed_name_hint(
                        name, _join(parent_where, "/".join(names[i:]).replace("\\", "/"))) \
                        or folders.unicode_name_hint(name, self.describe(cur), lambda n: bool(
                            self._children(parent_id, parent_where, n)))
                    raise NotFoundError(f"{where} not found (no item named {name!r} in "
                                        f"{self.describe(cur)}; names are case-sensitive)"
                                        + hint)
                cur = self._entry(child, where)
                if key is not None and cur.is_dir:
                    self._learn(key + (name,), cur, parent_id)
            if key is not None:
                key = key + (name,)
        if cur.unreadable:
            raise DanglingShortcutError(cur.unreadable)
        return cur

    def listed_at(self, path: StorePath, folder_id: str, parent_id: str
                  ) -> Optional[RemoteEntry]:
        """One files.list for the folder and its children (:mod:`drivestage.drive.relist`)."""
        found = relist.listed_at(self, path, folder_id, parent_id)
        if found is None:
            return None
        self._prelisted[folder_id] = found[1]
        return found[0]

    def list(self, folder: RemoteEntry) -> list[RemoteEntry]:
        """Children of ``folder`` (all pages), trashed items excluded, shortcuts followed
        (a dangling one comes back ``unreadable``); ShortcutCycleError when ``folder`` was
        reached through a shortcut into a folder above it."""
        where = self.describe(folder)
        above: tuple[str, ...] = folder.ancestors if isinstance(folder, DriveEntry) else ()
        if folder.id in above:
            target = self._names.get(folder.id) or f"drive:id:{folder.id}"
            if not (isinstance(folder, DriveEntry) and folder.shortcut_id) and \
                    above[-1] != folder.id:
                raise ShortcutCycleError(  # a folder given a parent inside it (walk37)
                    f"{where}: the folder {printable(folder.name)!r} is inside itself here "
                    "(one of its subfolders is also its parent, which Drive refuses to make): a "
                    "walk through it would never end; "
                    f"stopped. Leave it out (pull --exclude {exclude_pattern(folder.name)}) "
                    "or move it out of its subfolder on Drive.")
            if not (isinstance(folder, DriveEntry) and folder.shortcut_id):
                raise ShortcutCycleError(  # no shortcut: the server lists it inside itself
                    f"{where} is {target}, listed inside itself (a folder among its own "
                    "subfolders): a walk through it would never end; stopped. Drive never "
                    "lists so: check --api-root / DRIVESTAGE_API_ROOT and any proxy")
            raise ShortcutCycleError(
                f"{where} is a shortcut to {target}, a folder it sits in: a walk through it "
                f"would never end. Leave it out (pull --exclude {exclude_pattern(folder.name)}) or "
                "remove the shortcut on Drive.")
        out: list[RemoteEntry] = []
        children = self._children(folder.id, where)
        if folder.id != SHARED_WITH_ME:
            self._note_gone(folder.id, children)   # (before _held, the last listing, goes)
            self._held[folder.id] = {str(res["id"]): marks_below.stamp(res) for res in children}
        for res in children:
            if folder.id != SHARED_WITH_ME:  # no folder: where items shared with you sit
                self._listed_in[str(res["id"])] = folder.id
            out.append(self._entry(res, _join(where, res.get("title") or ""),
                                   ancestors=above + (folder.id,)))
        return out

    def _root(self) -> RemoteEntry:
        """The store's root, as far as it is known without a request."""
        return RemoteEntry(id=self.root_id, name="", is_dir=True, read_only=self.root_read_only)

    def make_folders(self, path: Union[str, StorePath], *, mark: bool = False) -> RemoteEntry:
        """``mkdir -p``; a retried create first looks again, so no duplicate folders. ``mark``:
        the deepest folder, where this makes it, is made a marked run folder (no request more:
        :mod:`drivestage.drive.store_folders`)."""
        sp = path if isinstance(path, StorePath) else StorePath.parse(path)
        start, names = sp.start, sp.names
        cur = self.resolve(StorePath(start, (), sp.key)) if start else self._root()
        key: Optional[tuple[str, ...]] = () if start is None else None
        where = self.describe(cur)
        cached = None
        for at, name in enumerate(names):
            parent_where, where = where, _join(where, name)
            cached = self._folder_ids.get(key + (name,)) if key is not None else None
            if cached is not None:
                cur = RemoteEntry(id=cached, name=name, is_dir=True)
                self._remember(cur, where)
            else:
                meant = "/".join(names[1:]) if folders.mount_name_hint(
                    start is None and self.label == "drive:", names, at) else None
                parent_id = cur.id
                cur = self._ensure_folder(cur, name, parent_where, where, meant=meant,
                                          mark=mark and at == len(names) - 1)
                if key is not None:
                    self._learn(key + (name,), cur, parent_id)
            if key is not None:
                key = key + (name,)
        if key is not None and self._walked.pop(key, cur.id) != cur.id:
            self._walked = {}  # a walk found the path leads elsewhere now: said once
            self._say_gone(where)
        if cached is not None:
            res = folders.still_there(self._get, cur.id, where,
                                      self._parent_ids.get(key or ()), names[-1])
            fresh = None if res is None else entry_from_resource(res, where)
            if fresh is None:  # trashed, deleted, renamed or moved since it was learnt
                self._say_gone(where)
                self.forget_folders()
                return self.make_folders(path, mark=mark)
            # Its metadata as it is now, not an id alone: whether this account may still
            # write into it (read_only) is what a push checks before writing.
            # A folder reached through a shortcut: the target's own parent is not the
            # path's (push_watch would read it as moved); unknown, as for an id alone.
            cur = dataclasses.replace(fresh, name=cur.name, parent_id=fresh.parent_id if
                                      self._parent_ids.get(key or ()) != "" else None)
        return cur

    def known_folder(self, path: StorePath) -> Optional[str]:
        """From the ids this store keeps by path (a path from an id keeps none)."""
        return None if path.start is not None else self._folder_ids.get(tuple(path.names))

    def forget_folders(self, walk: bool = False) -> None:
        self._walked = dict(self._folder_ids) if walk else {}
        self._folder_ids = {(): self.root_id}
        self._parent_ids, self._above = {}, ({} if walk else self._above)  # (moved since?)

    def move(self, entry: RemoteEntry, source: RemoteEntry, target: RemoteEntry) -> None:
        """Move ``entry`` from the folder ``source`` into ``target`` in one request (its id,
        bytes and sharing stay; a retry: :mod:`~drivestage.drive.reparent`); a shortcut
        moves, never its target."""
        key, where, into = self._key(entry), self.describe(entry), self.describe(target)
        self._writable(target, into)
        now = reparent.update_parents(
            self.call, lambda: self._get(key, where), self.drive.CreateFile({"id": key}),
            f"move {where} into {into}", {"addParents": target.id, "removeParents": source.id},
            reparent.moved(target.id, source.id))
        provenance.check_moved(now, target.id, source.id, where)

    def quota(self, into: Optional[RemoteEntry] = None) -> Quota:
        """Used / total / trash bytes of the account (``total`` None when unlimited).

        For a shared drive nothing is asked (``total`` None): its storage is the
        organisation's, which the account's About does not describe; a retention budget
        (``--max-bytes``) bounds what a push keeps there. So for ``into``, a folder of a
        shared drive reached from My Drive (through a shortcut, by id or a link)."""
        if self.drive_id or (isinstance(into, DriveEntry) and into.drive_id):
            return Quota(total=None, used=0, trash=0)
        about = self.call("read the Drive quota", self.drive.GetAbout)
        return quota_of(about)
