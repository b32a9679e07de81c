"""A directory store's old copy of a replaced checkpoint, kept aside until its replacement
is verified (:class:`LocalHeld`, a mixin of :class:`drivestage.localdir.LocalDirStore`).

On Drive a push sends a changed checkpoint as a new file beside the old one, then its
sidecar, and only then removes the old copy (:mod:`drivestage.old_copies`): a copy the
sidecar vouches for is on the store at every step. A folder holds one file of a name, so a
directory store renamed the new ``last.pt`` over the verified one at once: until the sidecar
followed (for good, when the push was killed there: a preempted node) DEST held the new
``last.pt`` beside the old sidecar, no verified checkpoint, and a resume from it started
afresh (attacksync35). The old file is now linked aside first, in its folder, as
``.drivestage-held.<random>.<name>`` (a reserved name: no push sends it, no pull of a local
folder takes it under that name): a hard link, so the name keeps the verified bytes until
the new copy's ``os.replace`` swaps it (a rename aside left no file at the name after a
SIGKILL before that swap, for readers outside drivestage: attack36); where the file system
has no hard links, a rename. It is listed as a copy of ``<name>``, as Drive lists
same-named copies: readers take the copy the sidecar vouches for (:func:`drivestage.sidecar.
vouched`). The push that set it aside removes it once the new pair is verified
(:meth:`~drivestage.store.RemoteStore.aside`); one a killed push left is removed by the next
push as any same-named copy no sidecar vouches for.
"""
from __future__ import annotations

import logging
import os
import secrets
import stat
import threading
from typing import Callable, Iterable, Optional, Sequence, TypeVar, Union

from drivestage.errors import DriveStageError
from drivestage.localfs import drive_mount, identity
from drivestage.local_md5 import MemoryMd5Cache
from drivestage.paths import StorePath
from drivestage.sidecar import SUFFIX, is_sidecar, name_for
from drivestage.store import Md5Source, RemoteEntry

R = TypeVar("R")

log = logging.getLogger(__name__)

#: The name of a copy kept aside starts so: ``.drivestage-held.<6 hex>.<name>``.
PREFIX = ".drivestage-held."


def stands_for(name: str) -> Optional[str]:
    """The name a copy kept aside stands for (None: ``name`` is no such copy)."""
    if not name.startswith(PREFIX):
        return None
    token, dot, rest = name[len(PREFIX):].partition(".")
    # (no copy a push keeps aside stands for ".." or "a/b": a Drive title so made stood for
    # it, and the folder pull failed on that name, one the folder does not hold: attacknet36)
    plain = rest not in ("", ".", "..") and "/" not in rest and "\0" not in rest
    return rest if dot and plain and len(token) == 12 else None


class LocalHeld:
    """The copies a directory store's uploads kept aside (a mixin)."""

    _memo: MemoryMd5Cache   # the store's
    _md5: Md5Source         # the store's (its md5 cache; _memo when it has none)
    root: str               # the store's

    def _rel(self, path: Union[str, StorePath]) -> str:  # the store's
        raise NotImplementedError

    def _full(self, rel: str) -> str:  # the store's
        raise NotImplementedError

    def resolve(self, path: Union[str, StorePath]) -> RemoteEntry:  # the store's
        raise NotImplementedError

    def _inside(self, full: str) -> bool:  # the store's
        raise NotImplementedError

    def looked(self, look: Callable[[], R]) -> R:  # the store's
        raise NotImplementedError

    def _held_init(self) -> None:
        self._held: dict[str, list[str]] = {}   # file's rel: the rels of its copies aside
        self._held_lock = threading.Lock()
        # file's rel: the copy its last in-place update removed under another id (one a
        # name: bounded by the names written)
        self._dropped: dict[str, RemoteEntry] = {}
        self._mount: Optional[bool] = None   # whether the store is in a Google Drive mount
        # copy aside: (its identity, md5) as :meth:`_hold` made it (popped once replaced over)
        self._carried: dict[str, tuple[tuple[int, ...], str]] = {}

    def _hold(self, rel: str) -> Optional[str]:
        """Rename the regular file at ``rel`` (about to be replaced) aside in its folder; its
        new full path, None when there is none (or the disk refused: replaced as before)."""
        if self._mount is None:
            self._mount = drive_mount(self.root) is not None
        if self._mount:
            # In a Google Drive mount the rename and the removal reach Drive before the new
            # file's bytes do (DriveFS sends small changes first): a runtime ending between
            # left Drive without the checkpoint. Replaced in place there, Drive's file keeps
            # its old bytes until the new ones arrived (as retention holds back: mount30).
            return None
        target = self._full(rel)
        try:
            st = os.lstat(target)
        except OSError:
            return None
        folder, name = os.path.split(target)
        if not stat.S_ISREG(st.st_mode) or is_sidecar(name):
            return None   # (a sidecar replaced at once vouches for what is there: atomic)
        aside = os.path.join(folder, f"{PREFIX}{secrets.token_hex(6)}.{name}")
        # (the listing's md5 of it: a push in a fresh process has it from the md5 cache only,
        # and the copy aside, read whole for it again, is about to be deleted)
        md5 = self._memo.get(target, st) or self._md5.get(target, st)
        try:
            try:
                os.link(target, aside)   # (the name keeps the old bytes until os.replace)
            except OSError:
                os.rename(target, aside)   # (a fresh random name: nothing is replaced)
        except OSError as exc:   # a name too long with the prefix, a mount that refuses
            log.info("could not keep %s aside before its replacement (%s)", target,
                     exc.strerror)
            return None
        if md5 is not None:   # (a rename moves the ctime: not hashed again for it)
            now = identity(os.stat(aside))
            self._memo.put_identity(aside, now, md5)
        with self._held_lock:
            self._held.setdefault(rel, []).append(os.path.basename(aside))
            if md5 is not None:
                self._carried[aside] = (now, md5)
        return aside

    def _replaced_over(self, aside: Optional[str]) -> None:
        """The new copy took the name of the one kept ``aside`` (an ``os.replace``): a copy
        aside by a link lost a link, which moved its ctime, and the md5 :meth:`_hold` gave it
        follows (it was read whole again, only to be deleted: attackcmd42)."""
        if aside is None:
            return
        with self._held_lock:
            carried = self._carried.pop(aside, None)
        if carried is not None:
            was, md5 = carried
            try:
                now = identity(os.stat(aside))
            except OSError:
                return   # (removed since: another machine's push)
            if now[:4] == was[:4]:   # (device, inode, size, mtime: the same bytes)
                self._memo.put_identity(aside, now, md5)

    def _unhold(self, rel: str, aside: str) -> None:
        """Undo :meth:`_hold`: the replacement failed (or was interrupted) before its rename
        into place. A link aside beside the old copy still at its name goes; a copy renamed
        aside goes back to the free name. A new copy in place keeps it aside."""
        full = self._full(rel)
        try:
            if os.path.lexists(full):
                if not os.path.samefile(aside, full):
                    return   # (the new copy took the name: the old stays aside)
                os.unlink(aside)
            else:
                os.rename(aside, full)
        except OSError:
            return   # (kept aside: listed as a copy, removed by the next push)
        with self._held_lock:
            self._carried.pop(aside, None)
            names = self._held.get(rel, [])
            if os.path.basename(aside) in names:
                names.remove(os.path.basename(aside))

    def aside(self, kept: RemoteEntry) -> Sequence[RemoteEntry]:
        """The old copies this store's uploads of ``kept`` kept aside and still holds; the
        caller removes them once ``kept`` and its sidecar are verified."""
        rel = self._rel(kept.id)
        with self._held_lock:
            names = self._held.pop(rel, [])
        folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
        out = []
        for name in names:
            try:
                out.append(self.resolve(f"{folder}/{name}" if folder else name))
            except FileNotFoundError:
                pass   # (removed since: another machine's push)
        return out

    def _drop(self, rel: str, replaced: RemoteEntry) -> None:
        """Remove the file ``replaced`` (listed under the name ``rel`` from another path: a
        copy aside) that an in-place update just wrote at ``rel``."""
        old = self._full(self._rel(replaced.id))
        if os.path.isfile(old) and self._inside(old):
            os.unlink(old)
            with self._held_lock:
                self._dropped[rel] = replaced

    def dropped(self, kept: RemoteEntry) -> Sequence[RemoteEntry]:
        """The copy the in-place update that wrote ``kept`` removed under its other id (a
        push's duplicate warning names it: it said "1 files had this name (ids )")."""
        with self._held_lock:
            gone = self._dropped.pop(self._rel(kept.id), None)
        return [gone] if gone is not None else []

    def alike(self, path: Union[str, StorePath]) -> list[RemoteEntry]:
        """What a pull of the one file ``path`` chooses among besides it
        (:func:`drivestage.held_choice.file_at`): its copies kept aside and its sidecar, where
        it has both; else none. A stat or two, and a scan of its folder's names only where a
        sidecar is there: a pull of any other file costs nothing more."""
        rel = self._rel(path)
        folder, _, name = rel.rpartition("/")
        if not name or is_sidecar(name):
            return []
        # (its looks left by a Ctrl-C where the mount hangs: the store's looked, hang52)
        sides = self.looked(lambda: [n for n in dict.fromkeys([name_for(name), name + SUFFIX])
                                     if os.path.isfile(self._full(f"{folder}/{n}" if folder
                                                                  else n))])
        if not sides:   # (no sidecar vouches for any copy: the file at the name)
            return []
        try:
            names = self.looked(lambda: os.listdir(self._full(folder)))
        except OSError:
            return []
        aside = sorted(n for n in names if stands_for(n) == name)
        # (hashed only now, each: a data.json beside data.zip is no reason to read it)
        return self._files(folder, aside + sides) if aside else []

    def _files(self, folder: str, names: Iterable[str]) -> list[RemoteEntry]:
        """The files of ``names`` in ``folder`` there are (a folder, a FIFO, a link out: none)."""
        out = []
        for name in names:
            try:
                entry = self.resolve(f"{folder}/{name}" if folder else name)
            except (DriveStageError, OSError):
                continue
            if not entry.is_dir:
                out.append(entry)
        return out
