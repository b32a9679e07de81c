"""Folders :class:`drivestage.drive.store.DriveStore` makes (a mixin; split from store.py at
its line cap), and the mark a run folder carries on Drive.

**The run-folder mark.** :mod:`drivestage.run_folders` keeps its records of run folders in
this machine's state folder, which a fresh Colab VM lacks: ``mirror ./runs drive:runs
--delete`` there, with only the new run on the disk, trashed every older run folder whole.
So a run folder is also marked on Drive: two custom properties
(:data:`~drivestage.drive.resources.RUN_MARK`, Drive v2's ``properties[]``), a PRIVATE one,
which only this app (OAuth client) sees or changes, and a PUBLIC one, which every app sees:
Colab's client and a laptop's own client secrets (``drivestage auth login``) or a service
account see none of each other's PRIVATE properties, and a laptop's ``mirror --delete``
trashed the run folders Colab's runs had marked. Any editor may set or remove a PUBLIC
property: a forged mark keeps a folder that ``--delete`` would have removed (and leaves its
checkpoint-named files to that run's push), a removed one leaves the PRIVATE mark for its
own app. The properties go with the folder's ``files.insert`` where a run's push makes it
(no request more), and by a ``properties.insert`` each on a folder made before, which is
then read back (:meth:`FolderMaking.mark_run_folder`); listings and gets show them
(:attr:`~drivestage.store.RemoteEntry.run_mark`). ``drivestage runs forget`` removes both
(``properties.delete``; another app's PRIVATE one only that app can remove).

**The first-seen mark** (:mod:`drivestage.first_seen`) of a file retention waits on is a
PUBLIC property too (:meth:`FolderMaking.first_seen`; an item's custom properties are read and
written in :mod:`drivestage.drive.store_properties`, this class's mixin).
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Mapping, Optional, TypeVar

from drivestage.drive import answers, folders, mount_marks, paging, server_clock, trash_paths
from drivestage.drive.ids import Creates
from drivestage.drive.made_mark import MADE_PROPERTY
from drivestage.drive.resources import FOLDER_MIME, RUN_MARK, DriveEntry, parse_time, \
    run_marked
from drivestage.drive.store_properties import Properties
from drivestage.drive.transport import Transport
from drivestage.errors import DanglingShortcutError, DriveStageError, MalformedAnswerError, \
    NotFoundError, PermissionDeniedError, UsageError
from drivestage import first_seen
from drivestage.paths import StorePath, printable
from drivestage.store import RemoteEntry

log = logging.getLogger("drivestage.drive.store")

T = TypeVar("T")
F = TypeVar("F", bound="FolderMaking")

#: The root id of ``drive:shared-with-me/``: not a Drive id, a listing of ``sharedWithMe``.
SHARED_WITH_ME = "sharedWithMe"
#: The mark as a File resource's ``properties``: this app's own, and one every app sees.
MARK_PROPERTIES = [{"key": RUN_MARK, "value": "1", "visibility": visibility}
                   for visibility in ("PRIVATE", "PUBLIC")]


class FolderMaking(Properties):
    """Making folders and marking run folders; the store supplies what it names and knows."""

    transport: Transport
    creates: Creates
    drive: Any                                  # PyDrive2's GoogleDrive (the store's)
    label: str
    _folder_ids: dict[tuple[str, ...], str]
    _parent_ids: dict[tuple[str, ...], str]
    _held: dict[str, Any]                       # folder id -> its last listing (the store's)
    _names: dict[str, str]
    #: folder id -> the paths its last listing lost (:meth:`_note_gone`)
    _gone_below: dict[str, set[str]]

    def _list_params(self) -> dict[str, Any]:  # the store's
        raise NotImplementedError
    _marks_asked: dict[str, bool]
    _seen: dict[str, Optional[first_seen.Mark]]

    def describe(self, entry: RemoteEntry) -> str:  # the store's
        raise NotImplementedError

    def apart(self: F) -> F:
        """This store's Drive, account and connections, with caches of its own: another
        thread's lookups (a mirror's claim: :mod:`drivestage.mirror_claim`) that change
        nothing this store knows (``resolve`` learns folder ids, a listing notes what went)."""
        me: Any = self   # (a DriveStore: FolderMaking is its mixin)
        made: F = type(self)(me.transport, me.drive, api_root=me.api_root,  # type: ignore[call-arg]
                             root_id=me.root_id, drive_id=me.drive_id, label=me.label,
                             root_read_only=me.root_read_only)
        return made

    def call(self, what: str, fn: Callable[[], T]) -> T:  # the store's
        raise NotImplementedError

    def _get(self, file_id: str, where: str) -> dict[str, Any]:  # the store's
        raise NotImplementedError

    def _children(self, parent_id: str, where: str,
                  name: Optional[str] = None) -> list[dict[str, Any]]:  # the store's
        raise NotImplementedError

    def _entry(self, res: Mapping[str, Any], where: str, *,
               ancestors: tuple[str, ...] = ()) -> DriveEntry:  # the store's
        raise NotImplementedError

    def delete(self, entry: RemoteEntry, *, trash: bool = False) -> None:  # the store's
        raise NotImplementedError

    def twins(self, folder: RemoteEntry) -> list[RemoteEntry]:
        """The folders named as ``folder`` in its parent, not in the trash, itself among them
        (one ``files.list``; none where it has no parent known): a walk of its path takes
        the oldest (a folder trashed and restored beside the one made meanwhile: the
        trainer's lease, :func:`trainer.lease_held.twin_held`)."""
        if not folder.parent_id:
            return []
        where = self.describe(folder)
        return [self._entry(r, where) for r in self._children(folder.parent_id, where,
                                                                name=folder.name)
                if r.get("mimeType") == FOLDER_MIME and r.get("title") == folder.name]

    def in_trash(self, path: StorePath) -> Optional[str]:
        """For a path from the top that led nowhere (its resolve just failed, so the folders
        it found on the way are known): the path of its step in Drive's trash on the way to
        it (:func:`drivestage.drive.trash_paths.trashed_step`); else None (and for a path by
        id: its resolve reads the id and names the trash itself). Asked only for a pull that
        failed."""
        names = path.names
        if path.start is not None or not names:
            return None

        def named(parent: str, name: str, trashed_only: bool) -> list[dict[str, Any]]:
            escaped = name.replace("\\", "\\\\").replace("'", "\\'")
            q = f"'{parent}' in parents and title='{escaped}'"
            params = dict(self._list_params(), q=q + (" and trashed=true" if trashed_only else ""))
            # Every page: ``=`` ignores case, and a folder holding more than a page of
            # items so named (a checkpoint's old copies) had it past the first (fidelity41).
            found = paging.all_pages(self.call, self.drive.ListFile(params), "the trash")
            return [it for it in found if isinstance(it, Mapping) and it.get("title") == name]

        try:
            steps = trash_paths.trashed_step(names, self._folder_ids, named)
        except DriveStageError:
            return None   # (a hint only: the pull's own error stands)
        if steps is None:
            return None
        shown = "/".join(printable(n) for n in names[:steps])
        return f"drive:{shown}" if self.label == "drive:" else \
            f"{self.label.rstrip('/')}/{shown}"

    def mark_run_folder(self, folder: RemoteEntry, mark: bool = True) -> bool:
        """Mark ``folder`` (a run folder made before marks were) on Drive, by one
        ``properties.insert`` each of its PUBLIC and then its PRIVATE property; or, with
        ``mark`` False, remove the mark (``properties.delete`` of both: one already gone is
        fine). A folder reached through a shortcut: its target."""
        where = self.describe(folder)
        if mark:
            # properties.insert adds or updates one property and leaves the others: whether a
            # files.patch with a properties array merges or replaces it, the v2 reference
            # does not say, and replacing would wipe other tools' properties (fidelity32).
            service = self.transport.service

            def insert(prop: dict[str, str]) -> Any:
                return self.call(f"mark {where} as a run folder", lambda: service.properties()
                                 .insert(fileId=folder.id, body=prop)
                                 .execute(http=self.transport.http()))
            # The PUBLIC one first: half a mark (an outage between the two) must be one every
            # client sees. The PRIVATE one alone showed this app a mark, and another OAuth
            # client's --delete none: it trashed the run (attackds32).
            meant = "PUBLIC"
            try:
                insert(MARK_PROPERTIES[1])
            except DriveStageError as exc:
                # A folder at Drive's limit of 30 PUBLIC properties (other tools'): this
                # app's own PRIVATE mark only; other clients know it by their records.
                failure = answers.failure_of(exc)
                if failure is None or failure.reason != "propertyCountLimitExceeded":
                    raise
                insert(MARK_PROPERTIES[0])
                meant = "PRIVATE"
                log.warning("marked %s as a run folder for this OAuth client only: it holds "
                            "as many public properties as Drive allows (%s); a machine "
                            "signed in with another client knows it by its records alone",
                            where, failure.item_message or failure.message)
            else:
                try:
                    insert(MARK_PROPERTIES[0])
                except DriveStageError as exc:
                    # Marked for every client already (and later pushes see the mark, so
                    # none sets this app's own, which only no other app could clear).
                    log.info("marked %s as a run folder by its public property only (%s)",
                             where, exc)
            self._check_marked(folder, where, meant)
            return True

        def unmark(visibility: str) -> None:
            try:
                self.transport.service.properties().delete(
                    fileId=folder.id, propertyKey=RUN_MARK, visibility=visibility
                ).execute(http=self.transport.http())
            except Exception as exc:
                failure = answers.failure_of(exc)
                if failure is None or failure.status != 404:  # 404: no mark (any more)
                    raise
        for visibility in ("PRIVATE", "PUBLIC"):
            self.call(f"clear the run-folder mark of {where}", functools.partial(unmark, visibility))
        # A mount's mark (a file: mount_marks) too, to the trash: left, the folder stayed a
        # run folder to every --delete after "its mark on Drive cleared" (attackpull35).
        for res in mount_marks.files(self._children, folder, where):
            self.delete(self._entry(res, f"{where}/.drivestage/run-folder"), trash=True)
        self._marks_asked.pop(folder.id, None)
        return True

    def _check_marked(self, folder: RemoteEntry, where: str, visibility: str) -> None:
        """The folder read back after its mark's inserts: it must show the mark of
        ``visibility`` (the PUBLIC one: what another OAuth client's ``--delete`` sees). A
        server or proxy that answered 200 and kept nothing left the run unmarked without a
        word, and a fresh VM's ``mirror --delete`` trashed it (attacksync33). One request,
        once per folder marked."""
        res = self.call(f"read the properties of {where}", lambda: (
            self.transport.files().get(fileId=folder.id, supportsAllDrives=True,
                                       fields="properties(key,visibility)")
            .execute(http=self.transport.http())))
        props = res.get("properties") if isinstance(res, dict) else None
        kept = isinstance(props, list) and any(
            isinstance(p, Mapping) and p.get("key") == RUN_MARK
            and p.get("visibility") == visibility for p in props)
        self._marks_asked[folder.id] = run_marked(res if isinstance(res, dict) else {})
        if not kept:
            raise MalformedAnswerError(
                f"Drive answered the {visibility} mark's properties.insert on {where}, but the "
                "folder read back shows no such mark: check --api-root / DRIVESTAGE_API_ROOT "
                "and any proxy or cache between you and Drive")

    def run_marked(self, folder: RemoteEntry) -> bool:
        """Whether ``folder`` carries the mark, by one ``files.get`` of its properties alone
        where the listing showed none (once per folder and store). Drive v2's ``files.list``
        leaves some fields out of its items unless ``fields`` names them (``permissions``;
        whether ``properties`` too is not documented): a ``--delete`` that removes a folder
        rests on the folder's own answer, never on a listing's silence. A folder a run
        marked through a Drive mount (a file ``.drivestage/run-folder`` in it, no property:
        :mod:`drivestage.drive.mount_marks`) is marked too: one listing more."""
        if folder.run_mark:
            return True
        known = self._marks_asked
        if folder.id not in known:
            try:
                res = self.call(f"read the properties of {self.describe(folder)}", lambda: (
                    self.transport.files().get(fileId=folder.id, supportsAllDrives=True,
                                               fields="properties(key,visibility)")
                    .execute(http=self.transport.http())))
            except NotFoundError:   # gone since the listing: no run folder left to keep
                res = None
            known[folder.id] = res is not None and (
                run_marked(res if isinstance(res, dict) else {})
                or mount_marks.marked(self._children, folder, self.describe(folder)))
        return bool(known[folder.id])

    def forget_unmarked(self) -> None:
        """:meth:`drivestage.store.RemoteStore.forget_unmarked`: a mark once seen is kept
        (the safe way: it keeps), an answer of none is this push's alone."""
        self._marks_asked = {k: v for k, v in self._marks_asked.items() if v}

    def _check_into(self, folder: RemoteEntry) -> None:
        # "Shared with me" itself too (drive:shared-with-me/<a folder not there>): a push
        # would make the folder there, which Drive refuses, at every push of a mirror or run.
        self._writable(folder, self.describe(folder))

    def _writable(self, folder: RemoteEntry, where: str) -> None:
        if folder.id == SHARED_WITH_ME:
            raise UsageError(f"{where}: nothing can be created directly in Shared with me; "
                             "push into a folder someone shared with you as editor "
                             "(drive:shared-with-me/<folder>/...), or into My Drive")
        if folder.read_only:
            raise PermissionDeniedError(folder.read_only)

    def _learn(self, key: tuple[str, ...], entry: RemoteEntry, parent_id: str) -> None:
        """Cache the folder at the path ``key``, found in ``parent_id`` (not where a
        shortcut's target lives: "", never checked)."""
        self._folder_ids[key] = entry.id
        via = isinstance(entry, DriveEntry) and entry.via_shortcut
        self._parent_ids[key] = "" if via else parent_id

    def _note_gone(self, folder_id: str, children: list[dict[str, Any]]) -> None:
        """What the last listing of ``folder_id`` showed (by path) and this one does not:
        a subfolder of a mirror's DEST trashed between its periods, made anew by the next
        one, is said as DEST itself is (:meth:`_say_gone`), where it was made anew without
        a word (leftovers40). Kept by the folder's id: the subfolders of a folder made anew
        (DEST's, said once for all) have no history, so nothing more is said of them."""
        before = self._held.get(folder_id)
        if before is None:
            return
        now = {str(res["id"]) for res in children}
        self._gone_below[folder_id] = {self._names[i] for i in before
                                       if i not in now and i in self._names}

    def _say_gone(self, where: str) -> None:
        """:func:`folders.say_gone`, once: the record of it as gone from its parent's
        listing (:meth:`_note_gone`) goes with it (the path is made anew just after)."""
        for gone in self._gone_below.values():
            gone.discard(where)
        folders.say_gone(where)

    def _ensure_folder(self, parent: RemoteEntry, name: str, parent_where: str,
                       where: str, meant: Optional[str] = None, *,
                       mark: bool = False) -> RemoteEntry:
        """The folder ``name`` in ``parent``, made when missing (``mark``: made a marked run
        folder). ``meant``: the path below a ``drive:MyDrive`` being made, named in a
        warning."""
        warned: list[bool] = []

        def create() -> dict[str, Any]:
            self._writable(parent, where)
            if not warned:
                warned.append(True)
                if meant is not None:
                    folders.warn_mount_name(where, name, meant)
                folders.warn_typed_name(where, name)
            marks = [*(MARK_PROPERTIES if mark else ()), MADE_PROPERTY]   # (made_mark)
            made = self.creates.make_folder(self.transport, self._get, parent.id, name, where,
                                            properties=marks)
            log.info("created folder %s", where)
            # (sent with no date: its createdDate is Drive's clock, not a client's: clock51)
            server_clock.wrote(parse_time(made.get("createdDate")))
            if where in self._gone_below.get(parent.id, ()):   # (listed there before)
                self._say_gone(where)
            return made

        def children() -> list[dict[str, Any]]:
            # A folder made here a moment ago counts even while Drive's listing (eventually
            # consistent) does not show it: a push right after would make a second one.
            return self._children(parent.id, parent_where, name) or \
                folders.made_here(self._get, parent.id, name, where)

        res = folders.ensure(children, create,
                             lambda made: self.delete(self._entry(made, where)), where,
                             self.transport.retrying(f"create folder {where}"))
        entry = self._entry(res, where)
        if entry.unreadable:
            raise DanglingShortcutError(entry.unreadable)
        if not entry.is_dir:
            raise UsageError(f"{where} exists and is a file, not a folder; a folder is needed "
                             "there: push into another folder, or move that file away on Drive")
        return entry
