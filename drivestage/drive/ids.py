"""Creates Drive may be sent twice: every file and folder a push makes names an id Drive
generated for it (``files.generateIds``; the "Create files" guide), chosen before the create is
sent. Drive makes a file with that id once; a second create naming it is answered 409 and
makes nothing. So a create whose answer was lost (a timeout, a 5xx after Drive made the file,
a reset, the process killed or Ctrl-C'd while the answer was on its way) is sent again with the
same id - by the retry, or by the next push, which finds the id recorded on this machine
(:class:`~drivestage.create_ids.CreateIds` for files, :class:`~drivestage.state.MadeFolders` for
folders) - and never leaves two files of one name. A listing (Drive's lags) that does not yet
show the file the lost create made no longer decides alone.

On a 409 for our id the file is read by id: where it is the one meant (that name, in that
folder, not trashed) and holds the local md5, it counts as uploaded; where the local file
changed since, it is updated in place, unless it was verified or is a checkpoint (a sidecar
may vouch for it: the changed file is made anew beside it); where it was deleted, trashed,
moved or renamed since, the id is dropped and the file made anew with another. An id Drive
refuses (400) is dropped too. A verified file's record is kept a while (``VERIFIED_AGE``):
the next process's listing may not show the file yet, and its create of it is then answered
409, not sent again.
Where that other id is refused as well (a server handing out ids in use), the item is made
without one and the store asks for no more: at most three creates per item.

A server without generateIds (an answer 404, 400 or 501; a Drive API look-alike) is asked once
per process, then creates go without an id, as before.
"""
from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Any, Callable, Container, Iterable, Mapping, Optional, Sequence

from drivestage import sidecar, sources, special_files, temps
from drivestage.create_ids import CreateIds
from drivestage.drive import answers, provenance
from drivestage.drive.resources import FOLDER_MIME, entry_from_resource
from drivestage.drive.sessions import file_resource
from drivestage.drive.transport import Transport
from drivestage.drive.upload import upload_file
from drivestage.errors import (ChecksumMismatchError, DriveStageError, NotFoundError,
                               RemoteError, SourceChangedError)
from drivestage.interrupts import lock_wait
from drivestage.localfs import file_md5
from drivestage.store import Md5Source, ProgressFn, RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

#: The most ids one generateIds request gives (Drive's maximum).
MAX_PER_REQUEST = 1000
#: Ids asked at a time for creates one at a time (folders): a push makes a few.
FEW = 16
#: Answers that say a server has no generateIds: asked once per process.
_ABSENT = frozenset({400, 404, 501})
#: API roots ("" for Google's) whose server has no generateIds, for this process's life.
_WITHOUT: set[str] = set()

Get = Callable[[str, str], dict[str, Any]]


class IdPool:
    """Ids Drive generated, asked for as they are needed: ``take(n)`` in requests of up to
    :data:`MAX_PER_REQUEST`; none from a server that has no generateIds."""

    def __init__(self, transport: Transport, api_root: Optional[str]):
        self.transport, self.root = transport, api_root or ""
        self._ids: list[str] = []
        self._lock = threading.Lock()
        self._failed = False  # asked, and Drive kept failing: not asked again by this store
        _FORKED.add(self)

    def _forked(self) -> None:
        """In a forked child: the lock free, and none of the parent's ids. A thread of the
        parent that held the lock as the process forked (a generateIds under retries:
        minutes) is not in the child, whose first create waited for it forever; and an id
        both processes hold would be sent by both (a 409 read as its own upload)."""
        self._lock = threading.Lock()
        self._ids = []

    def _off(self) -> bool:
        return self._failed or self.root in _WITHOUT

    def take(self, n: int) -> list[str]:
        """``n`` ids (fewer, or none, when the server gives fewer or has no generateIds)."""
        lock_wait(self._lock)   # another thread's request and its retries: see take_one
        with self._lock:
            while len(self._ids) < n and not self._off():
                got = self._ask(min(MAX_PER_REQUEST, n - len(self._ids)))
                if not got:
                    break
                self._ids.extend(got)
            out, self._ids = self._ids[:n], self._ids[n:]
            return out

    def distrust(self) -> None:
        """A second id from this server was refused too (in use, or not usable): it hands out
        ids it will not take (a server that is broken, or lies). This store's creates go
        without ids from now on, as before ids, never a 409 per create of a push."""
        if not self._failed:   # (info, as for a server without generateIds: nothing lost)
            log.info("%s refused the ids it generated; files are created without ids "
                        "chosen beforehand", self.root or "Drive")
        self._failed = True

    def take_one(self) -> Optional[str]:
        """One id (asked :data:`FEW` at a time); None from a server without generateIds."""
        # (Held while another thread asks Drive, retries included: minutes. A Ctrl-C given
        # to another thread ends the main thread's wait: interrupts.SLICE.)
        lock_wait(self._lock)
        with self._lock:
            if not self._ids and not self._off():
                self._ids.extend(self._ask(FEW))
            return self._ids.pop(0) if self._ids else None

    def _ask(self, n: int) -> list[str]:
        transport = self.transport

        def ask() -> Any:
            return transport.files().generateIds(maxResults=n, space="drive", type="files") \
                .execute(http=transport.http())
        try:
            res = transport.call(f"generateIds ({n})", ask)
        except DriveStageError as exc:
            # Never a push's failure: its creates go without ids, as before ids were used.
            status = 404 if isinstance(exc, NotFoundError) else getattr(exc, "status", None)
            if status not in _ABSENT:
                log.warning("could not get ids for new files from Drive (%s); creating them "
                            "without", exc)
                self._failed = True
                return []
            log.info("%s has no files.generateIds (HTTP %s); files are created without "
                     "ids chosen beforehand", self.root or "Drive", status)
            _WITHOUT.add(self.root)
            return []
        ids = res.get("ids") if isinstance(res, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids) \
                or len(set(ids)) != len(ids):
            log.info("%s answered generateIds with no list of ids; files are created "
                     "without ids chosen beforehand", self.root or "Drive")
            _WITHOUT.add(self.root)
            return []
        if len(ids) < n:
            # Fewer than asked (Drive gives maxResults): asked again, it would be asked once
            # per file of a push (attacky25); what it gave is used, then no more are asked.
            log.info("%s gave %d ids of the %d asked; further files are created without "
                     "ids chosen beforehand", self.root or "Drive", len(ids), n)
            self._failed = True
        return list(ids[:n])


class Creates:
    """One store's ids for the new files of a push pass, and the files' fate."""

    def __init__(self, transport: Transport, api_root: Optional[str]):
        self.pool = IdPool(transport, api_root)
        self._lock = threading.Lock()
        #: (folder, name) -> (key, id, the md5 it was verified with when its record says so)
        self._pending: dict[tuple[str, str], tuple[str, str, Optional[str]]] = {}
        #: key -> the md5 its file was verified with (None: its record is no longer needed)
        self._settled: dict[str, Optional[str]] = {}
        #: (folder, name) -> the file this store made there last (see _made_before).
        self._made_here: dict[tuple[str, str], RemoteEntry] = {}
        #: (folder, name) of the creates a push pass planned from its listing (prepare).
        self._planned: set[tuple[str, str]] = set()
        _FORKED.add(self)

    def _forked(self) -> None:
        """In a forked child: the lock free (a parent's thread held it as it forked)."""
        self._lock = threading.Lock()

    def prepare(self, creates: Sequence[tuple[str, RemoteEntry, str]],
                within: Iterable[RemoteEntry], listed: Container[str] = ()) -> None:
        """Choose the id of each new file ``creates`` names (local path, folder, name): the
        one recorded for it (a create a previous push sent, whose answer it may never have
        had), else a new one; record them in one write before any is sent. Records of
        ``within`` (the pass's folders) whose local file is gone are dropped. A recorded id
        in ``listed`` (ids the store listed) names no lost create: the push knows its file,
        here the old copy of a checkpoint it replaces by a new one, which a 409 read as a lost
        create's file updated in place before the new sidecar was sent: a new id. With
        nothing (a pass's end), the files verified since are recorded so."""
        within = list(within)
        with self._lock:
            if not creates and not within and not self._settled:   # (a pass's end: nothing)
                return
        state = CreateIds()
        recorded = state.recorded()
        want = {CreateIds.key(path, folder.id, name): (folder.id, name)
                for path, folder, name in creates}
        chosen = {k: str(recorded[k]["id"]) for k in want
                  if k in recorded and recorded[k]["id"] not in listed}
        new_keys = [k for k in want if k not in chosen]
        new = dict(zip(new_keys, self.pool.take(len(new_keys)))) if new_keys else {}
        chosen.update(new)
        folders = {f.id for f in within}
        with self._lock:
            # Only a record whose local file is gone: a push with --include/--exclude
            # leaves files out of its creates while their records are still needed (a create
            # of one cut earlier, not listed yet, was made twice by the next full push:
            # attacky25). The others go once their file is a create again and verified, or
            # age out (MAX_AGE); a stale one costs a 409 and a read, never a file.
            settled, self._settled = self._settled, {}
            drop = {k for k, md5 in settled.items() if md5 is None} | {
                k for k, v in recorded.items() if k not in want and v["folder"] in folders
                and not os.path.lexists(_local_path(k))}
            verified = {k: md5 for k, md5 in settled.items() if md5 is not None}
            # This pass's folders only: a push at once through this store into another folder
            # (two Mirrors given one store) creates with the ids it chose, not without.
            self._pending = {k: v for k, v in self._pending.items() if k[0] not in folders}
            self._pending.update({want[k]: (k, i, recorded[k].get("md5") if k not in new
                                            else None) for k, i in chosen.items()})
            self._planned = {k for k in self._planned if k[0] not in folders} | set(
                want.values())
        if new or drop or verified:
            # Records whose file the store listed are of no more use: they go with a write
            # made anyway (an unchanged push writes nothing; else they age out).
            drop |= {k for k, v in recorded.items()
                     if k not in want and v["folder"] in folders and v["id"] in listed}
            state.update({k: (i, want[k][0]) for k, i in new.items()}, drop, verified)

    def id_for(self, folder_id: str, name: str) -> Optional[str]:
        """The id the new file ``name`` in ``folder_id`` is made with, if one was chosen."""
        with self._lock:
            found = self._pending.get((folder_id, name))
            return found[1] if found is not None else None

    def _verified_md5(self, folder_id: str, name: str) -> Optional[str]:
        """The md5 the file of the id chosen for ``name`` was verified with, by an earlier
        push (its record says so); None for an id whose create was never seen to end."""
        with self._lock:
            found = self._pending.get((folder_id, name))
            return found[2] if found is not None else None

    def _checkpoint(self, folder_id: str, name: str) -> bool:
        """Whether ``name`` is a checkpoint as push replaces one: a ``.pt``/``.pth``/``.ckpt``,
        or a file whose sidecar this pass creates beside it (``weights.safetensors`` and
        ``weights.json``), which a sidecar on Drive may vouch for. A kill leaves its record
        unverified, and its next create, answered 409, updated it in place (push27)."""
        if name.endswith(sidecar.CHECKPOINT_SUFFIXES):
            return True
        with self._lock:
            return not sidecar.is_sidecar(name) and \
                (folder_id, sidecar.name_for(name)) in self._planned

    def settled(self, folder_id: str, name: str, md5: Optional[str] = None) -> None:
        """The new file is verified on Drive with ``md5`` (None: its id is of no more use):
        its record says so (or goes), with the others' once the pass has none left waiting
        (one write)."""
        with self._lock:
            found = self._pending.pop((folder_id, name), None)
            if found is not None:
                self._settled[found[0]] = md5
            if self._pending or not self._settled:
                return
            done, self._settled = self._settled, {}
        CreateIds().update({}, [k for k, m in done.items() if m is None],
                           {k: m for k, m in done.items() if m is not None})

    def _another(self, local_path: str, folder_id: str, name: str) -> Optional[str]:
        """A new id for the new file ``name`` in ``folder_id``, in place of one of no use,
        recorded before its create is sent (None: no ids to be had)."""
        file_id = self.pool.take_one()
        if file_id is not None:
            key = CreateIds.key(local_path, folder_id, name)
            CreateIds().update({key: (file_id, folder_id)}, [])
            with self._lock:
                self._pending[(folder_id, name)] = (key, file_id, None)
        return file_id

    def upload(self, transport: Transport, store: RemoteStore, get: Get, local_path: str,
               folder: RemoteEntry, name: str, *, chunk_size: Optional[int],
               progress: Optional[ProgressFn], md5_cache: Optional[Md5Source],
               follow: bool = False, real: str = "") -> RemoteEntry:
        """:func:`~drivestage.drive.upload.upload_file` of a new file, with its chosen id;
        a 409 for that id read as above (the module's doc). For a create a push planned
        from its listing, the file this store made there a moment ago, still there with the
        local bytes, is that file (:meth:`_made_before`); an upload asked for directly is
        made (two of one file at once each make their own: tests/test_upload.py)."""
        with self._lock:
            planned = (folder.id, name) in self._planned
        # (a link at the name not followed: no file there to be one made before)
        again = self._made_before(get, local_path, folder.id, name, md5_cache, follow, real) \
            if planned and (follow or not os.path.islink(local_path)) else None
        if again is not None:
            self.settled(folder.id, name, again.md5)
            return again
        entry = self._create(transport, store, get, local_path, folder, name,
                             chunk_size=chunk_size, progress=progress, md5_cache=md5_cache,
                             follow=follow, real=real)
        with self._lock:
            self._made_here[(folder.id, name)] = entry
        return entry

    def _made_before(self, get: Get, local_path: str, folder_id: str, name: str,
                     md5_cache: Optional[Md5Source], follow: bool,
                     real: str) -> Optional[RemoteEntry]:
        """The file this store made as ``name`` in ``folder_id`` (an earlier push of this
        process: a mirror's period, a training run's save), read by id, when it is still
        there as made and holds the local file's bytes. A listing made right after does
        not show it yet (Drive's lag), and each push sent it again: a second copy of the
        checkpoint per push while the listing lagged (attackpush26)."""
        with self._lock:
            made = self._made_here.get((folder_id, name))
        if made is None or made.md5 is None or \
                os.stat(local_path, follow_symlinks=follow).st_size != made.size:
            return None   # (no file read: a checkpoint of another size is another one)
        local = _local_md5(local_path, md5_cache, follow, real)
        if local != made.md5:
            return None   # changed here since: sent as a new file
        where = f"{temps.shown(local_path)} -> {name}"
        res = _ours(get, made.id, folder_id, name, where)
        entry = entry_from_resource(res, where) if res is not None else None
        if entry is None or entry.md5 != local:
            return None   # deleted, trashed, moved, renamed or changed on Drive since
        log.info("%s: made by this process a moment ago, not listed yet (Drive's listing "
                 "lags); not sent again", where)
        return entry

    def _create(self, transport: Transport, store: RemoteStore, get: Get, local_path: str,
                folder: RemoteEntry, name: str, *, chunk_size: Optional[int],
                progress: Optional[ProgressFn], md5_cache: Optional[Md5Source],
                follow: bool, real: str) -> RemoteEntry:
        """The create of :meth:`upload`."""
        file_id = self.id_for(folder.id, name)

        def send(with_id: Optional[str], replace: Optional[RemoteEntry] = None) -> RemoteEntry:
            return upload_file(transport, store, local_path, folder, name, replace=replace,
                               chunk_size=chunk_size, progress=progress, md5_cache=md5_cache,
                               file_id=with_id, follow=follow, real=real)
        if file_id is None:
            return send(None)
        where = f"{temps.shown(local_path)} -> {name}"
        first = True
        while True:
            try:
                entry = send(file_id)
                break
            except (SourceChangedError, ChecksumMismatchError):
                # It made the file with the id, then removed that copy: the id is Drive's for
                # good, and a create of the name sent next (a copy of a log that kept changing,
                # the next push) would only be answered 409 for it.
                self.settled(folder.id, name)
                raise
            except RemoteError as exc:
                if exc.status not in (400, 409) or file_id is None:
                    raise
                made = _ours(get, file_id, folder.id, name, where) if exc.status == 409 \
                    else None
                if made is not None:
                    got = self._made(made, send, where, file_id, (local_path, follow, real),
                                     md5_cache, keep=self._verified_md5(folder.id, name)
                                     is not None or self._checkpoint(folder.id, name))
                    if got is not None:
                        entry = got
                        break
                # Deleted, trashed, moved or renamed since its create; or an id Drive will not
                # take (400): made anew, with another id, recorded (a rare write of its own).
                log.info("%s: the id chosen for it (%s) is of no more use (HTTP %s); "
                         "creating it anew", where, file_id, exc.status)
                if not first:
                    # A new id refused as well (attacky25: a server handing out ids in use
                    # failed every new file of a push with a 409): made without one.
                    self.pool.distrust()
                file_id = self._another(local_path, folder.id, name) if first else None
                first = False
        self.settled(folder.id, name, entry.md5)
        return entry

    def _made(self, made: dict[str, Any], send: Callable[..., RemoteEntry], where: str,
              file_id: str, local: tuple[str, bool, str], md5_cache: Optional[Md5Source],
              *, keep: bool) -> Optional[RemoteEntry]:
        """The file ``made`` by a create of ours (whose answer was lost, or which an earlier
        push verified): counted as uploaded when it holds the local bytes; else updated in
        place, but where it is to be kept as it is (``keep``: verified, or a checkpoint):
        None, made anew. ``local``: the upload's path, follow and real."""
        entry = entry_from_resource(made, where)
        if entry.md5 == _local_md5(local[0], md5_cache, local[1], local[2]):
            log.info("%s: Drive made it from a create of an earlier push (its id %s), not "
                     "listed yet; its md5 matches, not sent again", where, file_id)
            return entry
        if keep:
            # A verified copy or a checkpoint (verified by a push that failed later, before
            # it recorded so: attackpush26), which a sidecar on Drive may vouch for: never
            # overwritten before its replacement is verified (a later push's repair removes
            # one of the two).
            return None
        return send(None, replace=entry)   # the local file changed since: updated in place

    def make_folder(self, transport: Transport, get: Get, parent_id: str, name: str,
                    where: str, *, properties: Optional[list[dict[str, str]]] = None
                    ) -> dict[str, Any]:
        """Create the folder ``name`` in ``parent_id`` with an id chosen (and recorded in
        :class:`~drivestage.state.MadeFolders`) before the create is sent: the one a create
        cut earlier recorded, else a new one. A 409 for it gives the folder made then.
        ``properties``: Drive v2 custom properties it is made with (a run folder's mark)."""
        from drivestage.state import MadeFolders

        made = MadeFolders()
        folder_id = made.recall(parent_id, name)
        if folder_id is None:
            folder_id = self.pool.take_one()
            if folder_id is not None:
                made.remember(parent_id, name, folder_id)  # before the create is sent
        body: dict[str, Any] = {"title": name, "mimeType": FOLDER_MIME,
                                "parents": [{"id": parent_id}]}
        if properties:
            body["properties"] = properties

        def insert(with_id: Optional[str]) -> dict[str, Any]:
            sent = dict(body, id=with_id) if with_id is not None else body
            res = transport.files().insert(body=sent, supportsAllDrives=True) \
                .execute(http=transport.http())
            return file_resource(res, f"making {where}: the server answered", "a folder")
        if folder_id is None:
            res = insert(None)
            made.remember(parent_id, name, str(res["id"]))
            return res

        def attempt(with_id: str) -> Optional[dict[str, Any]]:
            """The folder made with ``with_id`` (by this create, or by one whose answer was
            lost: a 409 for it); None when Drive refuses the id otherwise."""
            try:
                return insert(with_id)
            except Exception as exc:
                failure = answers.failure_of(exc)
                if failure is None or failure.status not in (400, 409):
                    raise
            found = _ours(get, with_id, parent_id, name, where, folder=True) \
                if failure.status == 409 else None
            if found is not None:
                log.info("%s: made by a create whose answer was lost (its id %s)", where,
                         with_id)
                return found
            log.info("%s: the id chosen for it (%s) is of no more use (HTTP %s); creating "
                     "it anew", where, with_id, failure.status)
            return None
        got = attempt(folder_id)
        if got is not None:
            return got
        another = self.pool.take_one()
        if another is not None:
            made.remember(parent_id, name, another)  # before the create is sent
            got = attempt(another)
            if got is not None:
                return got
            # A new id refused as well (attacky25: a server handing out ids in use failed
            # the push at its first folder with a 409): made without one.
            self.pool.distrust()
        res = insert(None)
        made.remember(parent_id, name, str(res["id"]))
        return res


def _local_path(key: str) -> str:
    """The local path of a :meth:`CreateIds.key` (the path may hold a "|" itself)."""
    return key.rsplit("|", 2)[0]


def _ours(get: Get, file_id: str, folder_id: str, name: str, where: str, *,
          folder: bool = False) -> Optional[dict[str, Any]]:
    """The item ``file_id`` as files.get shows it now, when it is the one a create of ``name``
    in ``folder_id`` made (a folder, or not one) and is not in the trash; else None."""
    try:
        res = get(file_id, where)
    except NotFoundError:
        return None
    # (Any other failure is raised: a file not read is never taken for gone, and made again.)
    labels = res.get("labels")
    if res.get("id") != file_id or res.get("title") != name \
            or (isinstance(labels, Mapping) and labels.get("trashed")) \
            or provenance.is_in(res, folder_id) is not True \
            or (res.get("mimeType") == FOLDER_MIME) != folder:
        return None
    return res


#: Every :class:`IdPool` and :class:`Creates` of this process, for :func:`_unlocked_in_child`.
_FORKED: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _unlocked_in_child() -> None:
    for held in list(_FORKED):
        held._forked()


os.register_at_fork(after_in_child=_unlocked_in_child)


def _local_md5(local_path: str, md5_cache: Optional[Md5Source], follow: bool,
               real: str = "") -> str:
    """The md5 of the file to send, by the upload's rules: through a link only where
    ``follow`` (a hash followed one planted there: read a huge file whole, pushlinks46), and
    where ``real`` is given, only there (:func:`drivestage.sources.open_walked`)."""
    try:
        st = os.stat(local_path, follow_symlinks=follow)
        return (md5_cache.get(local_path, st) if md5_cache is not None else None) \
            or (sources.walked_md5(local_path, real) if real else
                file_md5(local_path, follow=follow))
    except OSError as exc:
        raise special_files.became(local_path, exc) from None
