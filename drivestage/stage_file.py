"""Stage one remote file (and optionally its extracted contents) into a local folder.

Each file is staged in three steps, as pooch does:

1. what is on disk is gathered (:class:`Local`: the target, the stamp's members, a partial);
2. :func:`decide` (:mod:`drivestage.stage_decide`) - a pure function of the stamp, the
   remote entry and that - picks the verb, which is logged (nothing on a cache hit):

   * ``cached``   - the stamp says this exact file (id, md5, size) is staged and the local copy
     is intact: no download;
   * ``verified`` - a file with the right size already sits at the target without a stamp,
     and its md5 matches (:func:`decide` answers ``check`` until that md5 is known): adopted
     without a download;
   * ``download`` / ``resume`` / ``update`` - fetch it (:mod:`drivestage.download`);
   * ``extract``  - only the extraction is missing;

3. the extraction step receives that decision
   (:class:`drivestage.stage_extraction.Extraction`).

The stamp (:mod:`drivestage.stamps`, one per remote file) records what was staged: remote
id, md5, size, the local file's size and mtime, and the records of the extracted members. It
says "extracted" only once every member was checked in place, so an interrupted pull never
looks complete, and a rerun whose members are not all in place (absent, another kind, size
or mtime) extracts again. A file lock per local name makes concurrent pulls of one file on one machine
(DDP ranks, notebook cells) download it once: the others wait, then find the stamp.
"""
from __future__ import annotations

import logging
import os
import stat
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Collection, Optional

from drivestage import download as dl
from drivestage import stamps
from drivestage.checksums import choose
from drivestage.extract import MemberRecord
from drivestage.errors import DestChangedError, DownloadRestrictedError, LocalFileError, \
    NotFoundError, UsageError
from drivestage.extract.statedir import state_lock
from drivestage.extract.validation import STATE_DIR
from drivestage.localfs import fitted_name, identity
from drivestage.partials import left_behind, unlink
from drivestage.sizes import check_space, format_size
from drivestage.stage_decide import NAME_MAX as NAME_MAX  # re-exported
from drivestage.stage_decide import Local as Local  # re-exported
from drivestage.stage_decide import decide as decide  # re-exported
from drivestage.stage_decide import own_records, put_since, same_content, verified_sha256
from drivestage.stage_decide import safe_name as safe_name  # re-exported
from drivestage.stage_extraction import Extraction, in_place, recorder, remove_archive, \
    settle_journals, shadowed
from drivestage.stage_extraction import ProgressFactory as ProgressFactory  # re-exported
from drivestage.stage_extraction import no_progress as no_progress  # re-exported
from drivestage.stage_order import Turn
from drivestage.stage_original import FromOriginal, kept_by_remove, moved_source, original_of, \
    source_identity
from drivestage.stamps import Stamp
from drivestage.store import RemoteEntry, RemoteStore
from drivestage.unpack import Unpacking

log = logging.getLogger(__name__)

STAMP_DIR = STATE_DIR


@dataclass
class PullResult:
    """What a pull of one file did (``--json`` prints it)."""

    src: str
    path: str                 # the local file
    dest: str                 # the folder it was staged into
    id: str
    name: str
    size: int
    md5: Optional[str]
    action: str               # cached | verified | download | resume | update | extract
    fetched: int = 0          # bytes downloaded by this run
    resumed_from: int = 0
    extracted: bool = False
    members: int = 0          # extracted members (files, folders, links)
    members_kept: int = 0     # of those, found in place (not written by this run)
    archive_removed: bool = False  # the archive is not kept: its members stand for it
    seconds: float = 0.0
    api_calls: Optional[int] = None  # requests sent to Drive by the whole command
    #: What this run verified the bytes with ("md5" or "sha256": :mod:`drivestage.checksums`);
    #: "" when it hashed nothing (a stamp vouched for the copy).
    checksum: str = ""
    #: The SHA-256 that verified the bytes (this run, or when they were staged: the stamp's);
    #: None where their md5 did.
    sha256: Optional[str] = None
    member_paths: list[str] = field(default_factory=list, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The summary without the (possibly long) member list."""
        out = asdict(self)
        out.pop("member_paths")
        return out


# ------------------------------------------------------------------------------ one file

class FileStager:
    """Stages remote files into ``dest`` (one :meth:`stage` call per file).

    ``lock_dir`` is the folder whose merge lock serialises extractions (a folder pull passes
    its root, so that archives in nested folders merge one at a time); default ``dest``.
    ``protect``: the local paths of other files the same pull stages and of those stamps
    in its folders stand for (a folder pull gathers them once), which no archive member may
    replace; without it, those DEST's stamps stand for. ``walked``: when a folder pull
    listed Drive (``time.time_ns()``): a stamp written since may hold a newer version.
    ``turn``: what an extraction's merge waits on (a folder pull's archives that share a
    path merge one after the other: :mod:`drivestage.stage_order`)."""

    def __init__(self, src: str, dest: str, store: RemoteStore, *, extract: bool,
                 jobs: Optional[int], force: bool, reserve: int, chunk_size: Optional[int],
                 progress: ProgressFactory, extract_progress: ProgressFactory = no_progress,
                 lock_dir: Optional[str] = None, protect: Collection[str] = (),
                 walked: Optional[int] = None, in_place: bool = False,
                 current: Optional[stamps.Listed] = None,
                 turn: Optional[Turn] = None, remove_archive: bool = False):
        self.src, self.dest, self.store = src, dest, store
        self.extract, self.jobs, self.force, self.reserve = extract, jobs, force, reserve
        self.chunk_size, self.progress = chunk_size, progress
        self.extract_progress = extract_progress
        self.lock_dir = lock_dir or dest
        self.protect = protect
        self.walked = walked
        #: The files a folder pull listed (id -> md5): only their stamps stand for a member
        #: another archive of the folder wrote (:func:`drivestage.stamps.siblings_wrote`).
        self.current = current
        #: A local archive to extract is extracted where it lies (:mod:`.stage_original`).
        self.in_place = in_place and extract
        self.turn = turn
        #: ``pull --remove-archive``: the downloaded archive goes once extracted.
        self.remove_archive = remove_archive and extract

    def _waiting(self) -> None:
        log.warning("another pull of %s into %s is running; waiting for it", self.src,
                    self.dest)

    def stage(self, entry: RemoteEntry) -> PullResult:
        """Stage the file ``entry`` as ``dest/<its name>`` (under the file's lock)."""
        if entry.unreadable:
            raise NotFoundError(entry.unreadable)
        if not entry.has_content:
            raise UsageError(f"{self.src} has no binary content (a Google Docs, Sheets or "
                             f"Slides file? its type is {entry.kind or 'unknown'}); export it "
                             "to a file on Drive first")
        name = safe_name(entry.name, self.src, entry.id)
        if entry.no_download and (self.force or not stamps.of(self.dest, name)):
            # Nothing staged of that name (checked again under the lock): fail before
            # writing anything, even the state folder.
            raise self._restricted(entry, os.path.join(self.dest, name))
        # The file's lock, in the state folder: checked to be this user's own folder before
        # anything is read from it or written (see drivestage.extract.statedir).
        with state_lock(self.dest, fitted_name(name) + ".lock", self._waiting,
                        transient=True):  # no inode left per staged file
            source = original_of(self.store, entry) if self.in_place else None
            if source is not None:
                return self._from_original(name, entry, source)
            return self._stage_locked(name, entry)

    def _from_original(self, name: str, entry: RemoteEntry, source: str) -> PullResult:
        staged = FromOriginal(src=self.src, dest=self.dest, name=name, source=source,
                              reserve=self.reserve, lock_dir=self.lock_dir,
                              extract_progress=self.extract_progress, force=self.force,
                              protect=self.protect, store=self.store,
                              current=self.current)
        action, members, checksum = staged.stage(entry)
        result = self._result(entry, source, action, members=members, extracted=True)
        result.checksum, result.md5 = checksum, staged.md5 or entry.md5  # hashed as extracted
        # (A repair's members in place: said "extracted" with the one it wrote: pull29.)
        result.members_kept = staged.kept
        return result

    def _kept(self, entry: RemoteEntry, target: str) -> bool:
        """Whether ``--remove-archive`` keeps ``target`` (:func:`kept_by_remove`), said."""
        why = kept_by_remove(self.store, entry, target, self.src)
        if why is not None:
            log.warning("--remove-archive keeps %s: %s", target, why)
        return why is not None

    def _restricted(self, entry: RemoteEntry, target: str) -> DownloadRestrictedError:
        """The error for a file whose owner turned downloading off, named by SRC as given (a
        rerun found it by the id its stamp keeps, which the store's message names)."""
        text, said = entry.no_download or "", self.store.describe(entry)
        if text.startswith(said + ":"):
            text = self.src + text[len(said):]
        return DownloadRestrictedError(text + left_behind(target, entry))

    def _local(self, stamp: Optional[Stamp], entry: RemoteEntry, target: str) -> Local:
        try:
            st: Optional[os.stat_result] = os.stat(target)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            # A FIFO or a device there (or a link to one) is no copy to adopt: an empty file
            # to stage had its size, and reading it for its md5 waited for a writer (or read
            # /dev/zero) for good. The download's rename replaces it.
            st = None
        if stamp is not None and self.turn is not None and stamp.get("extracted"):
            self.turn.judge(stamps.records(stamp), stamps.left_paths(stamp))
        intact = stamp is not None and stamps.missing_member(self.dest, stamp, self.current) is None
        if not intact and st is None and stamp is not None and stamp.get("removed") is True \
                and self.current is None:   # (nothing here to put a shared path back from)
            intact = shadowed(self.dest, stamp)
        return Local(size=st.st_size if st else None, mtime_ns=st.st_mtime_ns if st else None,
                     members_intact=intact,
                     partial=0 if self.force else dl.partial_size(target, entry))

    def _stage_locked(self, name: str, entry: RemoteEntry) -> PullResult:
        target = os.path.join(self.dest, name)
        if os.path.isdir(target) and not os.path.islink(target):
            # DEST's state, not the command line: exit 1, not a usage error's 2.
            raise LocalFileError(f"{target} is a folder; {self.src} would be saved there as a "
                                 "file. Move the folder away or pull into another DEST")
        # A rerun's usual case first: this very file's stamp, read without listing the state
        # folder (a stamp per file: listing it for each file of a folder pull took time in
        # n²). The other stamps of the name matter only once something is to be staged.
        own = None if self.force else stamps.own(self.dest, name, entry.id)
        # Without the file there, a stamp of its name written since a folder pull listed the
        # state folder (another pull's, of the same name) cannot matter: its file would be.
        alone = own is not None  # the name's other stamps not read yet
        found = [own] if own is not None else \
            stamps.of(self.dest, name, listed=not os.path.lexists(target))
        newer = [s for s in found if s.get("md5") != entry.md5 and (s["id"] == entry.id or
                 s.get("src") == self.src) and stamps.written_since(s, self.walked)]
        if newer:  # another pull staged a version (or replacement) newer than the walk saw
            entry = self._fresh(entry, newer[0])
        own = next((s for s in found if s["id"] == entry.id), None)
        same_src = [s for s in found if s is not own and s.get("src") == self.src]
        # The earlier versions of this pull: their members go once the new ones are in place.
        previous = ([own] if own is not None else []) + same_src
        basis = own if own is not None else (same_src[0] if same_src else None)
        partial = dl.partial_path(target, entry)
        if not os.path.lexists(partial):
            # A record without its partial: a kill came between the download's rename into
            # place and the record's removal (this file's lock rules out a live download).
            unlink(dl.ranges_path(partial))
        if self.force:
            for path in [partial] + dl.stale_partials(target):
                dl.remove_partial(path)
        local = self._local(basis, entry, target)
        removing = self.remove_archive and not self._kept(entry, target)
        if removing and local.size is None and local.members_intact and \
                basis is not None and same_content(basis, entry) and not self.force:
            remove_archive(self.dest, target, basis)  # (deleted by hand: nothing to fetch)
        action = decide(None if self.force else basis, entry, local, extract=self.extract,
                        force=self.force)
        held: Optional[os.stat_result] = None   # the file whose bytes were verified here
        if action == "check":
            why, held = dl.verify_held(target, entry)
            local = Local(local.size, local.mtime_ns, local.members_intact, local.partial,
                          md5_ok=why is None)
            action = decide(basis, entry, local, extract=self.extract, force=self.force)
        if action == "cached":
            assert basis is not None
            # The same bytes under a new id: the stamp follows the id. A stamp whose keys
            # are not the ones this run needed (written before they were kept, edited by
            # hand, a folder's key rotated) is rewritten, so the next rerun is one call.
            if basis is not own or basis.get("access") != self.store.access_hint(entry) \
                    or moved_source(self.store, basis, entry):
                basis = self._rekey(basis, entry)
            if self.extract:   # (a kill between its stamp and its merge's journal going)
                settle_journals(self.dest, target, basis, listed=True)
            staged = [m.path for m in stamps.records(basis)] if self.extract else []
            if self.extract and basis.get("version") != stamps.VERSION:
                staged = [str(row[0]) for row in basis.get("members") or []]
            result = self._result(entry, target, action, members=staged,
                                  extracted=self.extract)
            result.archive_removed = self.extract and (
                remove_archive(self.dest, target, basis) if removing else
                basis.get("removed") is True and not os.path.lexists(target))
            result.sha256 = verified_sha256(basis, entry, "")
            return result
        if entry.no_download and action not in ("verified", "extract"):
            # Only where bytes must come from Drive: a copy staged before (a notebook's
            # pull cell run again) stays usable after the owner turned downloading off.
            raise self._restricted(entry, target)
        if alone and own is not None:  # read alone above: now the name's others
            found = stamps.of(self.dest, name)
            same_src = [s for s in found if s["id"] != entry.id and s.get("src") == self.src]
            previous = [own] + same_src
        if local.size is not None and (not found or put_since(basis, local, found)) and \
                not self.force and action not in ("verified", "extract"):
            # No stamp of this name (or of an archive removed since), other bytes: a file of
            # the user's (or another program's), which a pull never replaces unasked.
            raise LocalFileError(
                f"{target} is already there and is not a copy of {self.src} that drivestage "
                "staged (its bytes differ); move it away, or pull with --force to replace it")
        for path in dl.record_temps(target):
            unlink(path)  # a kill while a record was written (the lock rules out a live one)
        fetched = resumed = 0
        checksum = ""
        unpacking: Optional[Unpacking] = None
        protected = {target, *(self.protect or stamps.staged_files(self.dest))} \
            if self.extract else set()
        if action == "verified":
            log.info("verified %s: the file already at %s matches", self.src, target)
            check = choose(entry)
            checksum = check.name if check is not None else ""
        # The archive downloaded again (deleted after its extraction, or changed) while the
        # members of this very version are in place: they are not written again. Not with
        # --force, the way out for what no rerun can see (a member edited in place, its
        # mtime set back): kept by its size, mtime and inode, it stayed so (pull29).
        restoring = self.extract and action in ("download", "resume") and not self.force
        if action not in ("verified", "extract"):
            have = local.partial
            check_space(self.dest, self.reserve, entry.size - have, f"download {self.src}")
            log.info("%s %s (%s) to %s%s", action, self.src, format_size(entry.size), target,
                     f" from byte {have}" if have else "")
            self._warn_shared_target(found, previous, target, local)
            bar = self.progress(name, entry.size, have)
            unpacking = Unpacking(self.store, entry, target, self.dest, extract=self.extract,
                                  jobs=self.jobs, chunk_size=self.chunk_size, progress=bar,
                                  describe=self.src, reserve=self.reserve,
                                  lock_dir=self.lock_dir,
                                  extract_progress=self._extract_bar(entry, target),
                                  protected=protected,
                                  replaceable=stamps.replaceable(self.dest, previous)
                                  if self.extract else (), turn=self.turn,
                                  kept=in_place(self.dest, own_records(basis, entry, "extract"),
                                                basis) if restoring else {},
                                  recorded=recorder(self.dest, self.force)
                                  if self.extract else None)
            try:
                res = unpacking.download()
            except BaseException:
                unpacking.close()
                raise
            fetched, resumed, checksum = res.fetched, res.resumed_from, res.checksum
        # A copy verified by its md5 whose stamp (this very version's) finds every member in
        # place: the members stay as they are. A Drive mount that showed the archive with
        # another mtime (a new Colab session) got every member extracted again through it.
        # Not all in place (a member changed too): only what is not is written (pull29).
        # So too an archive removed once extracted, downloaded again by a pull without -x.
        own_version = (action == "verified" and self.extract or not self.extract and action in (
            "download", "resume") and basis is not None and basis.get("removed") is True) \
            and previous == [basis] and basis is not None and not stamps.records(basis, "stale") \
            and not basis.get("unrecorded") and basis.get("version") == stamps.VERSION
        carried = own_version and local.members_intact
        try:
            extracted = own_records(basis, entry,
                                    "extract" if own_version or restoring else action)
            carried = carried and bool(extracted)
            if unpacking is not None:
                held = unpacking.dl.placed   # the file downloaded, checked in place
            stamp = self._downloaded(name, entry, target, previous, extracted, held,
                                     verified_sha256(basis if action == "extract" else None,
                                                     entry, checksum))
            members: list[str] = []
            kept = 0
            if carried:
                stamp["extracted"] = True
                stamps.write(self.dest, stamp)
                members = [m.path for m in extracted]
                kept = len(members)
            elif self.extract:
                step = Extraction(src=self.src, dest=self.dest, reserve=self.reserve,
                                  lock_dir=self.lock_dir,
                                  extract_progress=self.extract_progress, stamp=stamp,
                                  protected=protected, extracted=extracted,
                                  current=self.current, turn=self.turn, force=self.force,
                                  # A file found at the target and verified here: only
                                  # its bytes (not a file renamed over it since).
                                  identity=held if action == "verified" else None)
                members, kept = step(target, action, unpacking), step.kept
            if held is not None:
                self._check_stamped(target, held, stamp)
        finally:
            if unpacking is not None:
                unpacking.close()
        gone = removing and remove_archive(self.dest, target, stamp, held)
        result = self._result(entry, target, action, fetched=fetched, resumed=resumed,
                              members=members, extracted=self.extract)
        result.checksum, result.members_kept = checksum, kept
        result.archive_removed, result.sha256 = gone, stamp.get("sha256")
        return result

    def _extract_bar(self, entry: RemoteEntry, target: str) -> Optional[Callable[[int], None]]:
        """The extraction's progress while it follows the download (bytes written; the
        archive's size stands in for what it holds)."""
        if not self.extract or self.extract_progress is no_progress:
            return None
        return self.extract_progress("extract", entry.size, 0)

    def _downloaded(self, name: str, entry: RemoteEntry, target: str,
                    previous: list[Stamp], extracted: list[MemberRecord],
                    held: Optional[os.stat_result] = None,
                    sha256: Optional[str] = None) -> Stamp:
        """The stamp of the copy now at ``target``, written before any extraction: it carries
        the records of every earlier version's members (``stale``), so that a pull killed
        from here on still removes them once the new members are in place; the earlier
        versions' own stamps go. ``extracted``: this very archive's records (a rerun that
        puts back a member deleted by hand), kept as its members, so that a rerun after
        this one fails (a full disk) or is killed still knows what is in place. ``held``: the
        file found at the target and verified (its descriptor's identity), or downloaded
        and checked in place: the stamp is of it. Taken by name, a file of the same size
        renamed over it since got the stamp: the rerun took it for the staged copy
        (`already staged` for good; with -x, its members extracted unverified: attackz26)."""
        # Each record once: one carried as a member is also stale here.
        stale = list({tuple(m.to_json()): m for s in previous for key in ("members", "stale")
                      for m in stamps.records(s, key)}.values())
        stamp = stamps.new(src=self.src, file_id=entry.id, name=name, remote_name=entry.name,
                           parent_id=entry.parent_id, md5=entry.md5, size=entry.size,
                           mtime_ns=(held or os.stat(target)).st_mtime_ns, stale=stale,
                           previous=previous)
        if sha256:   # the SHA-256 that verified the bytes (None: their md5 did)
            stamp["sha256"] = sha256
        self._note_access(stamp, entry)
        vouched = source_identity(self.store, entry)
        if vouched is not None:
            stamp["original"], stamp["path"] = vouched
        if extracted:
            stamp["members"] = [m.to_json() for m in extracted]
        unrecorded = sorted({p for s in previous for p in stamps.unrecorded(s)})
        if unrecorded:
            stamp["unrecorded"] = unrecorded
        stamps.write(self.dest, stamp)  # the download is done, whatever extraction does
        for old in previous:
            if old.get("_path") != stamp["_path"]:
                stamps.drop(old)
        return stamp

    def _check_stamped(self, target: str, held: os.stat_result, stamp: Stamp) -> None:
        """Raise unless the file at ``target`` is still ``held``, the one verified, which
        ``stamp`` describes. Another program's file of the same size renamed over it since
        (attackz26) got no stamp, but the pull said it staged the copy, exit 0; and with the
        verified file's mtime, the rerun took it for the staged copy. The stamp then
        describes no file: the rerun checks whatever is at the target by its md5."""
        try:
            now: Optional[tuple[int, ...]] = identity(os.stat(target))
        except OSError:
            now = None
        if now == identity(held):
            return
        stamp["mtime_ns"] = None
        stamps.write(self.dest, stamp)
        raise DestChangedError(
            f"{target} changed while it was read (another program writes it?): it is not "
            f"the copy of {self.src} verified against Drive; run the pull again (it checks "
            "the file there, and downloads it again if its bytes differ)")

    def _fresh(self, entry: RemoteEntry, stamp: Stamp) -> RemoteEntry:
        """The file ``stamp`` stands for as Drive has it now, when it sits where ``entry``
        did, under its name; else ``entry``."""
        hint = stamp.get("access")
        if isinstance(hint, str):  # a link-shared file's resource keys: else Drive answers 404
            self.store.use_access_hint(stamp["id"], hint)
        try:
            now = self.store.stat(RemoteEntry(id=stamp["id"], name=entry.name, is_dir=False,
                                              parent_id=entry.parent_id))
        except NotFoundError:
            return entry
        same = now.name == entry.name and now.parent_id == entry.parent_id and not now.is_dir
        return now if same else entry

    def _rekey(self, basis: Stamp, entry: RemoteEntry) -> Stamp:
        """``basis`` rewritten for ``entry`` (its id, keys, source); the stamp now in force."""
        fresh = {k: v for k, v in basis.items() if not k.startswith("_")}
        if fresh.get("version") != stamps.VERSION:
            return basis  # a 0.1.0 stamp stays as it is until the copy is staged again
        fresh.update(id=entry.id, parent_id=entry.parent_id, name=entry.name)
        self._note_access(fresh, entry)
        vouched = source_identity(self.store, entry)
        if vouched is not None:
            fresh["original"], fresh["path"] = vouched
        stamps.write(self.dest, fresh)
        if basis.get("_path") != fresh["_path"]:
            stamps.drop(basis)
        return fresh

    def _note_access(self, stamp: Stamp, entry: RemoteEntry) -> None:
        """Keep in ``stamp`` what a rerun's recheck of ``entry`` by id needs (Drive: the
        resource keys it was reached through; a rerun without them gets a 404)."""
        hint = self.store.access_hint(entry)
        stamp.pop("access", None)
        if hint is not None:
            stamp["access"] = hint

    def _warn_shared_target(self, found: list[Stamp], previous: list[Stamp], target: str,
                            local: Local) -> None:
        for other in found:
            if other in previous or local.size is None:
                continue
            if other.get("size") == local.size and other.get("mtime_ns") == local.mtime_ns:
                log.warning("%s is the staged copy of %s; %s replaces it (members extracted "
                            "from it stay). Pull files of one name into separate folders to "
                            "keep both", target, other.get("src"), self.src)

    def _result(self, entry: RemoteEntry, target: str, action: str, *, fetched: int = 0,
                resumed: int = 0, members: Optional[list[str]] = None,
                extracted: bool = False) -> PullResult:
        members = members or []
        return PullResult(src=self.src, path=target, dest=self.dest, id=entry.id,
                          name=entry.name, size=entry.size, md5=entry.md5, action=action,
                          fetched=fetched, resumed_from=resumed, extracted=extracted,
                          members=len(members), member_paths=list(members))
