"""What DEST holds at an archive's paths that no extraction put there: the user's own files
(an ``unzip`` by hand, a label file of theirs), which ``pull -x`` never replaces unasked.

:class:`Occupied` is asked by :class:`~drivestage.extract.job.Job` with the member list
(before a member is written) and again before the merge (the members written into the
temporary folder). A path where DEST has a file, a link or anything but a folder
(:attr:`~drivestage.extract.merging.Plan.occupied`, lstat'ed by the merge's plan already)
that ``recorded`` (the stamps: what an earlier extraction of this or another archive wrote)
does not list is

* **adopted** when it already is the member: a regular file of the member's size whose bytes
  are the same (compared block by block with the member as written, never read whole), or a
  link with the member's target. Nothing of it is moved into place: its record is DEST's
  file as it is (inode and mtime kept; the member's execute bits given). The old recipe's
  ``unzip`` of VOC by hand, pulled now: 20,000 such files, none an error, none written
  again;
* **refused** otherwise (other bytes, another size or kind, a folder member where DEST has a
  file): :class:`~drivestage.errors.UserFilesError`, nothing merged. What is certain from
  the member list (another size or kind) is refused before anything is written.

In a folder pull, an archive that another one merges after (:mod:`drivestage.stage_order`)
**leaves** a file or link member's path where DEST holds something else (:attr:`Occupied.
left`): neither written nor recorded. The later archive that has the path too writes over
it, so it judges what is there: adopts it when it is its member (the user unzipped a.zip,
then b.tgz over it, by hand: ``ds/s.txt`` holds b's bytes, and a.zip refused it), refuses it
otherwise. The stamp says what was left, and the pull fails when no later archive took it
(:func:`drivestage.stamps.left_over`).

A first extraction into a place that holds none of the archive's paths costs nothing more:
``recorded`` is asked only when there are some.

A merge killed before its caller's stamp recorded the members left them unrecorded: the
rerun of that very archive adopts them, but one of a new version refused them. So the paths
a merge is about to move into DEST are written first, in a journal in DEST's state folder
(:mod:`.journals`), which goes once the caller's stamp records them; what journals a kill
left count as recorded while DEST still holds the very files they name.
"""
from __future__ import annotations

import os
import stat
import zlib
from typing import Callable, Collection, Container, Mapping, Optional

from drivestage.errors import UserFilesError
from drivestage.extract.members import Entry
from drivestage.extract.records import MemberRecord
from drivestage.extract.tempdir import TempDir

#: Of the member paths given, those a stamp records (written by an earlier extraction).
Recorded = Callable[[Collection[str]], Collection[str]]

_BLOCK = 1 << 20
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Occupied:
    """The user's files an extraction of ``archive`` into ``dest`` meets (see the module)."""

    def __init__(self, archive: str, dest: str, recorded: Recorded, leave: bool = False):
        self.archive, self.dest, self.recorded = archive, dest, recorded
        #: Whether a file or link member that is not what DEST holds is left (see the module).
        self.leave = leave
        #: The paths left so.
        self.left: set[str] = set()
        self._tree: Mapping[str, Entry] = {}   # (the member list, by path, check() saw)
        #: Paths of DEST adopted as members, with their records (DEST's files as they are).
        self.adopted: dict[str, MemberRecord] = {}
        #: Paths that may hold the member (a file of its size, a link): compared once written.
        self.maybe: dict[str, os.stat_result] = {}
        #: Paths surely not the member, whose refusal waits for :attr:`maybe` to be compared.
        self.pending: list[str] = []

    def check(self, tree: Mapping[str, Entry], occupied: Mapping[str, os.stat_result],
              skip: Container[str] = (), written: Optional[TempDir] = None) -> None:
        """Judge what DEST holds at the archive's paths (``occupied``; ``skip``: paths an
        earlier extraction of the archive owns): raise for what surely is not the member,
        keep what may be for :meth:`compare`. ``written``: the temporary folder, when the
        members are written there already. A refusal counts the rest too (compared with the
        members written, or by a zip member's CRC-32), so that its "how many" is not one
        file at a time; where that takes the members' bytes (a tar's, not written yet), it
        waits for them: :meth:`compare` refuses then, with every file counted."""
        paths = [p for p in occupied if p not in skip]
        ours = set(self.recorded(paths)) if paths else set()
        differ: list[str] = []
        self.maybe, self.pending, self.left = {}, [], set()
        self._tree = tree
        for path in paths:
            st = occupied[path]
            if path in ours or self._still_adopted(path, st):
                continue
            if _may_be(self.dest, path, st, tree[path]):
                self.maybe[path] = st
            else:
                differ.append(path)
        differ = self._leave(differ)
        if differ:
            verdicts = {p: _differs(self.dest, p, st, tree[p], written)
                        for p, st in self.maybe.items()}
            differ += self._leave([p for p, verdict in verdicts.items() if verdict])
            if None in verdicts.values():   # (only before a tar's members are written)
                self.maybe = {p: self.maybe[p] for p, v in verdicts.items() if v is None}
                self.pending = differ
                return
            raise self._refusal(differ)

    def compare(self, root: TempDir, recheck: bool = False) -> None:
        """Compare what :meth:`check` kept with the members as written in ``root``: the same
        are adopted (their copies in ``root`` removed by :meth:`drop_copies`), anything
        else refused. ``recheck``: ask ``recorded`` again first (a while went
        by since :meth:`check`: an earlier archive of a folder pull merged and stamped)."""
        if recheck and (self.maybe or self.pending):
            # (The pending too: one an earlier archive of the pull adopted and stamped since
            # is its member, which this one replaces; it was refused: attackclob32.)
            ours = set(self.recorded([*self.maybe, *self.pending]))
            self.maybe = {p: st for p, st in self.maybe.items() if p not in ours}
            self.pending = [p for p in self.pending if p not in ours]
        found: dict[str, MemberRecord] = {}
        differ, self.pending = self.pending, []
        for path, st in self.maybe.items():
            rec = _same(root.fd, self.dest, path, st)
            if rec is None:
                differ.append(path)
            else:
                found[path] = rec
        self.maybe = {}
        differ = self._leave(differ)
        if differ:
            raise self._refusal(differ)
        for path, rec in found.items():
            _executable(root.fd, self.dest, path, rec)
        self.adopted.update(found)

    def drop_copies(self, root: TempDir) -> None:
        """Remove the members adopted from ``root`` (under the merge lock, just before the
        merge, which leaves DEST's files as they are). Kept until then: one the user touched
        after it was compared (a new mtime, the same bytes) is compared again under the lock,
        not refused as "other bytes" for want of the member to compare with (attackclob32)."""
        for path in [*self.adopted, *self.left]:
            try:
                os.unlink(path, dir_fd=root.fd)
            except FileNotFoundError:
                pass

    def _leave(self, differ: list[str]) -> list[str]:
        """Of ``differ``, what :attr:`left` cannot take (all of it, unless :attr:`leave`)."""
        if not self.leave or not differ:
            return differ
        targets = {e.target for e in self._tree.values() if e.kind == "hardlink"}
        leavable = {p for p in differ if self._tree[p].kind in ("file", "symlink")
                    and p not in targets}
        self.left.update(leavable)
        return [p for p in differ if p not in leavable]

    def _still_adopted(self, path: str, st: os.stat_result) -> bool:
        rec = self.adopted.get(path)
        if rec is None:
            return False
        link = _readlink(self.dest, path) if stat.S_ISLNK(st.st_mode) else None
        return rec.matches(st, link)

    def _refusal(self, paths: list[str]) -> UserFilesError:
        return UserFilesError(self.archive, self.dest, min(paths), len(paths))


def _may_be(dest: str, path: str, st: os.stat_result, member: Entry) -> bool:
    """Whether DEST's ``st`` at ``path`` may be ``member`` as written (decided by the bytes
    later): a regular file of its size (a hard link's size is its target's), a link with
    its target."""
    if member.kind == "file":
        return stat.S_ISREG(st.st_mode) and st.st_size == member.size
    if member.kind == "hardlink":
        return stat.S_ISREG(st.st_mode)
    if member.kind == "symlink":
        return stat.S_ISLNK(st.st_mode) and _readlink(dest, path) == member.target
    return False   # a folder in place of a file or link of DEST


def _differs(dest: str, path: str, st: os.stat_result, member: Entry,
             written: Optional[TempDir]) -> Optional[bool]:
    """Whether what :func:`_may_be` kept is not the member (None: not known before the
    member is written)."""
    if written is not None:
        return _same(written.fd, dest, path, st) is None
    if member.kind == "symlink":
        return False   # (its target is the member's: _may_be)
    crc = member.crc if member.kind == "file" else None
    return _crc(dest, path, st) != crc if isinstance(crc, int) else None


def _crc(dest: str, path: str, st: os.stat_result) -> Optional[int]:
    """The CRC-32 of the file of DEST ``st`` describes (None: not that file any more)."""
    try:
        fd = os.open(os.path.join(dest, path), _READ_FLAGS)
    except OSError:
        return None
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            return None
        crc = 0
        while block := os.read(fd, _BLOCK):
            crc = zlib.crc32(block, crc)
        return crc
    finally:
        os.close(fd)


def _same(tmp_fd: int, dest: str, path: str, st: os.stat_result) -> Optional[MemberRecord]:
    """DEST's record at ``path`` when it holds what the temporary folder has there, else
    None (``st``: its lstat; a file that is no longer that one is not the member)."""
    try:
        mine = os.lstat(path, dir_fd=tmp_fd)
    except OSError:
        return None
    if stat.S_ISLNK(mine.st_mode) and stat.S_ISLNK(st.st_mode):
        target = _readlink(dest, path)
        if target is None or target != os.readlink(path, dir_fd=tmp_fd):
            return None
        return MemberRecord(path, "symlink", st.st_size, st.st_mtime_ns, st.st_ino, target)
    if not (stat.S_ISREG(mine.st_mode) and stat.S_ISREG(st.st_mode)) or \
            mine.st_size != st.st_size:
        return None
    if not _same_bytes(tmp_fd, dest, path, st):
        return None
    return MemberRecord(path, "file", st.st_size, st.st_mtime_ns, st.st_ino)


def _same_bytes(tmp_fd: int, dest: str, path: str, st: os.stat_result) -> bool:
    """Whether the file of DEST (the one ``st`` describes, opened without following a link)
    and the member written in the temporary folder hold the same bytes, a block at a time."""
    try:
        theirs = os.open(os.path.join(dest, path), _READ_FLAGS)
    except OSError:
        return False   # gone, replaced by a link, unreadable: not adopted
    try:
        now = os.fstat(theirs)
        if (now.st_dev, now.st_ino, now.st_size) != (st.st_dev, st.st_ino, st.st_size):
            return False
        mine = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=tmp_fd)
        try:
            while True:
                block = _read(mine, _BLOCK)
                if _read(theirs, len(block) or 1) != block:
                    return False
                if not block:
                    return True
        finally:
            os.close(mine)
    finally:
        os.close(theirs)


def _executable(tmp_fd: int, dest: str, path: str, rec: MemberRecord) -> None:
    """Give DEST's file adopted the execute bits of the member as written: a user's copy of
    a script made 0644 (``cp``, an editor) was "already staged", and "Permission denied"
    where a fresh pull's runs (attackclob32). Its bytes, inode and mtime stay; a bit it has
    that the member lacks stays too."""
    if rec.kind != "file":
        return
    try:
        missing = os.lstat(path, dir_fd=tmp_fd).st_mode & 0o111
        fd = os.open(os.path.join(dest, path), _READ_FLAGS)
    except OSError:
        return
    try:
        st = os.fstat(fd)
        missing &= ~st.st_mode
        # (Still the file compared; not one linked elsewhere too: that is not DEST's to change.)
        if missing and rec.matches(st, None) and st.st_nlink == 1:
            os.fchmod(fd, stat.S_IMODE(st.st_mode) | missing)
    except OSError:
        pass   # (another user's file, a file system without modes: adopted as it is)
    finally:
        os.close(fd)


def _read(fd: int, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at the end (a FUSE file may answer a read short)."""
    out = os.read(fd, n)
    while out and len(out) < n:
        more = os.read(fd, n - len(out))
        if not more:
            break
        out += more
    return out


def _readlink(dest: str, path: str) -> Optional[str]:
    try:
        return os.readlink(os.path.join(dest, path))
    except OSError:
        return None
