"""A local archive extracted where it lies (``pull /kaggle/input/x/voc.zip ./data -x``).

A local SRC was copied whole into DEST, then extracted: on Kaggle's 20 GB working disk the
archive's size spent for nothing (the original sits on the read-only input). Now the
members are extracted from the original, which is only read. What makes that safe:

* a first pull (nothing of the original staged in DEST yet, or ``--force``) reads it once:
  the store lists it without its md5 (:func:`defer`) and the extraction hashes the bytes it
  reads (:class:`~drivestage.hashed_pass.HashedPass`); nothing is merged into DEST before
  that md5 is known, is the listing's when the listing had one (a mount that serves other
  bytes than it hashed), and the original's identity (device, inode, size, mtime, ctime: a
  write changes the ctime, which no user sets) is the same before the read and after it;
  otherwise the command fails with one line and nothing extracted stays. It read the
  original twice (the listing's hash, then the extraction: 2.03x its size), at first three
  times. So what was extracted is what was hashed, and its md5 is the one the stamp keeps;
* a pull that finds an earlier stamp of it hashes it first (once: the same md5 keeps what
  is in place, "verified", the common case of an identity that moved alone), then reads
  what it extracts: a new version whole, only the missing members of the same bytes;
* the stamp records that identity, so a rerun whose original is unchanged and whose
  members are in place reads nothing ("already staged": :func:`vouch` tells the store the
  stamp's md5 before it lists the file, which hashed it whole to find it staged); any other
  identity (a new version, the same bytes copied anew) is hashed again: the same md5 is
  adopted, another one is an update (the update rule of
  :class:`~drivestage.stage_extraction.Extraction`);
* the stamp records no identity for a hash made in the tick of the original's last write
  (:func:`drivestage.state.settled`: a rewrite in that tick would keep it), and none vouches
  on a FUSE mount, whose daemon reports ctime = mtime (:func:`drivestage.localfs.fuse_devices`):
  there a rerun hashes the original again;
* a chmod or a new hard link moves only the ctime: the rerun hashes the original once and,
  the md5 being the same, keeps every member in place ("verified"); during the extraction
  it is refused like a write (see :meth:`FromOriginal._same`);
* a member deleted by hand comes back from the original (only what is missing is written).

A file on a Google Drive mount is still copied: reading it there is slow, and a later
repair would read it from Drive again.
"""
from __future__ import annotations

import logging
import os
import re
import time
from typing import Any, Collection, Optional, TypeGuard

from drivestage import stamps
from drivestage.errors import DestChangedError
from drivestage.extract import MemberRecord, archive_kind
from drivestage.extract.formats import check_unchanged, open_archive
from drivestage.hashed_pass import HashedPass
from drivestage.local_reads import mount_read
from drivestage.localdir import LocalDirStore
from drivestage.paths import StorePath
from drivestage.pool import leavable
from drivestage.state import settled
from drivestage.localfs import drive_mount, file_md5, identity
from drivestage.stage_extraction import Extraction, ProgressFactory, no_progress, \
    settle_journals
from drivestage.stamps import Stamp
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)


def original_of(store: RemoteStore, entry: RemoteEntry) -> Optional[str]:
    """The local path of ``entry`` when it is an archive to extract where it lies: a file of
    a local folder (not a Drive mount) that is a zip or tar; else None (copied as before)."""
    if not isinstance(store, LocalDirStore) or entry.is_dir:
        return None
    path = store.describe(entry)
    # (its head read, on a mount that hangs, left by a Ctrl-C: LocalDirStore.looked, hang52b)
    return path if store.looked(lambda: _in_place(path)) else None


def kept_by_remove(store: RemoteStore, entry: RemoteEntry, target: str,
                   src: str) -> Optional[str]:
    """Why ``pull --remove-archive`` must keep ``target``, or None. SRC itself: a local file
    not extracted where it lies (one on a Drive mount, copied as above) pulled into its own
    folder, where the pull finds it and adopts it. A file in a Google Drive mount: it may be
    the Drive file pulled, as the mount shows it. Either was removed: the user's dataset."""
    if isinstance(store, LocalDirStore) and not entry.is_dir:
        try:
            if os.path.samefile(store.describe(entry), target):
                return f"it is {src} itself, the file pulled, not a copy"
        except OSError:
            pass
    mount = drive_mount(target)
    if mount is None:
        return None
    return (f"it lies in the Google Drive mount {mount}, where it may be the Drive file "
            "itself (removed, it would go to Drive's trash); pull to local disk (e.g. "
            "/content/data) to remove it")


def _in_place(path: str) -> bool:
    return drive_mount(path) is None and archive_kind(path) is not None


def defer(store: RemoteStore, path: StorePath) -> None:
    """Before ``pull -x`` looks up a local SRC: when it is an archive to extract where it
    lies (:func:`original_of`: the same rule), the directory store lists it without reading
    it for its md5: the extraction hashes the bytes it reads (:class:`HashedPass`), so a first
    pull reads the original once. It read it whole to list it, then again to extract it."""
    if isinstance(store, LocalDirStore):
        full = store.local_path(path)
        if store.looked(lambda: os.path.isfile(full) and _in_place(full)):   # (as above)
            store.defer_md5(full)


def _identity(st: os.stat_result) -> list[int]:
    return list(identity(st))


def vouch(store: RemoteStore, stamp: Stamp) -> None:
    """Tell a directory store the md5 a stamp of a local original records for its identity,
    before the store lists the file: a rerun on an unchanged original then reads none of it.
    A stamp without both (another kind of pull, one edited by hand) tells nothing."""
    ident, md5, path = stamp.get("original"), stamp.get("md5"), stamp.get("path")
    if isinstance(store, LocalDirStore) and _ints(ident, 5) and isinstance(path, str) \
            and isinstance(md5, str) and re.fullmatch(r"[0-9a-f]{32}", md5):
        store.vouch(path, tuple(ident), md5)


def source_identity(store: RemoteStore, entry: RemoteEntry
                    ) -> Optional[tuple[list[int], str]]:
    """For a local SRC (a directory store): its identity while its md5 is the one the
    copy was verified with, and its path, which the stamp keeps: the rerun's lookup then
    takes that md5 (:func:`vouch`) instead of hashing the source whole to find the copy
    staged. None for any other store, or when the store hashed no version of the source
    that is still there."""
    if not isinstance(store, LocalDirStore) or not entry.md5:
        return None
    path = store.describe(entry)
    try:   # (a look left by a Ctrl-C where the mount hangs: hang52)
        st = store.looked(lambda: os.stat(path))
    except OSError:
        return None
    if store.settled_md5(path, st) != entry.md5:  # not hashed just after a write
        return None
    return list(identity(st)), path


def moved_source(store: RemoteStore, stamp: Stamp, entry: RemoteEntry) -> bool:
    """Whether the local source's identity is not the one ``stamp`` keeps while its md5
    is (a chmod, a new hard link, the same bytes written anew): the copy was found
    staged, and the stamp kept the old identity, so every rerun hashed the source
    whole again. Rewritten, the next rerun reads none of it."""
    vouched = source_identity(store, entry)
    return vouched is not None and \
        [stamp.get("original"), stamp.get("path")] != list(vouched)


def _ints(value: Any, n: int) -> TypeGuard[list[int]]:
    return isinstance(value, list) and len(value) == n and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value)


class FromOriginal:
    """Extract the local archive ``source`` into ``dest`` (under the file's lock, taken by
    the caller); :meth:`stage` returns the action, the member paths and the checksum."""

    def __init__(self, *, src: str, dest: str, name: str, source: str, reserve: int,
                 lock_dir: str, extract_progress: ProgressFactory, force: bool,
                 protect: Collection[str], store: Optional[RemoteStore] = None,
                 current: Optional[stamps.Listed] = None):
        self.src, self.dest, self.name, self.source = src, dest, name, source
        #: The store that listed the original: the md5 it hashed then is this one's.
        self.store = store if isinstance(store, LocalDirStore) else None
        self.reserve, self.lock_dir, self.force = reserve, lock_dir, force
        self.extract_progress, self.protect = extract_progress, protect
        self.current = current   # (see FileStager)
        #: Whether the md5 was hashed when a later write would move the identity
        #: (:func:`drivestage.localdir.settled`): only then does the stamp record it.
        self.settled = False
        #: The md5 of what was extracted when it was hashed while extracted (the listing
        #: had none: :func:`defer`); else the listing's.
        self.md5: Optional[str] = None
        #: Of the members extracted, those in place already (not written): a repair's.
        self.kept = 0

    def stage(self, entry: RemoteEntry) -> tuple[str, list[str], str]:
        found = stamps.of(self.dest, self.name)
        own = next((s for s in found if s["id"] == entry.id), None)
        previous = ([own] if own is not None else []) + \
            [s for s in found if s is not own and s.get("src") == self.src]
        st = os.stat(self.source)
        if own is not None and not self.force and own.get("original") == _identity(st) \
                and own.get("md5") and own.get("md5") == entry.md5 \
                and stamps.missing_member(self.dest, own, self.current) is None:
            settle_journals(self.dest, self.source, own, listed=True)   # (see FileStager)
            return "cached", [m.path for m in stamps.records(own)], ""
        if (self.force or not any(s.get("md5") for s in previous)) and (
                self.store is None or self.store.known_md5(self.source, st) is None):
            # Nothing staged of it to keep (a first pull, one cut before its md5 was known,
            # --force): hashed as it is extracted, one read (it was hashed, then read again).
            return self._hashed(entry, st, found, previous)
        md5 = self._md5(st)  # what is extracted is what was hashed (see the doc)
        self.md5 = md5   # the summary's (it said "no md5 on Drive" when the listing had none)
        if entry.md5 and md5 != entry.md5:
            raise self._changed()
        basis = next((s for s in previous if s.get("md5") == md5), None)
        if basis is not None and not self.force and \
                stamps.missing_member(self.dest, basis, self.current) is None:
            action = "verified"  # the same bytes anew (a new copy of the input): adopted
        elif basis is not None and not self.force:
            action = "extract"
        else:
            action = "update" if previous else "extract"
        extracted = stamps.records(basis) if basis is not None and not self.force else []
        stamp = self._stamp(entry, md5, st, previous, extracted)
        if action == "verified":
            stamp["extracted"] = True
            stamps.write(self.dest, stamp)
            self.kept = len(extracted)   # none written (was said "extracted": pull29)
            return action, [m.path for m in extracted], "md5"
        self._warn_shared_name(found, previous)
        return action, self._extract(stamp, st, action, extracted, None), "md5"

    def _hashed(self, entry: RemoteEntry, st: os.stat_result, found: list[Stamp],
                previous: list[Stamp]) -> tuple[str, list[str], str]:
        """Extract the original in the read that hashes it (:class:`HashedPass`); nothing is
        merged before its md5 is that of the listing (when it had one) and its identity is
        ``st``'s before and after the read. The stamp is written first without an md5 (a
        kill meanwhile: the rerun hashes the original, then extracts it)."""
        action = "update" if previous else "extract"
        stamp = self._stamp(entry, None, st, previous, [])
        self._warn_shared_name(found, previous)

        def verify(md5: str, began: int) -> None:
            if not self._same(st):
                raise self._changed()
            if entry.md5 and md5 != entry.md5:  # a mount serving other bytes than it hashed
                raise self._changed(f"md5 {entry.md5} when it was listed, {md5} as it was "
                                    "extracted")
            self.settled, self.md5 = settled(st, began), md5
            stamp["md5"] = md5
            if self.settled:  # else the next pull hashes it again (one written just before)
                stamp["original"] = _identity(st)
            if self.store is not None:  # for a listing later in this process
                self.store.learn_md5(self.source, st, md5, began)

        unpacker = HashedPass(self.source, st, self.dest, lock_dir=self.lock_dir,
                              reserve=self.reserve, protected=self._protected(),
                              label=self.source, verify=verify,
                              progress=None if self.extract_progress is no_progress
                              else self.extract_progress)
        members = self._extract(stamp, st, action, [], unpacker)
        if not any(s.get("md5") and s.get("md5") != self.md5 for s in previous):
            # The same version written again (--force, a first pull cut before its md5 was
            # known): the summary said "updated", as for another version of the original.
            action = "extract"
        return action, members, "md5"

    def _protected(self) -> set[str]:
        return {os.path.join(self.dest, self.name),
                *(self.protect or stamps.staged_files(self.dest))}

    def _extract(self, stamp: Stamp, st: os.stat_result, action: str,
                 extracted: list[MemberRecord], unpacker: Optional[HashedPass]) -> list[str]:
        """The extraction step, refused (nothing of it staged) when the original's identity
        moved while it was read."""
        step = Extraction(src=self.src, dest=self.dest, reserve=self.reserve,
                          lock_dir=self.lock_dir, extract_progress=self.extract_progress,
                          stamp=stamp, protected=self._protected(), current=self.current,
                          extracted=extracted if action == "extract" else (), identity=st,
                          force=self.force)
        try:
            members = step(self.source, action, unpacker)
        except Exception:
            # A write into the original while it was read fails the extraction first (a
            # member's CRC): the line blamed the archive ("make it again") and the stamp
            # kept what was written. The original's identity says which it was.
            if self._same(st):
                raise
            raise self._untrusted(stamp) from None
        if not self._same(st):
            raise self._untrusted(stamp)
        self.kept = step.kept
        return members

    def _md5(self, st: os.stat_result) -> str:
        """The md5 of the original as ``st`` found it: the one its store hashed when it
        listed it, while its identity was this one (no second read of 20 GB); else hashed
        now, and the identity must be the same after."""
        known = self.store.known_md5(self.source, st) if self.store is not None else None
        if known is not None:
            self.settled = self.store is not None and \
                self.store.settled_md5(self.source, st) == known
            return known
        began = time.time_ns()
        try:
            md5 = mount_read(lambda: self._hash(st), st.st_dev)
        except DestChangedError:
            raise self._changed() from None
        self.settled = settled(st, began)
        return md5

    def _hash(self, st: os.stat_result) -> str:
        # Through one descriptor, the file st describes before and after: by its name, a
        # folder swapped while it was hashed and put back gave another file's md5 to the
        # members extracted next (and, once that file was put there, "verified"). On a
        # mount, aside (mount_read): each of its calls left by a Ctrl-C where it hangs.
        with leavable():
            fd = open_archive(self.source, st)
        try:
            md5 = file_md5(fd)
            with leavable():
                check_unchanged(fd, self.source, st)
        finally:
            os.close(fd)
        return md5

    def _stamp(self, entry: RemoteEntry, md5: Optional[str], st: os.stat_result,
               previous: list[Stamp], extracted: list[MemberRecord]) -> Stamp:
        """The stamp before the extraction (as :meth:`FileStager._downloaded` writes it for
        a download): the earlier versions' members as ``stale``, this archive's own records
        as its members; the earlier stamps go."""
        stale = list({tuple(m.to_json()): m for s in previous for key in ("members", "stale")
                      for m in stamps.records(s, key)}.values())
        stamp = stamps.new(src=self.src, file_id=entry.id, name=self.name,
                           remote_name=entry.name, parent_id=entry.parent_id, md5=md5,
                           size=st.st_size, mtime_ns=st.st_mtime_ns, stale=stale,
                           previous=previous)
        if self.settled:  # else the next pull hashes it again (one written just before)
            stamp["original"] = _identity(st)
        stamp["path"] = self.source
        if extracted:
            stamp["members"] = [m.to_json() for m in extracted]
        stamps.write(self.dest, stamp)
        for old in previous:
            if old.get("_path") != stamp["_path"]:
                stamps.drop(old)
        return stamp

    def _warn_shared_name(self, found: list[Stamp], previous: list[Stamp]) -> None:
        """A copy pull said ``… is the staged copy of drive:X; … replaces it (members
        extracted from it stay)`` when another file of this name had been staged here. The
        original replaces no copy, so nothing was said, and DEST silently held the members
        of both (a Drive v1 and a local v2 of voc.zip): say it once, before extracting."""
        others = sorted({str(s.get("src")) for s in found
                         if s not in previous and stamps.records(s)})
        if others:
            log.warning("%s holds the members of %s, extracted from another file named %s; "
                        "%s is extracted beside them and they stay. Pull files of one name "
                        "into separate folders to keep them apart", self.dest,
                        " and ".join(others), self.name, self.src)

    def _same(self, st: os.stat_result) -> bool:
        """Whether the original's identity is still ``st``'s. A ctime that alone moved
        during the extraction (a chmod; or bytes written and put back, mtime too) is no
        exception: a hash after it could not say what the extraction read meanwhile."""
        try:
            return _identity(os.stat(self.source)) == _identity(st)
        except OSError:
            return False  # removed while it was read

    def _untrusted(self, stamp: Stamp) -> DestChangedError:
        """The original changed while it was extracted: the next run hashes and extracts it
        again. What was written came from bytes that are not the hashed md5's: never this
        md5's ``members`` (a rerun after the original was put back kept them in place and
        declared the other bytes staged), only ``stale`` - drivestage's own files, which
        the next extraction may replace."""
        stamp.update(extracted=False, members=[], stale=list(
            {tuple(m.to_json()): m.to_json() for key in ("stale", "members")
             for m in stamps.records(stamp, key)}.values()))
        stamps.write(self.dest, stamp)
        return self._changed()

    def _changed(self, how: str = "") -> DestChangedError:
        return DestChangedError(
            f"{self.source} changed while it was read (another program writes it?"
            f"{'; ' + how if how else ''}); nothing of it is staged in {self.dest} as "
            "extracted: run the same command again once it is complete")
