"""The extraction step of a pull (:class:`Extraction`): it receives the decision of
:func:`drivestage.stage_decide.decide` and the staged archive, as pooch's processors do."""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import stat
from typing import Callable, Collection, Iterable, Mapping, Optional, Protocol, Sequence

from drivestage import partials, stamps
from drivestage.errors import ArchiveError, DiskSpaceError, DriveStageError, NotAnArchiveError
from drivestage.extract import ExtractResult, MemberRecord, Recorded
from drivestage.extract.job import Turn
from drivestage.extract.validation import STATE_DIR
from drivestage.extract import journals
from drivestage.heap import bulk
from drivestage.localfs import fuse_devices, identity
from drivestage.mtimes import same_mtime
from drivestage.sizes import restore_needs_room
from drivestage.stamps import Stamp

log = logging.getLogger(__name__)

#: ``progress(label, total, initial)`` -> a per-byte callback, or None for no progress.
ProgressFactory = Callable[[str, int, int], Optional[Callable[[int], None]]]


class Unpacker(Protocol):
    """What extracts a staged archive for the step, when not :func:`extract` of the file:
    an extraction that followed its download (:class:`~drivestage.unpack.Unpacking`), or a
    local original's that hashes it as it reads it (:class:`drivestage.hashed_pass.
    HashedPass`). Nothing is merged into DEST before the archive's checksum is verified."""

    def extract(self, target: str, replaceable: Iterable[MemberRecord] = (),
                recorded: Optional[Recorded] = None) -> ExtractResult:
        ...


def no_progress(label: str, total: int, initial: int) -> None:
    """The progress factory that shows nothing."""
    return None


class Extraction:
    """The extraction step: receives the decision and the staged archive (as pooch's
    processors do), extracts it into DEST, removes what earlier versions extracted and this
    one lacks, and records the members in the stamp.

    The update rule, the same for every path that re-stages (a new version on Drive, a new
    file at the same path, ``--force``, a rerun after a kill, a repair): the new version's
    members are merged in first; then each member an earlier version's extraction wrote and
    the new one lacks is removed, only while it is still exactly what that extraction wrote
    (:func:`drivestage.extract.remove_members`: kind, size, mtime, inode); members listed by
    a 0.1.0 stamp (no records) are never removed. A member that changed kind (v1's folder
    ``ds/a``, v2's file ``ds/a``) replaces the folder during the merge only when it holds
    exactly what those records say (:mod:`drivestage.extract.owned`); otherwise the archive
    is refused as before. The stamp says "extracted" only once every member was checked in
    place."""

    def __init__(self, *, src: str, dest: str, reserve: int, lock_dir: str,
                 extract_progress: ProgressFactory, stamp: Stamp, protected: set[str],
                 extracted: Sequence[MemberRecord] = (),
                 identity: Optional[os.stat_result] = None,
                 current: Optional[stamps.Listed] = None,
                 turn: Optional[Turn] = None, force: bool = False):
        self.src, self.dest, self.reserve, self.lock_dir = src, dest, reserve, lock_dir
        self.extract_progress = extract_progress
        self.stamp, self.protected = stamp, protected
        self.current = current   # the files a folder pull listed (stamps.siblings_wrote)
        #: The records of this very archive's last complete extraction into DEST (a rerun
        #: that finds a member gone), never an earlier version's: what is still in place of
        #: them is not written again.
        self.extracted = list(extracted)
        #: The file whose md5 was verified, when the archive is a local original: only its
        #: bytes are extracted (see :func:`drivestage.extract.extract`).
        self.identity = identity
        #: What the merge waits on: a folder pull's archives that share a path merge one
        #: after the other (:mod:`drivestage.stage_order`).
        self.turn = turn
        #: Of the members :meth:`__call__` returned, those in place already (not written).
        self.kept = 0
        #: What DEST holds at a member's path that no stamp lists is the user's: kept
        #: (adopted when it is the member), the pull refused; replaced with --force.
        self.recorded = recorder(dest, force)

    def __call__(self, target: str, action: str, unpacking: Optional[Unpacker]) -> list[str]:
        try:  # (the members' records live to the pull's end: heap.bulk)
            with bulk():
                return self._step(target, action, unpacking)
        finally:
            journals.release(self.dest, target)   # (one left now is judged as a kill's)

    def _step(self, target: str, action: str, unpacking: Optional[Unpacker]) -> list[str]:
        from drivestage.extract import archive_kind, extract, remove_members
        from drivestage.extract.members import ancestors

        src, dest, reserve, lock_dir = self.src, self.dest, self.reserve, self.lock_dir
        if archive_kind(target) is None:
            raise NotAnArchiveError(src, target)
        log.info("extract %s into %s (%s)", target, dest, action)
        stale = stamps.records(self.stamp, "stale")
        others = stamps.members_of_others(dest, self.stamp) if stale else set()
        # The folders earlier extractions of it made (a killed merge's too, from its journal).
        made = stamps.records(self.stamp, "made") + journals.made(
            dest, target, partials.listing(os.path.join(os.path.abspath(dest), STATE_DIR)))
        ours = [m for m in stale if m.path not in others]  # as stamps.replaceable() says
        # A rerun that finds a member gone (deleted by hand) writes only what is not in place
        # (absent, another kind, size or mtime: as a rerun judges "staged"); the rest keeps its
        # inode. It extracted the whole archive again beside the copy in place: 40 files
        # written for one, and the archive's whole size asked of a nearly full disk.
        missing = stamps.not_in_place(dest, stale, shown=self.stamp.get("_shown_ns")) \
            if action == "extract" and stale else None
        kept = in_place(dest, self.extracted, self.stamp) if self.extracted else {}
        changed = _changed(dest, self.extracted, self.stamp, self.current) \
            if self.extracted else []
        wrote = _written_by_others(dest, self.stamp, changed)   # (before they are written)
        try:
            if unpacking is not None:  # it followed the download (or extracts the file now)
                result = unpacking.extract(target, replaceable=ours, recorded=self.recorded)
            else:
                # The bar counts what is written (what is in place is not), made by
                # extract once its member list is read: read once, not for a total first.
                bar = ((lambda total: self.extract_progress("extract", total, 0))
                       if self.extract_progress is not no_progress else None)
                result = extract(target, dest, progress_of=bar, lock_dir=lock_dir,
                                 free_bytes=lambda p: shutil.disk_usage(p).free - reserve,
                                 protected=self.protected, replaceable=ours, kept=kept,
                                 identity=self.identity, turn=self.turn,
                                 recorded=self.recorded)
        except DiskSpaceError as exc:
            if missing is None or exc.needed is None:
                raise
            raise restore_needs_room(exc, target, dest, missing, whole=not kept) from None
        if stale:
            keep = set(result.paths) | others
            gone = remove_members(dest, stale, keep=keep, lock_dir=lock_dir)
            if gone:
                log.info("removed %s of the previous version of %s", _count(gone, "member"),
                         src)
            _say_kept(src, dest, [m for m in stale if m.path not in keep])
        made = _made_folders(dest, made, result, others if stale else None, self.stamp,
                             lock_dir, src)
        if made:
            self.stamp["made"] = [m.to_json() for m in made]
        else:
            self.stamp.pop("made", None)
        unrecorded = stamps.unrecorded(self.stamp)
        if unrecorded:
            written = ancestors(result.paths).union(result.paths)
            left = [p for p in unrecorded if p not in written]
        else:
            left = []
        self.stamp.pop("unrecorded", None)
        if left:
            log.warning("%s of the previous version of %s %s not removed: it was staged by "
                        "drivestage 0.1.0, whose stamp does not record what its extraction "
                        "wrote; remove %s from %s by hand if not wanted (e.g. %s)",
                        _count(len(left), "member"), src, "was" if len(left) == 1 else "were",
                        "it" if len(left) == 1 else "them", dest, left[0])
        self.stamp.update(members=[m.to_json() for m in result.members], stale=[])
        if result.left:   # (the pull fails unless an archive after it takes them)
            self.stamp["left"] = result.left
        else:
            self.stamp.pop("left", None)
        missing = stamps.not_in_place(dest, result.members)
        if missing is not None:   # (the other archive of its folder that merged after it?)
            missing = stamps.not_in_place(dest, result.members,
                                          stamps.siblings_wrote(dest, self.stamp,
                                                                 self.current))
        if missing is not None:
            stamps.write(dest, self.stamp)  # not "extracted": the next run extracts again
            settle_journals(dest, target, self.stamp, others=True)
            raise ArchiveError(
                f"{os.path.join(dest, missing)} changed while {src} was extracted (another "
                "program or pull wrote there); run the pull again")
        self.stamp["extracted"] = True
        stamps.write(dest, self.stamp)
        settle_journals(dest, target, self.stamp, others=True)  # (the stamp records them)
        self.kept = result.kept
        _say_put_back(src, changed, wrote)
        return result.paths


def _made_folders(dest: str, made: Sequence[MemberRecord], result: ExtractResult,
                  others: Optional[set[str]], stamp: Stamp, lock_dir: str,
                  src: str) -> list[MemberRecord]:
    """Remove the folders earlier extractions of the archive made (``made``) that its
    members no longer need, once empty (:func:`~drivestage.extract.remove_folders`: that
    very folder, never one holding anything else, nor a path another stamp in DEST lists or
    holds members below, ``others``: :func:`stamps.members_of_others`, read when None). A
    new version without ``ds/old/x`` left ``ds/old/`` behind, empty. Returns what the stamp
    records now: those still there, as made, and those this merge made."""
    from drivestage.extract import remove_folders
    from drivestage.extract.members import ancestors

    held = [*result.paths, *result.left]
    need = ancestors(held).union(held)
    loose = [m for m in made if m.path not in need]
    if loose:
        theirs = stamps.members_of_others(dest, stamp) if others is None else others
        gone = remove_folders(dest, loose, need | theirs | ancestors(theirs),
                              lock_dir=lock_dir)
        if gone:
            log.info("removed %s of the previous version of %s that %s members had filled",
                     _count(gone, "emptied folder"), src, "its dropped")
    out = {m.path: m for m in made if _same_folder(dest, m)}
    out.update((m.path, m) for m in result.made)
    return [out[p] for p in sorted(out)]


def _same_folder(dest: str, rec: MemberRecord) -> bool:
    """Whether ``dest`` holds at ``rec.path`` the folder ``rec`` records (its inode)."""
    st = _lstat(dest, rec.path)
    return st is not None and stat.S_ISDIR(st.st_mode) and st.st_ino == rec.ino


def settle_journals(dest: str, archive: str, stamp: Stamp, *, others: bool = False,
                    listed: bool = False) -> None:
    """Remove the merge journals of ``archive`` in ``dest`` that ``stamp`` shows done (it
    records the very files they name; :mod:`drivestage.extract.journals`); with ``others``,
    every other one a kill left there too, judged against every stamp of ``dest``.
    ``listed``: the state folder as a folder pull listed it at its start will do (a rerun
    that finds the archive staged: a kill's journal is older)."""
    own = journals.release(dest, archive)   # (its merge, if any, is over: its stamp is written)
    names = _journals_in(partials.listing(os.path.join(os.path.abspath(dest), STATE_DIR))
                         if listed else None)
    journals.settle(dest, lambda: _records([stamp]), archive, names, own)
    if others:
        journals.settle(dest, lambda: _records(stamps.every(dest)), None, names)


_picked: list[tuple[list[str], list[str]]] = []   # the last listing asked, its journals


def _journals_in(names: Optional[list[str]]) -> Optional[list[str]]:
    """The journals among a folder pull's listing of a state folder (the one list every
    archive's rerun passes), picked once per listing: each archive picked them from all the
    folder's names again (500 archives: 250,000 names looked at, rerun37)."""
    if names is None:
        return None
    last = _picked[-1] if _picked else None
    if last is not None and last[0] is names:
        return last[1]
    picked = [n for n in names if n.endswith(journals.SUFFIX)]
    _picked[:] = [(names, picked)]   # (one step: another thread reads the old or the new)
    return picked


def _records(found: Iterable[Stamp]) -> list[journals.Row]:
    """The rows the stamps ``found`` record (members and stale), as journals compare them."""
    return [r for s in found for key in ("members", "stale") for r in stamps.record_rows(s, key)]


def recorder(dest: str, force: bool = False) -> Recorded:
    """The paths of ``dest`` that earlier extractions wrote, as the stamps say (see
    :class:`drivestage.extract.job.Job`'s ``recorded``); with ``force``, every path (what
    is there is replaced)."""
    return _every if force else functools.partial(stamps.recorded, dest)


def _every(paths: Collection[str]) -> Collection[str]:
    return paths


def _changed(dest: str, records: Sequence[MemberRecord], stamp: Stamp,
             current: Optional[stamps.Listed]) -> list[str]:
    """The files and links of ``records`` that are there but changed since their
    extraction (another kind, size or mtime; not what another archive of the folder pull
    extracted there, before or after it in the pull's order): what a repair writes over.
    (An archive added before it by name, `0.zip`, writes a shared path first; this one's
    repair then put back "a member that changed since drivestage extracted it", which no
    user had touched: chunkdet35.)"""
    siblings: Optional[Mapping[str, list[MemberRecord]]] = None
    out, shown = [], stamp.get("_shown_ns")   # (as missing_member judged them: mtimes)
    for m in records:
        st = _lstat(dest, m.path) if m.kind != "dir" else None
        if st is None or stamps.shows(dest, m, st, shown):
            continue
        if siblings is None:   # (unranked: every listed archive of the pull counts)
            every = None if current is None else stamps.Listed(current, current.folders)
            siblings = stamps.siblings_wrote(dest, stamp, every)
        if not any(stamps.shows(dest, o, st, shown) for o in siblings.get(m.path, ())):
            out.append(m.path)
    return out


def _written_by_others(dest: str, stamp: Stamp, changed: list[str]) -> dict[str, str]:
    """Of ``changed`` (before the repair writes over them), those another archive's stamp in
    ``dest`` records as they were: path -> that archive (a pull that left it out, ``--exclude
    b.zip`` or a pull of ``a.zip`` alone, puts this one's own back). Read only when a repair
    wrote over something."""
    if not changed:
        return {}
    shown, out = stamp.get("_shown_ns"), {}
    wanted = set(changed)
    for other in stamps.every(dest):
        if other.get("file") == stamp.get("file") or not other.get("extracted"):
            continue
        for m in stamps.records(other):
            if m.path in wanted and m.path not in out and m.kind != "dir":
                st = _lstat(dest, m.path)
                if st is not None and stamps.shows(dest, m, st, shown):
                    out[m.path] = str(other.get("src") or other.get("file"))
    return out


def _say_put_back(src: str, changed: list[str], others: Mapping[str, str] = {}) -> None:
    """One line naming the members a repair wrote over because they had changed since
    their extraction (a copy staged from Drive is Drive's): they were put back without a
    word, a user's edit among them. Those another archive had extracted there (``others``:
    path -> that archive) are said so: "changed since drivestage extracted it" read as an
    edit by someone (attack36)."""
    by: dict[str, list[str]] = {}
    for path in changed:
        by.setdefault(others.get(path, ""), []).append(path)
    for who, paths in sorted(by.items()):
        one = len(paths) == 1
        more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
        why = (f"{who} had extracted there (not pulled this time)" if who else
               f"changed since drivestage extracted {'it' if one else 'them'}")
        log.warning("put back %s of %s that %s: %s%s", _count(len(paths), "member"), src, why,
                    ", ".join(sorted(paths)[:3]), more)


def _say_kept(src: str, dest: str, lacked: list[MemberRecord]) -> None:
    """One line naming the files and links of an earlier version that the new one lacks
    and that are still there: :func:`~drivestage.extract.remove_members` left them because
    they are no longer what that extraction wrote (the user edited or replaced them). They
    stayed without a word, and the dataset held files its new version does not have."""
    kept = sorted({m.path for m in lacked if m.kind != "dir" and _there(dest, m.path)})
    if not kept:
        return
    one = len(kept) == 1
    more = f" and {len(kept) - 3} more" if len(kept) > 3 else ""
    log.warning("kept %s of the previous version of %s that the new version lacks, because "
                "%s changed since drivestage extracted %s (your edits are not removed): "
                "%s%s; remove %s from %s by hand if not wanted", _count(len(kept), "file"),
                src, "it was" if one else "they were", "it" if one else "them",
                ", ".join(kept[:3]), more, "it" if one else "them", dest)


def _there(dest: str, rel: str) -> bool:
    if rel.startswith("/") or ".." in rel.split("/"):
        return False  # not a member path: never looked at outside DEST
    return os.path.lexists(os.path.join(dest, rel))


def shadowed(dest: str, stamp: Stamp) -> bool:
    """Whether every member of ``stamp``'s extraction is in place once the other archives
    extracted into ``dest`` (their stamps' members, as they were staged) count as holding
    the paths they share with it: the later one holds a shared path, as ``unzip a.zip;
    unzip b.zip`` leaves it. For an archive ``--remove-archive`` removed, pulled alone: two
    of one DEST (``train.zip`` and ``val.zip``, each with a ``README.txt``) downloaded each
    other back at every rerun of a notebook, whole, to write the shared file again. So too
    an archive pulled into a folder above DEST or inside it (``VOC.zip`` into ``data``,
    then ``fixes.zip`` into ``data/VOCdevkit/VOC2007``): their stamps are in that folder's
    state folder (:func:`_stamp_folders`)."""
    others: dict[str, tuple[str, Stamp]] = {}
    for folder in _stamp_folders(dest, stamp):
        try:
            found = stamps.every(folder)
        except (DriveStageError, OSError):
            continue   # (a state folder that is not this user's, or unreadable: not read)
        for s in found:
            if isinstance(s.get("id"), str) and s.get("id") != stamp.get("id") \
                    and s.get("_path") != stamp.get("_path"):
                others.setdefault(s["id"], (folder, s))
    held = stamps.Listed({i: s.get("md5") for i, (_f, s) in others.items()},
                         {i: f for i, (f, _s) in others.items()})
    return stamps.missing_member(dest, stamp, held) is None


def _stamp_folders(dest: str, stamp: Stamp) -> list[str]:
    """The folders whose stamps may stand for a path of ``stamp``'s members: DEST, the
    folders above it, and those in it that hold a member not in place (another DEST there;
    no walk of the tree: a few stats)."""
    here = os.path.abspath(dest)
    out, up = {here}, here
    while os.path.dirname(up) != up:
        up = os.path.dirname(up)
        out.add(up)
    for m in stamps.records(stamp):
        if not _member_path(m.path):
            continue   # never looked at outside DEST
        st = _lstat(dest, m.path)
        if st is not None and stamps.shows(dest, m, st):
            continue
        parts = m.path.split("/")[:-1]
        out.update(os.path.join(here, *parts[:i]) for i in range(1, len(parts) + 1))
    return sorted(out)


def in_place(dest: str, records: Sequence[MemberRecord], stamp: Optional[Stamp] = None
             ) -> dict[str, MemberRecord]:
    """The records whose member is in place, reached through real folders of DEST
    (:func:`drivestage.stamps.in_real_place`); none when a path is recorded twice (a
    damaged stamp: everything is written). ``stamp``: the archive's own; on a FUSE or
    network mount a file member no other stamp in DEST lists is in place by its kind, size
    and mtime, with the inode it shows now (:func:`_seen_anew`)."""
    by_path = {m.path: m for m in records}
    if len(by_path) != len(records):
        return {}
    kept = {m.path: m for m in stamps.in_real_place(dest, records)}
    if stamp is not None and len(kept) < len(records) and _on_mount(dest):
        others = stamps.members_of_others(dest, stamp)
        anew = _seen_anew(dest, [m for m in records if m.path not in kept
                                 and m.path not in others], stamp.get("_shown_ns"))
        kept.update((m.path, m) for m in stamps.in_real_place(dest, anew))
    return kept


def _on_mount(dest: str) -> bool:
    """Whether DEST is on a FUSE or network mount (:func:`~drivestage.localfs.fuse_devices`)."""
    try:
        return os.stat(dest).st_dev in fuse_devices()
    except OSError:
        return False


def _seen_anew(dest: str, records: Sequence[MemberRecord],
               shown: object = None) -> list[MemberRecord]:
    """The file ``records`` with the inode their path shows now. A mount seen anew (Colab's
    Drive in a new session) shows every file with a new inode number: judged by the
    recorded one, a repair of one member wrote every member again, through the mount. With
    the mtime it shows too, where it is the recorded one shown coarser (Drive's
    milliseconds or seconds: :func:`~drivestage.mtimes.same_mtime`, ``shown`` as there):
    after a remount, a repair of one member still wrote every member again (mount31)."""
    out = []
    for m in records:
        st = _lstat(dest, m.path) if m.kind == "file" else None
        if st is not None:
            mtime = st.st_mtime_ns if same_mtime(st.st_mtime_ns, m.mtime_ns, shown) \
                else m.mtime_ns
            out.append(dataclasses.replace(m, ino=st.st_ino, mtime_ns=mtime))
    return out


def _lstat(dest: str, rel: str) -> Optional[os.stat_result]:
    """The lstat of the member path ``rel`` in ``dest``; None when there is nothing there,
    or ``rel`` is no member path (never looked at outside DEST)."""
    if not _member_path(rel):
        return None
    try:
        return os.lstat(os.path.join(dest, rel))
    except OSError:
        return None


def _member_path(rel: str) -> bool:
    """Whether ``rel`` is a member path: relative, no ``.`` or ``..`` part, no empty one."""
    framed = f"/{rel}/"
    return not ("//" in framed or "/./" in framed or "/../" in framed or "\0" in rel)


def _count(n: int, noun: str) -> str:
    """``1 member``, ``3 members``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"



def remove_archive(dest: str, target: str, stamp: Stamp,
                   held: Optional[os.stat_result] = None) -> bool:
    """Remove the staged archive at ``target`` once ``stamp`` says every member is in place
    (``pull --remove-archive``); True when it is gone. The stamp says "removed" first: a kill
    between the two leaves the stamped copy, which the next such pull removes, never the
    members' only record. Only the copy the stamp describes (its size and mtime, and
    ``held``'s identity when the pull verified it) goes: a file another program put under
    the name since is theirs."""
    if not stamp.get("extracted") or stamp.get("version") != stamps.VERSION:
        return False
    try:
        st: Optional[os.stat_result] = os.lstat(target)
    except FileNotFoundError:
        st = None
    if st is not None and (st.st_size != stamp.get("size") or
                           not same_mtime(st.st_mtime_ns, stamp.get("mtime_ns"),
                                          stamp.get("_shown_ns")) or
                           (held is not None and identity(st) != identity(held))):
        return False
    if stamp.get("removed") is not True:
        stamp["removed"] = True
        stamps.write(dest, stamp)
    if st is not None:
        os.unlink(target)
        log.info("removed %s: its members are extracted and verified (--remove-archive)",
                 target)
    return True
