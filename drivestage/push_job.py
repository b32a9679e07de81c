"""One push's steps (:class:`PushJob`), in order, with what they share: :func:`drivestage.upload_tree.push`
runs one (its module doc says what a push does and promises)."""
from __future__ import annotations

import logging
import threading
import time
from typing import Iterable, Mapping, Optional, Sequence

from drivestage import extra, first_seen, name_blocked, other_runs, pruning, push_room, \
    push_spared, run_folders, sidecar, sidecar_unread, unread, unread_guard, unread_memory, \
    walk_clock
from drivestage.errors import (BecameOtherError, DriveStageError, FolderInTheWayError,
                               FolderLeftError, NameSharedError, NotFoundError,
                               PermissionDeniedError, TrashedError, UsageError)
from drivestage.local_tree import LocalFile, LocalTree, said_of, say_special, walk
from drivestage.localdir import LocalDirStore
from drivestage.locks import Held, locked, more
from drivestage.lost_mounts import delete_held_back
from drivestage.old_copies import Key, Listings, OldCopies, newest, sidecar_owners
from drivestage.paths import StorePath, printable
from drivestage.push_fence import Fence, Guard
from drivestage.push_folders import list_folders
from drivestage.push_result import Outstanding, PushResult
from drivestage.pruning import LocalFile as PlannedFile
from drivestage.push_send import Sends, Todo
from drivestage.sizes import format_size
from drivestage.retention import AUTOSAVE, CHECKPOINT, Decision, Plan, RetentionPolicy, \
    just_written
from drivestage.special_files import walked_md5
from drivestage.state import Md5Cache
from drivestage.store import ProgressFn, RemoteEntry, RemoteStore

__all__ = ["CHECKPOINT_SUFFIXES", "PushJob", "Todo"]

# The name its lines always had (a user's logging config, or grep, may name it).
log = logging.getLogger("drivestage.upload_tree")

CHECKPOINT_SUFFIXES = sidecar.CHECKPOINT_SUFFIXES


class PushJob(Sends):
    """One push: the steps of :func:`push`, in order, with what they share (the send loop:
    :class:`~drivestage.push_send.Sends`; the re-sends: :class:`~drivestage.push_resend.Resends`)."""

    def __init__(self, store: RemoteStore, policy: RetentionPolicy, *, include: Sequence[str],
                 exclude: Sequence[str], chunk_size: Optional[int], protect: set[str],
                 use_trash: bool, jobs: int, progress: Optional[ProgressFn], cache: Md5Cache,
                 keep_other_runs: bool = True, outstanding: Optional[Outstanding] = None,
                 run_folder: bool = False, guard: Optional[Guard] = None):
        self.store, self.policy, self.include, self.exclude = store, policy, include, exclude
        self.chunk_size, self.protect, self.use_trash, self.jobs = (chunk_size, protect,
                                                                    use_trash, jobs)
        self.progress, self.cache = progress, cache
        self.keep_other_runs = keep_other_runs
        self.run_folder = run_folder or policy.active   # DEST is a run folder (run_folders)
        self.for_run = run_folder   # (a training run's push: its fix never names --delete)
        self.outstanding = outstanding or Outstanding()  # what is not sent yet, as it goes
        self.result = PushResult()
        self.remote_folder: dict[str, RemoteEntry] = {}
        self.path = StorePath(None, ())  # DEST in the store (set by run)
        self.follow_symlinks = False     # the walk's (set by run)
        self.listing: Listings = {}
        self.vanished: set[str] = set()  # top-level files gone before they were sent
        self.emptied: set[str] = set()   # folders said emptied on purpose (push --emptied)
        # Local files over a folder of their name on the store that --delete is to remove.
        self.over_folders: list[tuple[LocalFile, list[RemoteEntry]]] = []
        self.room_left: list[Decision] = []  # left alone by push_room: not tried again
        self.said: set[str] = set()  # folders said to have moved (push_watch.check_folders)
        # Local files not sent: a folder on the store has their name (name_blocked).
        self.blocked: dict[Key, FolderInTheWayError] = {}
        self.waits: dict[Key, str] = {}   # with a sidecar it cannot read (sidecar_unread)
        self.mutex = threading.Lock()
        self.fence = Fence(guard)   # the caller's check at each commit point (push_fence)
        self.copies = OldCopies(store, self.listing, use_trash=use_trash, mutex=self.mutex,
                                replaced=self.result.replaced_duplicates, check=self.fence.check)

    def run(self, src: str, path: StorePath, removal: Optional[extra.Removal],
            follow_symlinks: bool) -> None:
        store, self.path, self.follow_symlinks, self.src = self.store, path, follow_symlinks, src
        if removal is not None:   # (before the walk reads it too: one made readable after
            unread_guard.check_readable()   # that read passed the check below: attackd51)
        began = time.time()   # (a record noted since is another push's, newer: kept)
        tree = walk(src, self.include, self.exclude, follow_symlinks=follow_symlinks)
        # (SRC read empty where the last push could not read it: an unmounted mount point)
        unread_memory.src_again(src, not (tree.files or tree.folders[1:] or tree.skipped_links
                                          or tree.special or tree.unread), self.emptied, began)
        # A folder a push could not read that reads empty now: an unmounted mount point, not
        # a folder emptied (attackr248), in a new process too: remembered as the walk found
        # it, before a request is sent (unread_memory, pushremount49).
        again = unread_memory.empty_again(
            tree.folders, tree.made, [*(lf.rel for lf in tree.files), *tree.folders,
                                      *tree.skipped_links, *tree.special, *tree.unread_rels],
            tree.unread, src, self.emptied, self.exclude, began)
        tree.add_unread(again)
        self.result.skipped_links = tree.skipped_links
        self.result.unread = list(tree.unread)   # (and the files refused as they are sent)
        say_special(tree.special, src, "send")
        links = tree.skipped_links
        if links:
            log.warning("skipped %d link%s that lead outside SRC, to a folder or nowhere (%s); "
                        "--follow-symlinks follows them", len(links),
                        "" if len(links) == 1 else "s",
                        ", ".join(links[:10]) + (", ..." if len(links) > 10 else ""))
        root = store.make_folders(path, mark=self.run_folder) if path.start or path.names \
            else store.resolve(path)
        if not root.is_dir:
            raise UsageError(f"{store.describe(root)} is a file, not a folder; push needs a "
                             "folder as DEST")
        if root.read_only:  # before any write: a push there could only fail file by file
            raise PermissionDeniedError(root.read_only)
        # DEST's lock by its id too (upload_tree holds DEST's as written): a push into it named
        # another way (by id, a shortcut) made every new file too (attacky25); and those of
        # the folders above it: a push into one (a mirror of all runs) writes into DEST too,
        # as one into a folder inside DEST does (push27); and those reached by shortcuts (lock28).
        locked(store.lineage(root), lambda held: self._locked_into(root, tree, path, removal,
                                                                   held, src))

    def _locked_into(self, root: RemoteEntry, tree: LocalTree, path: StorePath,
                     removal: Optional[extra.Removal], held: Held, src: str) -> None:
        if self.run_folder:  # before a byte is sent: a push of a folder above then waits
            run_folders.record(self.store, root, src, self.exclude)
        with walk_clock.walking(walk_clock.WalkClock(self.store.describe(root))):   # (walk52)
            self._into(root, tree, path, removal, held)

    def _into(self, root: RemoteEntry, tree: LocalTree, path: StorePath,
              removal: Optional[extra.Removal], held: Held) -> None:
        """The push into ``root``, DEST as found, once its lock is held."""
        store = self.store
        if removal is not None:
            extra.check_dest(store, root, path)
            run_folders.check_readable()   # (and unread.json: unread_guard)
        found = list_folders(store, root, path, tree, self.listing, deleting=removal is not None)
        self.remote_folder, self.result.folders_created = found.remote, found.created
        more(held, [store.lineage(f) for f in self.remote_folder.values() if f.linked])
        files = tree.files
        owned = run_folders.find(store, root, self.remote_folder, self.listing,
                                 deleting=removal is not None and not self.run_folder)
        self.result.left = owned.without(other_runs.left_on_store(
            store, self.cache, self.listing, files, self._is_checkpoint,
            other_runs=self.keep_other_runs))
        # Before the plan: a name a folder holds is not sent, nor a pair whose sidecar it
        # cannot read, and the plan sees the store's copy of it as it is (never prunes
        # through it, nor makes room for it).
        got, self.waits = sidecar_unread.waiting(files, self.cache, sidecar_owners(files))
        self.result.unread.extend(got)
        self.protect |= {n for rel, n in self.waits if not rel}
        if removal is None:
            self._block(files)
        # (retention too removes nothing of DEST's at a name the walk could not read)
        self.protect |= {u.rel for u in self.result.unread if "/" not in u.rel}
        # Planned again, from what was found, when --delete keeps a folder at a file's name:
        # that name waits too (it stopped the whole push, exit 2: pushblock49), and what was
        # planned as sent (the newest verified, --delete's kept) is not.
        marks = (len(self.result.skipped_by_policy), self.result.unchanged,
                 len(self.copies.repairs), len(self.result.unread), set(self.vanished))
        ahead: Optional[set[Key]] = None
        while True:
            self.result.blocked = sorted(lf.rel for lf in files
                                         if (lf.folder_rel, lf.name) in self.blocked)  # (so far)
            self.protect |= {n for rel, n in self.blocked if not rel}
            # Retention over the DEST folder: decided before anything is sent.
            decision: Optional[Plan] = None
            folder: Optional[pruning.FolderView] = None
            skip: set[str] = set()
            if self.policy.active:
                decision, folder = self._plan_around_left(files)
                self.result.plan = decision
                skip = {d.name for d in decision if not d.keep}
                if not decision.fits:
                    raise pruning.over_budget(decision, store.describe(root))
            if ahead is None:   # (once the plan dropped what it deletes anyway: said once)
                ahead = self._left() | owned.keys(files, self.listing) | set(self.waits)
            todo = self._todo(files, skip, ahead, deleting=removal is not None)
            deletions = None
            left_in_way: list[LocalFile] = []
            if removal is None:
                break
            kept = (decision.kept_ids if decision is not None else set()) | pruning.newest_verified_ids(
                store, self.listing[""], self.policy, self.cache, self._top_local(files),
                now=store.clock()[0], seen=first_seen.on(store)) | other_runs.left_ids(
                self.result.left, self.listing) | owned.kept_ids(files, self.listing)
            deletions = extra.decide(store, root, self.listing, tree, removal,   # (push clock)
                                     kept=kept, protect=self.protect,
                                     include=self.include, exclude=self.exclude,
                                     marked=lambda e: owned.marked(store, e))
            if not self._folders_kept(deletions, files):
                break
            self.over_folders = []   # (the first try's steps undone: made again)
            del self.result.skipped_by_policy[marks[0]:], self.copies.repairs[marks[2]:], \
                self.result.unread[marks[3]:]
            self.result.unchanged, self.vanished = marks[1], set(marks[4])
        self._check_quota(root, todo, decision, folder)
        # The new files' ids, chosen and recorded in one write before any is sent: a create
        # cut now is not made twice by the next push (drivestage.drive.ids).
        store.reserve_creates([(t.lf.path, self.remote_folder[t.lf.folder_rel], t.lf.name)
                               for t in todo if t.target is None], self.remote_folder.values())
        try:
            self._send(files, todo)
        finally:  # what it verified recorded so, even when it failed (see reserve_creates)
            store.reserve_creates([], ())
        self.copies.repair()
        # A file refused at its send was present to the decision: a folder at its name was
        # to go with it sent; never sent, that folder (its files the only copies) stays.
        refused = {u.rel for u in self.result.unread} - tree.unread_rels
        if deletions is not None and refused:
            deletions = push_spared.sparing(deletions, refused)
        if deletions is not None:   # (written into SRC since the walk: another push sent it)
            deletions = push_spared.written_since(deletions, tree, self.src, store.describe(root))
        if removal is not None and deletions is not None and not (
                deletions.doomed and isinstance(store, LocalDirStore)
                and delete_held_back(store.describe(root))):   # (mount31)
            self.fence.check(replaces=False)   # (each removal request is checked itself)
            try:
                self.result.deleted, self.result.deleted_items = extra.apply(
                    store, root, deletions, removal, check=self.fence.check)
            except BaseException:
                self._say_in_way()
                raise
            # (a folder at a file's name left at its check: said once retention is done)
            left_in_way = [lf for lf, _ in self.over_folders
                           if lf.rel not in self.result.deleted and lf.rel not in refused]
        # Planned as sent (as the newest verified): a file gone, or a sidecar left for the next
        # push (its checkpoint saved again while it was sent) vouches for nothing on the store,
        # and the verified one before it must stay (attackpush45: both went, exit 0). Nor is
        # a file the first plan deleted anyway on the store: never sent, it was the re-plan's
        # newest verified in place of the store's (attackretain46: that went, exit 0).
        # Nor is one it could not read when it came to send it: its copies there all stay.
        refused = {u.rel for u in self.result.unread if "/" not in u.rel} | {
            n for rel, n in self.blocked if not rel} | {   # (and a name a folder took meanwhile)
            n for rel, n in self.waits if not rel}
        self.protect |= refused
        unsent = self.vanished | refused | {n for f, n in self.copies.skipped if not f}
        # (each at the size it was sent: one saved again as it went may have grown, and the
        # budget counted the size walked)
        sent = self.copies.sent
        grown = self.policy.max_bytes is not None and any(
            ("", n) in sent and sent[("", n)].size != f.size
            for n, f in self._top_local(files).items() if n not in skip)
        if decision is not None and (unsent or grown):
            local = {n: PlannedFile(f.path, sent[("", n)].size, f.real) if ("", n) in sent else f
                     for n, f in self._top_local(files).items()
                     if n not in unsent and n not in skip}
            folder = pruning.view(store, self.listing[""], local, self.policy, self.cache)
            decision = self.result.plan = self._plan(folder, local)
            if not decision.fits:   # (the plan before the uploads fitted: said, not raised)
                why = ("until the next push: the newest verified checkpoint stays until what "
                       "replaces it is sent with its sidecar") if unsent else (
                       "a checkpoint grew as it was sent, and what no budget deletes takes that "
                       "much: raise --max-bytes")
                log.warning("%s holds %s of checkpoints, over the %s budget, %s",
                            store.describe(root), format_size(decision.kept_bytes),
                            format_size(decision.max_bytes or 0), why)
        if decision is not None:
            self._apply(decision, folder.twins if folder is not None else {})
            first_seen.clear(store, [e for es in self.listing.get("", {}).values() for e in es],
                             gone=[d.id for d in decision if not d.keep],
                             # (a mark's property, neither bytes nor a removal: goes where
                             # the guard is unsure, as a new file does)
                             check=lambda: self.fence.check(replaces=False))
        # Last, once everything else went: a path push could not read fails it (exit 1, as
        # another run's checkpoints it left do), never taken as absent (unread.py).
        unread.say(self.result.unread, store.describe(root))
        waiting = sidecar_unread.say(self.waits, store.describe(root))
        name_blocked.say(list(self.blocked.values()), store.describe(root))
        self.result.blocked = sorted(f"{rel}/{n}" if rel else n for rel, n in self.blocked)
        if left_in_way:
            lf = left_in_way[0]
            where = store.describe(self.remote_folder[lf.folder_rel])
            raise FolderLeftError(f"{where}/{lf.name}", lf.path)
        if self.result.unread:
            raise unread.error(self.result.unread, waiting)
        if self.blocked:
            raise name_blocked.error(list(self.blocked.values()),
                                     store.describe(root).startswith("drive:"))

    def _plan(self, folder: pruning.FolderView, local: Iterable[str]) -> Plan:
        """Retention over DEST. The newest local checkpoint (and autosave) of every run is
        never pruned by the push that sends it (:func:`~drivestage.retention.just_written`)."""
        fresh = just_written(folder.candidates, self.policy, local)
        return pruning.plan_folder(folder, self.policy, protect=self.protect,
                                   also_keep={"just written": fresh},
                                   seen=first_seen.on(self.store), now=self.store.clock()[0])

    def _is_checkpoint(self, lf: LocalFile, paired: Mapping[str, str]) -> bool:
        """Replaced by a new file rather than overwritten (see the module's doc); ``paired``:
        :func:`drivestage.sidecar.pairs` of the names in its folder (made once per folder)."""
        if sidecar.is_sidecar(lf.name):
            return False
        return (lf.name.endswith(CHECKPOINT_SUFFIXES) or lf.name in paired
                or (not lf.folder_rel and self.policy.kind_of(lf.name) in (CHECKPOINT, AUTOSAVE)))

    def _top_local(self, files: list[LocalFile]) -> dict[str, PlannedFile]:
        """The files about to join DEST's top folder: not those left unsent (the plan sees
        the store's copy as it is there, so it never prunes another run's through them)."""
        ahead = {k for lf in self.result.left for k in lf.keys} | set(self.blocked) | set(
            self.waits)
        return {lf.name: PlannedFile(lf.path, lf.size, lf.real) for lf in files
                if not lf.folder_rel and ("", lf.name) not in ahead}

    def _plan_around_left(self, files: list[LocalFile]) -> tuple[Plan, pruning.FolderView]:
        """The plan of DEST, the store's checkpoints this push leaves seen as they are. One
        the plan deletes anyway (``--keep-runs`` drops its run, its run's ``--keep-last``)
        protects nothing: the local file replaces it after all, and the plan is made again."""
        while True:
            local = self._top_local(files)
            folder = pruning.view(self.store, self.listing[""], local, self.policy, self.cache)
            decision = self._plan(folder, local)
            gone = {d.id for d in decision if not d.keep and d.id}
            kept = [lf for lf in self.result.left if lf.id not in gone]
            if len(kept) == len(self.result.left):
                return decision, folder
            self.result.left = kept

    def _left(self) -> set[Key]:
        """Say what the push leaves on the store (:mod:`drivestage.other_runs`): the local
        files not sent."""
        left = self.result.left
        other_runs.report(left, self.store)
        self.result.other_run = [lf.rel for lf in left if lf.run is not None]
        self.result.further_on = [lf.rel for lf in left if lf.run is None and lf.flagged is None]
        self.result.unknown_run = [lf.rel for lf in left if lf.flagged is not None]
        return {k for lf in left for k in lf.keys}

    def _todo(self, files: list[LocalFile], skip: set[str], ahead: set[Key],
              deleting: bool = False) -> list[Todo]:
        """What to send: size differs, or same size and md5 differs (a folder of a file's
        name on the store: not sent, :meth:`_block`; with ``deleting``: ``--delete`` removes
        it)."""
        names: dict[str, set[str]] = {}
        for lf in files:
            names.setdefault(lf.folder_rel, set()).add(lf.name)
        # Paired once per folder (once per file was quadratic: minutes at 5,000 changed files).
        paired: dict[str, dict[str, str]] = {}
        todo: list[Todo] = []
        for lf in files:
            if (lf.folder_rel, lf.name) in ahead or (lf.folder_rel, lf.name) in self.blocked:
                continue
            if lf.folder_rel == "" and lf.name in skip:
                self.result.skipped_by_policy.append(lf.rel)
                continue
            there = self.listing[lf.folder_rel].get(lf.name, [])
            folders = [e for e in there if e.is_dir]
            if folders and deleting:   # (checked once --delete decided: _check_folders_go)
                self.over_folders.append((lf, folders))
            # (a Google Doc of its name holds no bytes: no copy of it, never updated in place)
            remote = [e for e in there
                      if sidecar.has_bytes(e)]
            if not remote:
                todo.append(Todo(lf, None, []))
                continue
            current = newest(remote)
            try:
                # (by open_sent's rules: a link or FIFO put there since the walk, one line)
                local_md5 = walked_md5(self.cache, lf.path, lf.real) \
                    if current.size == lf.size else None
            except FileNotFoundError:
                self._vanished(lf)
                continue
            except BecameOtherError as exc:   # (a link the walk let through: named too)
                raise said_of(lf, exc) from None
            except OSError as exc:   # (EACCES, EIO: not sent; its copies there kept)
                if not self._unread(lf, exc):
                    raise
                continue
            others = [e for e in remote if e.id != current.id]
            if local_md5 is not None and current.md5 == local_md5:
                self.result.unchanged += 1
                if others:
                    self.copies.repairs.append((lf, current, others))
                continue
            for e in remote:  # to be replaced: never a shortcut (checked before a byte is sent)
                self.store.check_replaceable(e)
            if lf.folder_rel not in paired:
                paired[lf.folder_rel] = sidecar.pairs(names[lf.folder_rel]
                                                      | set(self.listing[lf.folder_rel]))
            # A copy this account can neither delete nor trash is replaced in place: a new
            # copy beside it would stay too, one more with every push.
            if self._is_checkpoint(lf, paired[lf.folder_rel]) and all(e.removable for e in remote):
                todo.append(Todo(lf, None, remote, duplicates=len(remote) > 1))
            else:
                todo.append(Todo(lf, current, others, duplicates=bool(others)))
        return todo

    def _block(self, files: list[LocalFile]) -> None:
        """Each file whose name a folder on the store holds (none with ``--delete``: it
        removes the folder, or :meth:`_folders_kept`): not sent, said, and failing the push
        once the rest is done (:mod:`drivestage.name_blocked`); before, the whole push was
        refused (attackint48)."""
        for lf in files:
            there = self.listing[lf.folder_rel].get(lf.name, [])
            folders = [e for e in there if e.is_dir]
            if folders:
                self.blocked[(lf.folder_rel, lf.name)] = self._blocked_line(
                    lf, len(folders) < len(there))
        self._sidecars_wait(files)

    def _blocked_line(self, lf: LocalFile, shared: bool, kept: str = "") -> FolderInTheWayError:
        """The line of ``lf``, whose name a folder holds (``shared``: a file too); ``kept``:
        why ``--delete`` leaves that folder."""
        where = self.store.describe(self.remote_folder[lf.folder_rel])
        if shared:
            # A file is there too: the folder came after the listing of the push that sent
            # it (Drive makes no name unique: pushlefts48). Said as it is, not as a file
            # that "cannot be sent there"; --delete removes the folder, the file kept.
            return NameSharedError(
                where, printable(lf.name), lf.shown, "rename that folder on Drive"
                if self.for_run else f"rename the folder on Drive{kept}" if kept else
                "rename or remove the folder on Drive, or push with --delete to remove it")
        # Sent beside it, the file made a name that every pull of DEST refused ("names 2
        # items", the push exiting 0: attackpush45); --delete removes the folder.
        return FolderInTheWayError(
            f"{where}/{lf.name}", lf.shown, "rename that folder on Drive" if self.for_run
            else f"rename one of them{kept}" if kept else
            "rename one of them, or push with --delete to replace the folder")

    def _sidecars_wait(self, files: list[LocalFile]) -> None:
        """Each checkpoint whose sidecar waits, waiting with it (:func:`name_blocked.owners`)."""
        name_blocked.owners(self.blocked, sidecar_owners(files),
                            {(lf.folder_rel, lf.name): lf.shown for lf in files}, self.for_run)

    def _folders_kept(self, deletions: extra.Deletions, files: list[LocalFile]) -> bool:
        """Whether a folder at a local file's name stays after ``--delete`` (``--protect``, a
        run folder, filtered out, in another folder too): that name then waits, as without
        ``--delete`` (:meth:`_block`). Sent beside the folder, the file made a name every
        pull refuses, exit 0 (attack46); before, the whole push stopped (pushblock49)."""
        going = {d.entry.id for d in deletions.doomed}
        new = False
        for lf, folders in self.over_folders:
            if any(f.id not in going for f in folders):
                there = self.listing[lf.folder_rel].get(lf.name, [])
                self.blocked[(lf.folder_rel, lf.name)] = self._blocked_line(
                    lf, len(folders) < len(there), name_blocked.KEPT_WHY)
                new = True
        if new:
            self._sidecars_wait(files)
        return new

    def _say_in_way(self) -> None:
        """Said where ``--delete`` stopped partway (its guard refused, a removal failed): a
        folder of a sent file's name it had not removed yet stays beside the file, and only
        the error that stopped it was said (retain47). Each such folder is asked for (one
        files.get: a read, which no guard forbids); one not known gone is named."""
        for lf, folders in self.over_folders:
            for folder in folders:
                try:
                    self.store.stat(folder)
                except (NotFoundError, TrashedError):
                    continue   # (removed before the stop)
                except DriveStageError:
                    pass   # (unknown: said as there)
                where = self.store.describe(self.remote_folder[lf.folder_rel])
                log.error("%s/%s is a folder --delete had not removed when the push stopped "
                          "(the error below says why), and %s was sent beside it: a pull "
                          "refuses that name until one of them goes; the next push --delete "
                          "removes the folder, or rename one of them", where, lf.name, lf.shown)
                break

    def _check_quota(self, root: RemoteEntry, todo: list[Todo], decision: Optional[Plan],
                     folder: Optional[pruning.FolderView]) -> None:
        """Before a byte is sent: make room by pruning what the policy deletes anyway, or
        fail. A checkpoint's old copy stays until its new one and its sidecar are verified,
        at the end of the uploads: every replacement needs room for both."""
        final = sum(t.lf.size - (t.target.size if t.target else 0)
                    - sum(e.size for e in t.olds) for t in todo)
        overlap = sum(sum(e.size for e in t.olds) for t in todo if t.target is None)
        needed = final + overlap
        if needed <= 0:
            return
        self.fence.check(replaces=False)   # (each removal request is checked itself)
        where = f"{len(todo)} file(s) into {self.store.describe(root)}"
        pruned, self.room_left = push_room.make_room(self.store, needed, where, decision,
                                                     folder, self.policy, self.use_trash,
                                                     into=root, check=self.fence.check)
        self.result.pruned += pruned

    def _apply(self, decision: Plan, twins: Mapping[str, list[RemoteEntry]]) -> None:
        """Apply the plan's remote deletions (after every upload was verified), with the
        copies of the same bytes of each file it deletes (:func:`push_room.apply_plan`)."""
        self.fence.check(replaces=False)   # (each removal request is checked itself)
        self.result.pruned += push_room.apply_plan(
            self.store, decision, self.remote_folder[""], self.use_trash,
            {d.id or "" for d in self.result.pruned}, twins, self.room_left,
            self.copies.repairs, self.copies.sent, check=self.fence.check)
