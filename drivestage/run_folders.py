"""Run folders: a store folder whose checkpoints belong to the push that keeps it there, and
which a push of a folder above it leaves to that push.

The old Colab recipe runs ``drivestage mirror ./runs drive:runs --every 60`` (or a cron
``push ./runs drive:runs``) while the trainer, with ``drive.logs: drive:runs/exp1``, pushes
``./runs/exp1`` itself with its retention (``drive.keep_last``, ``keep_best``, autosaves) and
``train.keep_local`` deletes local epoch files once Drive holds them. The two writers undid
each other: the mirror sent again every epoch file the run's retention had just deleted
from Drive (still on the local disk), each period, and the run deleted it again; and
``--delete`` trashed the checkpoints Drive keeps (the best one, the last N) that
``keep_local`` had removed from the disk: a verified copy lost (mirror28).

**Marked.** A push whose DEST is a run folder records it, by the store's
:meth:`~drivestage.store.RemoteStore.place` of the folder's id, in drivestage's state folder
(``run-folders.json``, this machine only): a training run's push (the trainer's
``drive.logs``, :class:`drivestage.hooks.CheckpointSync`: ``run_folder``) and any push with a
retention policy (``--keep-last`` ...: it prunes that folder). Written before anything is
sent, at a process's first push into the folder and again should the state folder lose it
(``~/.cache`` cleared while a run goes on: a stat per push sees it) or, full, have had no
room for it (tried at each push, said once); a record stays (a
finished run's folder is still its run's) until that folder is gone from the store: a
folder made anew under the name is another. The folder is marked on the store too
(:attr:`~drivestage.store.RemoteEntry.run_mark`; Drive: a PRIVATE and a PUBLIC property,
sent with the folder's insert, or set by one request, once, on one made before:
:func:`mark`), so that a machine without these records (a fresh Colab VM, a laptop with
another OAuth client) knows it; ``drivestage runs forget`` clears both (:func:`forget`).

**Left to it.** A push into a folder above (:class:`drivestage.push_job.PushJob`) finds the
run folders among its subfolders by their ids, and there, and in every folder inside them,
sends no checkpoint and no sidecar (a ``.pt``/``.pth``/``.ckpt`` file, one paired with a
sidecar, and the sidecars: :meth:`Owned.keys`), nor what the run's push leaves out (its
excludes: the trainer's ``last.pt``, a ``*.pt.bad-<time>`` kept on this machine only), and
``--delete`` removes none of those and no folder (:meth:`Owned.kept_ids`); a run folder
missing locally is left whole. Everything else
there (logs, plots, ``results.csv``) is pushed, and other folders as before. It says so once
per run folder and store (a mirror: once per process, not every period).
"""
from __future__ import annotations

import logging
import os
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, MutableMapping, Optional, Sequence

from drivestage import other_runs, sidecar, unread_guard
from drivestage.errors import DriveStageError, LocalFileError, PermissionDeniedError, \
    PropertyLimitError, WebPageRefusalError
from drivestage.local_tree import LocalFile
from drivestage.old_copies import Key, Listings
from drivestage.paths import StorePath, matches
from drivestage.state import JsonFile, read_json, state_dir
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger("drivestage.upload_tree")

#: The state file's name, under :func:`drivestage.state.state_dir`.
FILE = "run-folders.json"
#: Records kept: the newest ones (one per run folder a machine ever pushed with a policy).
MAX_RECORDS = 2000

#: What this process recorded, in which state file (DRIVESTAGE_STATE_DIR may change): the
#: file as it was when the record was last seen in it (its inode, mtime and size).
_recorded: dict[tuple[str, str, tuple[str, ...]], tuple[int, int, int]] = {}
#: What could not be written (said once, not at every save of a run).
_unwritten: set[tuple[str, str, tuple[str, ...]]] = set()
_said: "MutableMapping[RemoteStore, set[str]]" = weakref.WeakKeyDictionary()
#: The run folders this process marked on the store, by place (one request each, once).
_patched: set[str] = set()
#: Those it could not mark (said once, though an outage's is tried again at each push).
_unmarked: set[str] = set()


def _file(path: Optional[Path] = None) -> JsonFile:
    return JsonFile(path or state_dir() / FILE)


def key(store: RemoteStore, folder: RemoteEntry) -> str:
    """What a record is of: the folder, by id, as the store names places."""
    return store.place(StorePath(folder.id, ()))


def record(store: RemoteStore, folder: RemoteEntry, src: str, exclude: Sequence[str]) -> None:
    """Mark ``folder`` (a push's DEST) as a run folder pushed from ``src``, leaving out
    ``exclude`` (the trainer's ``last.pt``, ``*.pt.bad-*``: a push of a folder above sends
    them no more than the run does): on the store, where it has no mark yet (:func:`mark`),
    and in the state folder."""
    mark(store, folder)
    place, states = key(store, folder), _file()
    done = (str(states.path), place, tuple(exclude))
    if done not in _unwritten and _still(states, done):
        return
    now = time.time()
    # The folders it sits in (the store's cached lineage: the push's lock took it, no request):
    # ``--delete`` of a folder above that SRC lacks would trash the run folder with it.
    above = [p for p, _ in store.lineage(folder)[1:]]

    def change(data: dict[str, Any]) -> None:
        data[place] = {"src": os.path.realpath(src), "where": store.describe(folder), "t": now,
                       "exclude": list(exclude), "above": above}
        for old in sorted(data, key=lambda k: _time(data[k]))[:max(0, len(data) - MAX_RECORDS)]:
            del data[old]

    # A state folder that cannot be written warns once, not at every save of a run; it is
    # tried again at each (a full disk freed meanwhile: the record was never written). A
    # damaged file is left as it is: written anew, every other run's record was gone.
    damaged = unreadable(states.path)
    if damaged is not None:
        if done not in _unwritten:
            log.warning("cannot record %s as a run folder in %s (%s): %s", store.describe(folder),
                        states.path, damaged, DAMAGED)
        _unwritten.add(done)
        return
    if done in _unwritten:
        try:
            states.update(change)
        except OSError:
            return
        _unwritten.discard(done)
    elif not states.update_or_warn(change, "a push of a folder above it may send again what "
                                           "its retention pruned, or --delete what it keeps"):
        _unwritten.add(done)
        return
    _still(states, done)


def mark(store: RemoteStore, folder: RemoteEntry) -> None:
    """Mark the run folder ``folder`` on the store where it has no mark (one made before
    marks were, or not by its run's push): one request, once per process and folder. A
    machine without this one's state folder (a fresh Colab VM) then still knows it is a run
    folder. A refusal is said, and the push goes on (the local record still holds)."""
    place = key(store, folder)
    if folder.run_mark or folder.top or place in _patched:
        return
    _patched.add(place)
    try:
        store.mark_run_folder(folder)
    except DriveStageError as exc:
        if not isinstance(exc, (PermissionDeniedError, PropertyLimitError)):
            # An outage (5xx, no answer) passes: tried again at the next push. Once only, a
            # run whose first push met one stayed unmarked for days of training (attackpush32).
            # Drive's limit of properties is no outage: asked again, refused again, twice a
            # push (attack44).
            _patched.discard(place)
        if place in _unmarked:
            return
        _unmarked.add(place)
        log.warning("could not mark %s as a run folder on the store (%s): only this machine "
                    "knows it is one; a push of a folder above it with --delete from another "
                    "machine would remove it", store.describe(folder), exc)


def carry(store: RemoteStore, dup: RemoteEntry, into: RemoteEntry) -> None:
    """``dup``, a run folder (marked, or recorded here), is merged into ``into``, its
    same-named twin (``drivestage dedupe``): its mark and record go first, with what it
    holds. Merged into an unmarked oldest, the run's checkpoints were in no run folder: a
    fresh VM's ``mirror --delete`` trashed them (and this machine's, its record being of
    the trashed twin's id)."""
    rec = _file().read().get(key(store, dup))
    # (asked of dup itself where the listing showed no mark: Drive v2's files.list may
    # leave properties out, and the mark went to the trash with the emptied twin)
    if not (isinstance(rec, dict) or store.run_marked(dup)):
        return
    mark(store, into)
    if isinstance(rec, dict):
        place = key(store, into)
        _file().update_or_warn(lambda data: data.setdefault(place, dict(rec)),
                               "a push of a folder above it may --delete what its run keeps")


def forget(store: RemoteStore, folder: RemoteEntry) -> tuple[bool, bool]:
    """``folder`` is no run folder any more: its record in the state folder removed and its
    mark on the store cleared. Returns (whether it had a mark, whether it had a record).
    A store that refuses this account the clearing (a commenter, a reader): a
    PermissionDeniedError saying the mark stays, once the record is gone."""
    place, states = key(store, folder), _file()
    had: list[bool] = []

    def change(data: dict[str, Any]) -> None:
        had.append(data.pop(place, None) is not None)

    # The record first: clearing the mark may be refused (attackpush32: a commenter's
    # forget left both, under advice to check that the account could see the folder).
    if place in states.read():
        states.update(change)
    for done in [d for d in _recorded if d[1] == place]:
        del _recorded[done]
    _patched.discard(place)
    try:
        # (asked of the folder itself where the listing showed no mark: it said "was no
        # run folder: no mark on Drive" and left both marks)
        marked = store.run_marked(folder) and store.mark_run_folder(folder, False)
    except PermissionDeniedError as exc:
        if isinstance(exc, WebPageRefusalError):
            raise
        where = store.describe(folder)
        record = "this machine's record of it removed" if any(had) else \
            "no record of it on this machine"
        raise PermissionDeniedError(
            f"{where}: its run-folder mark stays on Drive: this account may not edit the "
            f"folder, and clearing the mark needs an editor's role (or a shared drive's "
            f"Contributor or above); {record}; someone with that role can run "
            f"drivestage runs forget {where}") from exc
    return bool(marked), any(had)


def _still(states: JsonFile, done: tuple[str, str, tuple[str, ...]]) -> bool:
    """Whether the state file still holds the record ``done`` (read only when the file
    changed since it was last seen there: a stat per push). The state folder may be emptied
    while a run goes on (``~/.cache`` cleared to free a disk): the run's next push writes
    its record again, so a push of a folder above knows it before the run's next process."""
    try:
        st = os.stat(states.path)
    except OSError:
        return False
    seen = (st.st_ino, st.st_mtime_ns, st.st_size)
    if _recorded.get(done) == seen:
        return True
    if done[1] not in states.read():
        return False
    _recorded[done] = seen
    return True


def _time(rec: Any) -> float:
    t = rec.get("t") if isinstance(rec, dict) else None
    return float(t) if isinstance(t, (int, float)) else 0.0


def _run_files(names: set[str]) -> set[str]:
    """The checkpoints and their sidecars among ``names`` (a folder's local and store names):
    a ``.pt``/``.pth``/``.ckpt`` file, one paired with a sidecar, a sidecar of one of them,
    and a 0.1.0 sidecar (``X.pt.json``) left alone. Paired once per folder (per file was
    quadratic in a folder of thousands)."""
    paired = sidecar.pairs(names)
    out = set(paired) | set(sidecar.owners(names))
    for name in names:
        stem = name[:-len(sidecar.SUFFIX)] if sidecar.is_sidecar(name) else name
        if stem.endswith(sidecar.CHECKPOINT_SUFFIXES):
            out.add(name)
    return out


@dataclass
class Owned:
    """The run folders inside a push's DEST (other pushes' DESTs), and the folders in them."""

    folders: dict[str, str] = field(default_factory=dict)   # rel -> the run folder it is in
    whole: set[str] = field(default_factory=set)            # ids of run folders not local
    exclude: dict[str, list[str]] = field(default_factory=dict)  # run folder -> its excludes
    marks: frozenset[str] = frozenset()                     # every record's place
    #: DEST itself is a run folder, pushed here without a policy (``push ./runs/exp1
    #: drive:runs/exp1 --delete``): ``--delete`` removes none of the checkpoints, sidecars,
    #: excluded files and folders in it either, as a push of the folder above does.
    dest: bool = False

    def marked(self, store: RemoteStore, folder: RemoteEntry) -> bool:
        """Whether ``folder`` is a run folder, wherever it is (``--delete`` leaves a folder
        that holds one whole, however deep: its record may not know where it sits now): by
        a record, or by its mark on the store (asked of the folder itself where the
        listing showed none: :meth:`~drivestage.store.RemoteStore.run_marked`)."""
        return folder.run_mark or key(store, folder) in self.marks or store.run_marked(folder)

    def keys(self, files: Iterable[LocalFile], listing: Listings) -> set[Key]:
        """The local files the push leaves unsent: checkpoints and sidecars in run folders."""
        run = self._run_files(files, listing, self.folders)
        return {(lf.folder_rel, lf.name) for lf in files if lf.folder_rel in self.folders
                and (lf.name in run[lf.folder_rel] or self._excluded(self.folders,
                                                                     lf.folder_rel, lf.name))}

    def without(self, left: list[other_runs.Left]) -> list[other_runs.Left]:
        """``left`` (:func:`drivestage.other_runs.left_on_store`) less the checkpoints in run
        folders: this push sends none of them anyway, so none is another run's to refuse
        or further on to warn about; the run's own push says so where it matters."""
        return [lf for lf in left if not any(rel in self.folders for rel, _ in lf.keys)]

    def kept_ids(self, files: Iterable[LocalFile], listing: Listings) -> set[str]:
        """The store files and folders ``--delete`` leaves: in run folders, every checkpoint,
        sidecar and folder; a run folder SRC lacks, whole; in DEST where it is one
        (:attr:`dest`), the same: its checkpoints, sidecars, excluded files and folders, at
        any depth."""
        scope = dict(self.folders)
        if self.dest:   # (keep_local removed from the disk what the run keeps on the store)
            # Every folder in it, as a push from the folder above keeps them (attackpush32:
            # weights/w1.pt and a Drive-only old/ went, under a line saying none would).
            scope.update({rel: "" for rel in listing if rel not in scope})
        run = self._run_files(files, listing, scope)
        out = set(self.whole)
        for rel in scope:
            for name, entries in listing.get(rel, {}).items():
                out |= {e.id for e in entries if (e.is_dir and (self.dest or rel in self.folders)) or (
                    not e.is_dir and (name in run[rel] or self._excluded(scope, rel, name)))}
        return out

    def _excluded(self, scope: Mapping[str, str], rel: str, name: str) -> bool:
        """Whether the run's own push leaves out ``name`` of folder ``rel`` (its path from
        the run folder, as that push matches it)."""
        top = scope[rel]
        inner = rel[len(top) + 1:] if top else rel
        return matches(f"{inner}/{name}" if inner else name, self.exclude.get(top, ()))

    @staticmethod
    def _run_files(files: Iterable[LocalFile], listing: Listings,
                   scope: Mapping[str, str]) -> dict[str, set[str]]:
        names: dict[str, set[str]] = {rel: set(listing.get(rel, {})) for rel in scope}
        listed: set[str] = set()
        for lf in files:
            if lf.folder_rel in names:
                names[lf.folder_rel].add(lf.name)
                if lf.folder_rel not in listed:
                    # What --include/--exclude hid too: the sidecar of a checkpoint the run
                    # pruned from the store, its .pt filtered out, was an unpaired plain
                    # file, sent back (attackds30). One listing per folder with a file.
                    listed.add(lf.folder_rel)
                    names[lf.folder_rel] |= _local_names(os.path.dirname(lf.path))
        return {rel: _run_files(folder) for rel, folder in names.items()}


def _local_names(folder: str) -> set[str]:
    """The names in a local folder; none when it cannot be listed."""
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()


def find(store: RemoteStore, root: RemoteEntry, remote_folder: Mapping[str, RemoteEntry],
         listing: Listings, *, deleting: bool = False) -> Owned:
    """The run folders inside ``root`` (a push's DEST) by the records: the local ones
    (``remote_folder``: SRC's folders, as on the store) and those only on the store (folder
    entries of ``listing``); and, for a push with ``--delete`` that is not the run's own
    (``deleting``), ``root`` itself where it is one (:attr:`Owned.dest`). Says once per
    store which it leaves. A run folder is known by its record or by its mark on the store
    (a machine without the records: a fresh VM); one recorded but not marked yet is marked
    (:func:`mark`)."""
    store.forget_unmarked()   # (a mirror's store: the marks a run set since are seen)
    records = _file().read()
    mine = key(store, root)
    owned = Owned(marks=frozenset(records), dest=deleting and (
        mine in records or store.run_marked(root)))
    if owned.dest:
        _is_run_folder(store, root, records)   # (marked, where only recorded)
        owned.exclude[""] = _excludes(records.get(mine))
        _said_dest(store, root, records.get(mine))
    asked = _asked(store, remote_folder, listing, records) if deleting else set()
    for rel in sorted(remote_folder):   # (a parent before what is inside it)
        parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
        folder = remote_folder[rel]
        if rel and parent in owned.folders:
            owned.folders[rel] = owned.folders[parent]
        elif rel and (_is_run_folder(store, folder, records) or rel in asked) and \
                key(store, folder) != mine:
            owned.folders[rel] = rel
            owned.exclude[rel] = _excludes(records.get(key(store, folder)))
    local_ids = {f.id for f in remote_folder.values()}
    holding = _holding(records)
    for rel, index in listing.items():
        for entries in index.values():
            owned.whole |= {e.id for e in entries if e.is_dir and e.id not in local_ids
                            and (_is_run_folder(store, e, records) or key(store, e) in holding)}
    _say(store, remote_folder, owned, records)
    return owned


def _asked(store: RemoteStore, remote_folder: Mapping[str, RemoteEntry], listing: Listings,
           records: Mapping[str, Any]) -> set[str]:
    """SRC's folders a ``--delete`` finds marked by asking them (where the listing showed no
    mark: Drive v2's ``files.list`` may leave properties out): the outermost on the way to
    each folder whose listing holds a checkpoint or sidecar, or a folder SRC lacks (what
    ``--delete`` would remove of a run folder SRC holds too: a fresh VM resuming the run,
    ``keep_local`` having left the checkpoints on Drive alone; attacksync33: in a Drive-only
    ``weights/``). One ``files.get`` each, once per store; none where the listing or a
    record says."""
    out: set[str] = set()
    for rel, index in listing.items():
        # (a folder SRC lacks goes whole: a run's weights/, kept on the store alone, went)
        if not rel or rel not in remote_folder or not (_run_files(set(index)) or any(
                e.is_dir and not e.linked and f"{rel}/{name}" not in remote_folder
                for name, entries in index.items() for e in entries)):
            continue
        parts = rel.split("/")
        for up in ("/".join(parts[:n]) for n in range(1, len(parts) + 1)):
            folder = remote_folder.get(up)
            if folder is None or folder.run_mark or key(store, folder) in records:
                break   # (known already, as find sees it)
            if store.run_marked(folder):
                out.add(up)
                break
    return out


def is_run_folder(store: RemoteStore, folder: RemoteEntry) -> bool:
    """Whether ``folder`` is a run folder, marked on the store or recorded on this machine:
    its checkpoints are its run's push's to replace (the trainer's stop save sent alone)."""
    return folder.run_mark or key(store, folder) in _file().read()


def _is_run_folder(store: RemoteStore, folder: RemoteEntry, records: Mapping[str, Any]) -> bool:
    """Whether ``folder`` is a run folder: marked on the store, or recorded here (and then
    marked, once: a machine without this one's records learns it from the store)."""
    if key(store, folder) in records:
        mark(store, folder)
        return True
    return folder.run_mark


def _excludes(rec: Any) -> list[str]:
    """What a record says the run's push leaves out (one string: one pattern, as written by
    hand; what is not a string, nothing)."""
    patterns = rec.get("exclude") if isinstance(rec, dict) else None
    if isinstance(patterns, str):
        patterns = [patterns]
    return [p for p in patterns or () if isinstance(p, str)]


def _said_dest(store: RemoteStore, root: RemoteEntry, rec: Any) -> None:
    """Once per store: ``--delete`` into a run folder leaves its run's files."""
    said = _said.setdefault(store, set())
    if "--delete " + key(store, root) in said:
        return
    said.add("--delete " + key(store, root))
    log.warning("%s is a run folder (%s with its own retention): --delete "
                "removes none of its checkpoints or their sidecars; its run's retention (or "
                "drivestage prune) deletes those", store.describe(root), _origin(rec, store))


def _holding(records: Mapping[str, Any]) -> set[str]:
    """The places of the folders run folders sit in, as their records say (a folder SRC
    lacks that holds one is left whole, as the run folder itself is)."""
    out: set[str] = set()
    for rec in records.values():
        above = rec.get("above") if isinstance(rec, dict) else None
        if isinstance(above, list):
            out |= {p for p in above if isinstance(p, str)}
    return out


def _origin(rec: Any, store: RemoteStore) -> str:
    """Where a run folder's push is, as its record says; one known by its mark alone."""
    if rec is None:
        from drivestage.localdir import LocalDirStore   # (local_marks: a file in it)

        return ("marked in its folder" if isinstance(store, LocalDirStore) else
                "marked on Drive") + " by its run's push,"
    src = rec.get("src") if isinstance(rec, dict) else None
    return f"pushed from {src if isinstance(src, str) and src else 'this machine'}"


def _say(store: RemoteStore, remote_folder: Mapping[str, RemoteEntry], owned: Owned,
         records: Mapping[str, Any]) -> None:
    said = _said.setdefault(store, set())
    for rel in sorted({r for r in owned.folders.values()}):
        place = key(store, remote_folder[rel])
        if place in said:
            continue
        said.add(place)
        log.warning("%s is a run folder (%s with its own retention); its "
                    "checkpoints are left to that push here: none it pruned is sent again, "
                    "none it keeps is deleted. The rest of %s is pushed",
                    store.describe(remote_folder[rel]), _origin(records.get(place), store), rel)


#: What to do of a records file that cannot be read.
DAMAGED = ("repair it, or move it away (each run records its folder again at its next push); "
           "until then push --delete is refused")


def unreadable(path: Optional[Path] = None) -> Optional[str]:
    """Why the records file cannot be read (damaged JSON, not a JSON object, unreadable), or
    None when it can or is absent."""
    try:   # (a FIFO there held every push --delete, a deep nesting ended it: attack51)
        data = read_json(path or state_dir() / FILE)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    except ValueError as exc:
        return f"not JSON: {exc}"
    return None if isinstance(data, dict) else f"a JSON {type(data).__name__}, not an object"


def check_readable() -> None:
    """Refuse a ``--delete`` while the records cannot be read: with none, the run folders
    above which it deletes are unknown, and it would remove the checkpoints a run keeps on
    the store that ``train.keep_local`` removed from the disk. So too while push's memory of
    the folders it could not read cannot be read (:func:`unread_guard.check_readable`)."""
    unread_guard.check_readable()
    why = unreadable()
    if why is not None:
        raise LocalFileError(
            f"cannot read {state_dir() / FILE} ({why}): it records which store folders are "
            "training runs' folders, and without it --delete could remove the checkpoints a "
            "run keeps there; nothing was sent or deleted. Repair the file, or move it away "
            "(each run records its folder again at its next push), then run again")
