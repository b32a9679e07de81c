"""A push's same-named copies: which old copies of a replaced checkpoint go, and when.

A checkpoint replaced by a push has two copies under its name for a moment: the new one, just
verified, and the old ones (:mod:`drivestage.upload_tree`). An old copy goes only once no
sidecar of the checkpoint still vouches for it instead of the new one
(:func:`drivestage.sidecar.held`): a sidecar written after its checkpoint may still name the
old md5, and then the old copy is the only one a resume may use. The same rule repairs the
same-named copies another machine left beside an unchanged file: the newest is kept, the
others go unless a sidecar vouches for them.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Optional, Sequence

from drivestage import sidecar, sidecar_copy
from drivestage.command import stopping
from drivestage.errors import DriveStageError, MovedApartError, NotFoundError, RemoteError
from drivestage.local_tree import LocalFile
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)
#: How far past the later clock a copy's date may be and still say when it came (the two
#: clocks a little apart, a date cut to the second): :func:`_later_work`.
AHEAD_S = 300.0

#: (folder relative to DEST, ``/``-separated; name)
Key = tuple[str, str]
#: Folder -> name -> the entries of that name (Drive allows duplicates).
Listings = dict[str, dict[str, list[RemoteEntry]]]


def newest(entries: Sequence[RemoteEntry]) -> RemoteEntry:
    """The newest of same-named entries (ties: the higher id, the same on every machine)."""
    return max(entries, key=lambda e: (e.modified, e.id))


@dataclass
class Swap:
    """A checkpoint uploaded as a new file beside its old copies."""

    rel: str
    key: Key
    kept: RemoteEntry               # the new copy, verified
    olds: list[RemoteEntry]         # the copies it replaces
    duplicates: bool                # the name had several files before (another machine's)


class OldCopies:
    """What one push knows about same-named copies, and their removal."""

    def __init__(self, store: RemoteStore, listing: Listings, *, use_trash: bool,
                 mutex: threading.Lock, replaced: list[str],
                 check: Callable[[], None] = lambda: None):
        self.store, self.listing, self.use_trash, self.mutex = store, listing, use_trash, mutex
        self.check = check   # before each removal: the push's guard (drivestage.push_fence)
        self.replaced = replaced        # names whose duplicates were removed (PushResult's)
        self.sent: dict[Key, RemoteEntry] = {}      # the verified copy each upload left
        self.local: dict[Key, str] = {}             # the local path of each file pushed
        self.real: dict[str, str] = {}   # each local path's LocalFile.real (read only there)
        self.sides_of: dict[Key, set[Key]] = {}     # a checkpoint's local sidecars
        self.repairs: list[tuple[LocalFile, RemoteEntry, list[RemoteEntry]]] = []
        self._read: dict[str, Optional[bytes]] = {}   # remote sidecars read, by id
        self.skipped: set[Key] = set()   # local sidecars left for the next push (changed)
        self.apart: list[str] = []       # new copies found apart from their sidecars
        # Per folder: its local names, and the sidecar pairs of its local + remote names.
        # Made once (they do not change once the files are learnt): once per replaced
        # checkpoint, a period that replaced a folder's 5,000 checkpoints was quadratic.
        self._paired: dict[str, tuple[set[str], dict[str, str]]] = {}

    def learn(self, files: Iterable[LocalFile]) -> dict[Key, set[Key]]:
        """Note the local files and their sidecars; returns sidecar -> its checkpoints."""
        files = list(files)
        self.local = {(lf.folder_rel, lf.name): lf.path for lf in files}
        self.real = {lf.path: lf.real for lf in files}
        self._paired = {}
        owners = sidecar_owners(files)
        for side, mine in owners.items():
            for c in mine:
                self.sides_of.setdefault(c, set()).add(side)
        return owners

    @contextmanager
    def sidecar_source(self, key: Key, path: str, mine: set[Key],
                       again: Callable[[Key], RemoteEntry]) -> Iterator[Optional[str]]:
        """What to upload for the local sidecar ``key`` (at ``path``) of the checkpoints
        ``mine``: None when it names bytes neither sent nor listed
        (:func:`drivestage.sidecar_copy.checked`); then it is left for the next push, and the
        old copies go by the sidecar on the store (:meth:`held`). Where the store replaced
        them in place (a local DEST renames over the old copy), no old copy is left for the
        sidecar on the store to vouch for: each is sent ``again`` as it is now, once, and
        the sidecar checked against that (attacksync34)."""
        listed = [e for f, n in mine for e in self.listing[f].get(n, []) if not e.is_dir]
        for tries in (1, 2):
            sent = [self.sent[k] for k in mine if k in self.sent]
            # (a with, not an ExitStack: a Ctrl-C between a copy's making and its exit's
            # registration there left the private copy behind)
            # (never through a link: the walk's path is where a link it let through led)
            with sidecar_copy.checked(path, sent, sent + listed) as source:
                if source is not None or tries == 2 or not self._in_place(mine, listed):
                    if source is None:
                        with self.mutex:
                            self.skipped.add(key)
                    yield source
                    return
            log.warning("%s: sending %s again as it is now (the store replaced its copy in "
                        "place: none is left that the sidecar there vouches for)", path,
                        ", ".join(sorted(n for f, n in mine if (f, n) in self.sent)))
            for k in sorted(k for k in mine if k in self.sent):
                again(k)

    def _in_place(self, mine: set[Key], listed: list[RemoteEntry]) -> bool:
        """Whether every checkpoint of ``mine`` this push sent took the place of its listed
        copy (same id): nothing of before is left on the store."""
        ids = {e.id for e in listed}
        sent = [self.sent[k] for k in mine if k in self.sent]
        return bool(sent) and all(e.id in ids for e in sent)

    def held(self, key: Key, kept: RemoteEntry, olds: list[RemoteEntry]) -> list[RemoteEntry]:
        """The ``olds`` that may go: none a sidecar of the checkpoint vouches for instead of
        ``kept`` (``sidecar.held``), whether the sidecar is here or only on the store, and
        none another writer sent after ``kept``'s bytes were there (:func:`_later_work`)."""
        olds = _later_work(key[1], kept, olds, self.store.clock()[1])
        for folder, side in self.sides_of.get(key, set()):
            copies = [e for e in self.listing[folder].get(side, []) if sidecar.has_bytes(e)]
            remote = self.sent.get((folder, side)) or (newest(copies) if copies else None)
            if (folder, side) in self.skipped and remote is not None:  # the store's one rules
                try:
                    stay = {e.id for e in sidecar.held_by(self._fetched(remote), kept, olds,
                                                           remote.name)}
                except DriveStageError:
                    return []  # unknown: what it vouches for stays, as below
            else:
                path = self.local[(folder, side)]
                stay = {e.id for e in sidecar.held(path, remote, kept, olds,
                                                   self.real.get(path, ""))}
            olds = [e for e in olds if e.id not in stay]
            if remote is not None and olds:
                olds = self._as_on_store_now(remote, kept, olds)
        remote_only = self._remote_only_sidecar(key)
        if remote_only is not None and olds:
            try:
                data = self._fetched(remote_only)
            except DriveStageError as exc:  # unknown: what it vouches for stays
                log.warning("%s: could not read its sidecar %s on the store (%s); its old "
                            "copies stay beside the new one until a push reads the sidecar "
                            "or sends a new one", key[1], remote_only.name, exc)
                return []
            stay = {e.id for e in sidecar.held_by(data, kept, olds, remote_only.name)}
            olds = [e for e in olds if e.id not in stay]
            if olds:
                olds = self._as_on_store_now(remote_only, kept, olds)
        return olds

    def _as_on_store_now(self, side: RemoteEntry, kept: RemoteEntry,
                         olds: list[RemoteEntry]) -> list[RemoteEntry]:
        """The ``olds`` that may go by the sidecar ``side`` as it is on the store right now:
        another machine pushing the same run may have replaced it since this push read or
        sent it (two pushes of ``last.pt`` at once), and the copy it vouches for then must
        stay. Unknown (unreadable): all of them stay."""
        try:
            now = self.store.stat(side)
            if not self._beside(now, kept):
                return []
            if now.md5 is not None and now.md5 == side.md5:
                return olds
            data = sidecar.fetch(self.store, now)
        except DriveStageError as exc:
            log.warning("%s: could not read its sidecar %s on the store again (%s); the old "
                        "copies stay beside the new one until a push reads the sidecar",
                        kept.name, side.name, exc)
            return []
        stay = {e.id for e in sidecar.held_by(data, kept, olds, side.name)}
        return [e for e in olds if e.id not in stay]

    def _beside(self, side: RemoteEntry, kept: RemoteEntry) -> bool:
        """Whether the sidecar ``side`` (as files.get shows it now) is in the folder the new
        copy ``kept`` is in now (one more files.get). A dedupe in another process may have
        moved the old copy and the sidecar into the folder it keeps, leaving the new copy
        in the one this push wrote into (a name there already: a conflict it leaves): the
        sidecar updated there then names bytes not beside it, and the old copy deleted left
        the path with no checkpoint. Not beside: the old copies stay, and :meth:`settle`
        says so (the push runs once more into the path)."""
        if side.parent_id is None:
            return True   # a store that does not say
        where = self.store.stat(kept).parent_id
        if where is None or where == side.parent_id:
            return True
        with self.mutex:
            self.apart.append(kept.name)
        return False

    def _remote_only_sidecar(self, key: Key) -> Optional[RemoteEntry]:
        """The sidecar readers will take for ``key`` after this push (the current form wins,
        :func:`drivestage.sidecar.pairs`), when it is on the store and not here (deleted, or
        the trainer stopped between a checkpoint and its sidecar): its newest copy."""
        folder, name = key
        if folder not in self._paired:
            remote = {n for n, es in self.listing[folder].items()
                      if any(sidecar.has_bytes(e) for e in es)}
            here = {n for f, n in self.local if f == folder}
            self._paired[folder] = (here, sidecar.pairs(remote | here))
        here, paired = self._paired[folder]
        side = paired.get(name)
        if side is None or side in here:
            return None
        copies = [e for e in self.listing[folder][side] if sidecar.has_bytes(e)]
        return newest(copies) if copies else None

    def _fetched(self, entry: RemoteEntry) -> Optional[bytes]:
        """A remote sidecar's bytes, read once per push (:func:`drivestage.sidecar.fetch`)."""
        if entry.id not in self._read:
            self._read[entry.id] = sidecar.fetch(self.store, entry)
        return self._read[entry.id]

    def settle(self, swapped: Iterable[Swap], failed: set[Key]) -> None:
        """After the uploads: remove the old copies of replaced checkpoints, unless a sidecar
        that failed to go (so still vouching for them) belongs to the checkpoint; one left
        for the next push (``skipped``) keeps the copy the sidecar on the store vouches for."""
        for s in swapped:
            # The copy sent last: one sent again (the first gone from the store) was looked
            # for as the first, not found, and the old copies stayed (attacksync35).
            kept = self.sent.get(s.key, s.kept)
            # (a directory store's old copy, renamed aside by the upload: local_held)
            olds = s.olds + [e for e in self.store.aside(kept) if e.id != kept.id]
            if not self.sides_of.get(s.key, set()) & (failed - self.skipped):
                going = self.held(s.key, kept, olds)
                self.remove(s.rel, kept, going, s.duplicates, stay=_left(olds, going, kept))
        if self.apart:
            raise MovedApartError(
                f"{', '.join(sorted(set(self.apart)))} and its sidecar were moved apart on "
                "Drive while this push replaced it (a dedupe, or a move by hand); its old "
                "copy stays")

    def remove(self, rel: str, kept: RemoteEntry, olds: list[RemoteEntry],
               duplicates: bool, stay: Sequence[RemoteEntry] = ()) -> None:
        """Delete the same-named copies ``kept`` replaces (never ``kept`` itself); ``stay``:
        those :meth:`held` keeps (named in the duplicates' line)."""
        gone = [e for e in olds if e.id != kept.id]
        if gone:
            self._still_there(rel, kept, olds)
        # (said only: the copy a directory store's in-place update removed itself, listed
        # under the name from another path; on Drive none, and nothing more is deleted)
        said = gone + [e for e in self.store.dropped(kept) if e.id not in {g.id for g in gone}]
        if duplicates:
            _duplicates(rel, said, stay, "the one just uploaded (%s)" % kept.id)
            with self.mutex:
                self.replaced.append(rel)
        for at, e in enumerate(gone):
            asked = _Asked(self.check)
            try:
                # (One also in another folder loses only this folder: the new copy takes its
                # name here, and its bytes stay there; parents39. The guard before each
                # request that removes, a retry's too: a guard refusing midway removes no
                # more.)
                self.store.take_out(e, trash=self.use_trash, check=asked.check)
            except NotFoundError:
                pass  # already gone (another push removed it), or left (the store said why)
            except BaseException:
                if duplicates:   # (the line above said they went)
                    _stay(rel, gone[at:], asked.sent)
                raise

    def _still_there(self, rel: str, kept: RemoteEntry, olds: list[RemoteEntry]) -> None:
        """``kept`` as the store has it now, before the copies it replaces go: an upload's
        answer alone is not believed (a server that answered 200 with a made-up file for
        bytes it never stored had the only copy of a checkpoint deleted, the push exit 0).
        Gone, where a copy of its name this push did not know is there: another writer's
        push took the name meanwhile and removed it as an old copy (:func:`_taken_by`)."""
        try:
            now = self.store.stat(kept)
        except NotFoundError as exc:   # (TrashedError too)
            other = self._taken_by(kept, olds)
            if other is not None:
                raise RemoteError(
                    f"{rel}: the copy this push uploaded ({kept.id}) was replaced on Drive "
                    f"meanwhile by another writer's ({other.id}: another push of this name "
                    "at the same time); this push removed nothing, and the local file is as "
                    "it was: push again if this machine's copy is the one to keep") from exc
            found = f"not there ({exc})"
        else:
            if not kept.md5 or now.md5 == kept.md5:
                return
            found = f"there with md5 {now.md5}, not {kept.md5}"
        raise RemoteError(
            f"{rel}: the copy the upload's answer named ({kept.id}) is {found}; its old "
            "copies were kept. Push again; if it persists, something between here and Drive "
            "answers in its place: check --api-root / DRIVESTAGE_API_ROOT and any proxy")

    def _taken_by(self, kept: RemoteEntry, olds: list[RemoteEntry]) -> Optional[RemoteEntry]:
        """The newest copy of ``kept``'s name in its folder now that is neither ``kept`` nor
        one of the ``olds`` this push knew (one listing, only where ``kept`` is gone): two
        pushes of one changed checkpoint at once, the later one's removal of the copies it
        replaced took this push's new one. The proxy hint (a server making answers up) was
        wrong there: a server that made the upload's answer up leaves no such copy. None
        where there is none, or the listing fails."""
        if not kept.parent_id:
            return None
        known = {e.id for e in olds} | {kept.id}
        try:
            listed = self.store.list(RemoteEntry(kept.parent_id, "", True))
        except DriveStageError:
            return None
        others = [e for e in listed if e.name == kept.name and not e.is_dir
                  and e.id not in known]
        return newest(others) if others else None

    def repair(self) -> None:
        """Same-named copies of unchanged files (another machine's): keep the newest."""
        for lf, kept, listed in self.repairs:
            if not (olds := self.held((lf.folder_rel, lf.name), kept, listed)):
                continue  # a stale sidecar's copies stay
            _duplicates(lf.rel, [kept] + olds, _left(listed, olds, kept),
                        "%s (the newest, equal to the local file)" % kept.id, shown=1)
            for at, e in enumerate(olds):
                asked = _Asked(self.check)
                try:
                    self.store.take_out(e, trash=self.use_trash, check=asked.check)
                except NotFoundError:
                    pass
                except BaseException:
                    _stay(lf.rel, olds[at:], asked.sent)
                    raise
            self.replaced.append(lf.rel)


def _later_work(name: str, kept: RemoteEntry, olds: list[RemoteEntry],
                now: float) -> list[RemoteEntry]:
    """The ``olds`` but those of other bytes than ``kept`` that came after the first old copy
    of ``kept``'s bytes: a push whose file equals an older copy on the store (the one its
    sidecar vouches for) while another machine sends newer bytes under the name took that
    machine's copy, its sidecar still on its way, for an old copy (retain47); the sidecar
    then named bytes no longer there. Another writer's later work is never ours to remove:
    it stays, and goes by the usual rules once it is older than a copy pushed after it.
    Not one dated ahead of ``now`` (the later of this machine's clock and the store's): that
    date says nothing of when it came (a year ahead, each push sent its file again and kept
    the copy beside, for good: attackint47)."""
    ours = [e for e in olds if e.md5 and e.md5 == kept.md5]
    if not ours:
        return olds
    # (Each copy at the earliest of its dates: a metadata write, a parent taken out by the
    # last push, moves modifiedDate to now, and an old copy so touched was another writer's
    # later work, kept for good: test_edges40_parents, pushgap47.)
    first = min(ours, key=lambda e: (_came(e), e.id))
    later = [e for e in olds
             if e.md5 != kept.md5 and (_came(e), e.id) > (_came(first), first.id)
             and e.modified <= now + AHEAD_S]
    if not later:
        return olds
    log.warning("%s: kept %s beside the copy just pushed: another writer sent %s after these "
                "bytes were on the store (it may be sending its sidecar still)", name,
                ", ".join(e.id for e in later), "them" if len(later) > 1 else "it")
    return [e for e in olds if e.id not in {k.id for k in later}]


def _came(entry: RemoteEntry) -> float:
    """When the store held ``entry`` first, as early as its dates allow (the earlier of its
    created and modified times that are known)."""
    known = [t for t in (entry.created, entry.modified) if t > 0]
    return min(known) if known else 0.0


class _Asked:
    """The guard ``check`` as one removal asks it (a push's; None: no guard): ``sent``
    where it stopped the removal at a retry's call, a try of it sent before (its answer
    lost, or a failure retried): Drive may have done it."""

    def __init__(self, check: Optional[Callable[[], None]]) -> None:
        self._guard, self._calls, self.sent = check, 0, False

    @property
    def check(self) -> Optional[Callable[[], None]]:
        return None if self._guard is None else self._ask

    def _ask(self) -> None:
        self._calls += 1
        try:
            if self._guard is not None:
                self._guard()
        except BaseException:
            self.sent = self._calls > 1
            raise


def _left(olds: Sequence[RemoteEntry], going: Sequence[RemoteEntry],
          kept: RemoteEntry) -> list[RemoteEntry]:
    """The ``olds`` that are neither ``kept`` nor ``going``: those :meth:`OldCopies.held` keeps."""
    ids = {e.id for e in going} | {kept.id}
    return [e for e in olds if e.id not in ids]


def _duplicates(rel: str, said: Sequence[RemoteEntry], stay: Sequence[RemoteEntry], kept: str,
                shown: int = 0) -> None:
    """The line of a name several files had: ``said`` (past the first ``shown``, the kept
    one) are removed. It counted only those, and said "removed the others" where some
    stayed, vouched for by a sidecar or sent by another writer since (retain47): now the
    count is every copy, and those that stay are named."""
    going = len(said) - shown
    if not stay:
        log.warning("%s: %d files had this name (ids %s); kept %s and removed the others", rel,
                    going + 1, ", ".join(e.id for e in said), kept)
        return
    removed = f"removed {going} ({', '.join(e.id for e in said[shown:])})" if going else \
        "removed none"
    them = "it" if len(stay) == 1 else "them"
    log.warning("%s: %d files had this name (ids %s); kept %s, %s, and left %d (%s): a "
                "sidecar still vouches for %s, or another writer sent %s since; a later push "
                "removes %s once that is no longer so", rel, going + len(stay) + 1,
                ", ".join(e.id for e in list(said) + list(stay)), kept, removed, len(stay),
                ", ".join(e.id for e in stay), them, them, them)


def _stay(rel: str, left: list[RemoteEntry], sent: bool = False) -> None:
    """Said after "… and removed the others" where the push stopped before ``left`` went
    (its guard refused, a failure): the user reads what is still there (guards40). ``sent``:
    the first of ``left`` was sent before the stop, its answer not had: it may be gone (it
    was said "not removed" from the trash: attackguard40)."""
    if sent:
        log.warning("%s: the removal of the copy %s was sent, and the %s stopped before its "
                    "answer came: it may be gone", rel, left[0].id, stopping())
        left = left[1:]
        if not left:
            return
    log.warning("%s: %d of those copies %s not removed (ids %s): the %s stopped first",
                rel, len(left), "were" if len(left) > 1 else "was",
                ", ".join(e.id for e in left), stopping())


def sidecar_owners(files: Iterable[LocalFile]) -> dict[Key, set[Key]]:
    """(folder, sidecar name) -> {(folder, checkpoint name)} for the local files."""
    per: dict[str, set[str]] = {}
    for lf in files:
        per.setdefault(lf.folder_rel, set()).add(lf.name)
    out = {}
    for folder, names in per.items():
        for side, ckpts in sidecar.owners(names).items():
            out[(folder, side)] = {(folder, c) for c in ckpts}
    return out
