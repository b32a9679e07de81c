"""A :class:`~drivestage.store.RemoteStore` on a plain directory.

For a Colab Drive FUSE mount (``/content/drive/MyDrive``), a NAS or a second
disk: ``drivestage push logs/ /content/drive/MyDrive/logs`` uses this store.

Choices (the shared contract in ``tests/store_contract.py`` checks them):

* Ids are root-relative ``/``-separated paths; the root's id is ``""``.
  ``resolve("id:a/b")`` is ``resolve("a/b")``. Paths that leave the root —
  ``..`` or a symlink pointing outside — are refused with :class:`UsageError`;
  :meth:`list` skips such symlinks.
* :meth:`upload` copies into a hidden temporary file in the target folder
  (md5 computed while copying, fsync'd), keeps the source's mtime, then renames
  it over the target atomically: a reader never sees a half-written file. A new file taking
  the name of another (``replace`` None: a checkpoint, sent beside its old copy on Drive) first
  links the old one aside (the name keeps it until the swap), listed as a same-named copy until the caller removes it
  (:mod:`drivestage.local_held`).
  On a Drive mount, ENOSPC/EDQUOT become :class:`QuotaExceededError` and EIO a
  :class:`RemoteError` that mentions the quota (how the mount reports it).
* ``delete(trash=True)`` moves the entry into the trash, inside the DEST the store was
  opened for (:mod:`drivestage.local_trash`), under its path there (numbered ``.~N~`` on
  collision); hidden from :meth:`list`, counted in ``quota().trash``. Deleting inside the
  trash is permanent.
* md5s of listed files are computed by reading them (streamed) and cached by
  path + :func:`identity` (device, inode, size, mtime, ctime); pass ``md5_cache`` (e.g.
  :class:`drivestage.state.Md5Cache`) to keep them across processes, which
  matters on a Drive mount where reading a file downloads it.
* :meth:`quota` is the filesystem's (``shutil.disk_usage``).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat as _stat
import time
from dataclasses import replace
from typing import Callable, Iterator, Optional, Union

from drivestage.errors import (
    ChecksumMismatchError,
    NotFoundError,
    SourceChangedError,
    UsageError,
)
from drivestage import local_trash
from drivestage.local_held import LocalHeld, stands_for
from drivestage.local_marks import LocalMarks, left_unmarked, put
from drivestage.local_tree import refuse_loop
from drivestage.local_md5 import MemoryMd5Cache
from drivestage.local_reads import R, mount_look, mount_md5, read_blocks, root_device
from drivestage.localfs import file_md5, fuse_devices, identity
from drivestage.lost_mounts import folder_error, read_error, write_error
from drivestage.paths import StorePath
from drivestage.sources import walked_md5
from drivestage.special_files import became, not_a_folder, open_sent
from drivestage.state import Md5Cache, settled, wait_settled
from drivestage.temps import shown, upload_left, upload_name
from drivestage.store import Md5Source, ProgressFn, Quota, RemoteEntry, RemoteStore


TRASH = local_trash.OLD
UPLOAD_PREFIX = ".drivestage-upload-"
_CHUNK = 1 << 20
_TRIES = 3  # copies of a file written into while it was read, at most, per upload


class LocalDirStore(LocalMarks, LocalHeld, RemoteStore):
    """A directory used as a remote store (ids are root-relative paths)."""

    changed_while_read = "changed in its folder while it was copied"
    mismatch = ("the bytes copied do not match the file as it was hashed", "The file changes "
                "as it is read, its size and times the same (a file of /proc or /sys, a "
                "network or FUSE mount), or its disk reads back other bytes (a failing disk).")

    def trash_place(self) -> str:
        """A directory store's trash: a folder in its DEST (attackds32: the line said "the
        Drive trash" of a local DEST)."""
        return self._full(local_trash.folder(self.trash_in))

    def __init__(self, root: Union[str, "os.PathLike[str]"], *,
                 md5_cache: Optional[Md5Source] = None, trash_in: Optional[str] = None):
        self.root = os.path.abspath(os.path.expanduser(os.fspath(root)))
        self.trash_in = trash_in   # the DEST, root-relative: the trash lies in it
        self._real_root = os.path.realpath(self.root)
        self._root_dev = root_device(self._real_root)   # (None: no root yet, a DEST)
        self._memo = MemoryMd5Cache()
        self._held_init()
        self._md5: Md5Source = md5_cache or self._memo
        self._fuse: Optional[frozenset[int]] = None  # read at the first look (_on_mount)
        #: Files listed without their md5 (:meth:`defer_md5`): what reads them hashes them.
        self._deferred: set[str] = set()
        #: The FIFOs, sockets and devices :meth:`list` left out (ids): a pull says so once.
        self.special: list[str] = []
        self.links_out: list[str] = []   # and the links it left out (outside, dangling)

    def __repr__(self) -> str:
        return f"LocalDirStore({self.root!r})"

    # ----------------------------------------------------------------- paths

    def _rel(self, path: Union[str, StorePath]) -> str:
        """Normalise a store path (or ``id:`` path) to ``a/b``; refuse leaving the root."""
        if isinstance(path, StorePath):  # an id here is a root-relative path too
            path = "/".join(((path.start,) if path.start else ()) + path.names)
        raw = path[3:] if path.startswith("id:") else path
        if "\0" in raw:
            raise UsageError(f"path {path!r} contains a NUL byte")
        parts: list[str] = []
        for part in raw.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise UsageError(f"path {path!r} leads outside the store root {self.root}; "
                                     "give a path inside it")
                parts.pop()
            else:
                parts.append(part)
        return "/".join(parts)

    def _full(self, rel: str) -> str:
        return os.path.join(self.root, *rel.split("/")) if rel else self.root

    def _inside(self, full: str) -> bool:
        real = os.path.realpath(full)
        return real == self._real_root or real.startswith(self._real_root.rstrip(os.sep) + os.sep)

    def _entry(self, rel: str, st: os.stat_result, full: str) -> RemoteEntry:
        is_dir = _stat.S_ISDIR(st.st_mode)
        if not is_dir and not _stat.S_ISREG(st.st_mode):
            raise UsageError(f"{full} is not a regular file or folder (a FIFO, socket or "
                             "device); a store holds files and folders only")
        md5 = None if is_dir else self._file_md5(full, st)
        name = rel.rsplit("/", 1)[-1] if rel else os.path.basename(self.root)
        name = name if is_dir else stands_for(name) or name   # (a copy kept aside: local_held)
        parent = None if not rel else (rel.rsplit("/", 1)[0] if "/" in rel else "")
        return RemoteEntry(id=rel, name=name, is_dir=is_dir, size=0 if is_dir else st.st_size,
                           md5=md5, modified=st.st_mtime, parent_id=parent,
                           parent_ids=() if parent is None else (parent,))

    def _file_md5(self, full: str, st: os.stat_result) -> Optional[str]:
        cached = self._memo.get(full, st) or (self._md5.get(full, st) if self._md5 is not self._memo
                                              else None)
        if cached:
            return cached
        if full in self._deferred:
            return None  # its one reader hashes it (see defer_md5)
        wait_settled(st)  # a few ms, not a second hash by the next process
        began = time.time_ns()
        try:
            digest = mount_md5(full, _CHUNK, self._on_mount(st.st_dev))
        except OSError as exc:
            raise read_error(exc, full) from exc
        if identity(self.looked(lambda: os.stat(full))) == identity(st):  # (changed: not kept)
            self._remember(full, st, digest, is_settled=settled(st, began))
        return digest

    def known_md5(self, full: str, st: os.stat_result) -> Optional[str]:
        """The md5 this store hashed (or was told, :meth:`vouch`) for the file at ``full``
        while its :func:`identity` was ``st``'s; None when it knows none. Never the md5 of
        the persistent cache given as ``md5_cache``: any :class:`Md5Source` may be, and its
        key need not be the whole identity."""
        return self._memo.get(full, st)

    def settled_md5(self, full: str, st: os.stat_result) -> Optional[str]:
        """:meth:`known_md5` when a write after its hash moves the identity (:func:`settled`):
        the one a stamp may record with that identity for the next process."""
        return self._memo.get(full, st, settled_only=True)

    def local_path(self, path: Union[str, StorePath]) -> str:
        """The local path of the store path ``path`` (which need not exist)."""
        return self._full(self._rel(path))

    def defer_md5(self, full: str) -> None:
        """List the file at ``full`` without reading it for its md5 (``md5`` None) unless
        the md5 is known already: a local archive that ``pull -x`` extracts where it lies is
        hashed by the pass that extracts it (:mod:`drivestage.hashed_pass`), which then
        tells it here (:meth:`learn_md5`). Hashed on listing, it was read twice."""
        self._deferred.add(full)

    def learn_md5(self, full: str, st: os.stat_result, md5: str, began_ns: int) -> None:
        """``md5`` is the md5 of ``full`` while its identity is ``st``'s, hashed from
        ``began_ns`` on (as :meth:`_file_md5` keeps one it hashed itself)."""
        self._remember(full, st, md5, is_settled=settled(st, began_ns))

    def vouch(self, full: str, ident: tuple[int, ...], md5: str) -> None:
        """Take ``md5`` as the md5 of ``full`` for as long as its :func:`identity` is
        ``ident`` (a pull's stamp of a local original records both): listing it then reads
        nothing. Not on a FUSE or network mount (:func:`fuse_devices`): its identities
        repeat, or are a cache's."""
        if ident and self._on_mount(ident[0]):
            return  # hashed again, as every file of such a mount is by each process
        self._memo.put_identity(full, ident, md5, is_settled=True)

    def _on_mount(self, device: int) -> bool:
        """Whether ``device`` is a FUSE or network mount's (:func:`fuse_devices`, read once)."""
        if self._fuse is None:
            self._fuse = fuse_devices()
        return device in self._fuse

    def _remember(self, full: str, st: os.stat_result, digest: str, *,
                  is_settled: bool = False, written: bool = False) -> None:
        self._memo.put(full, st, digest, is_settled=is_settled)
        if isinstance(self._md5, Md5Cache):
            self._md5.put(full, st, digest, written=written)
        elif self._md5 is not self._memo:
            self._md5.put(full, st, digest)

    def _stat(self, rel: str, shown: str) -> tuple[str, os.stat_result]:
        full = self._full(rel)
        return full, self.looked(lambda: self._checked_stat(full, shown))

    def looked(self, look: Callable[[], R]) -> R:
        """``look()``, a look below the root (a stat, a realpath: nothing made), left by a
        Ctrl-C where the root is on a mount that hangs (:func:`local_reads.mount_look`)."""
        return mount_look(look, self._root_dev is not None and self._on_mount(self._root_dev))

    def _checked_stat(self, full: str, shown: str) -> os.stat_result:
        if not self._inside(full):
            raise UsageError(f"{full} is a link leading outside the store root {self.root}; "
                             "refusing to follow it")
        try:
            return os.stat(full)
        except FileNotFoundError:
            raise NotFoundError(f"no such file or folder: {full} (looked up as {shown!r})") from None
        except NotADirectoryError:
            raise NotFoundError(f"no such file or folder: {full} (a parent is a file)") from None

    # ----------------------------------------------------------------- RemoteStore

    def place(self, path: StorePath) -> str:
        """The folder's absolute path (the same whichever parent the store is rooted at)."""
        return "dir|" + os.path.realpath(self._full(self._rel(path)))

    def lineage(self, folder: RemoteEntry) -> list[tuple[str, str]]:
        """The folder's real path and each folder above it, to ``/``."""
        out: list[tuple[str, str]] = []
        at = os.path.realpath(self._full(self._rel(folder.id)))
        while not out or out[-1][1] != at:
            out.append(("dir|" + at, at))
            at = os.path.dirname(at)
        return out

    def describe(self, entry: RemoteEntry) -> str:
        """The entry's local path."""
        return self._full(self._rel(entry.id))

    def resolve(self, path: Union[str, StorePath]) -> RemoteEntry:
        """The entry at ``path`` (root-relative, or ``id:`` + the same)."""
        rel = self._rel(path)
        full, st = self._stat(rel, str(path))
        return self._entry(rel, st, full)

    def stat(self, entry: RemoteEntry) -> RemoteEntry:
        """Fresh metadata for ``entry``."""
        return self.resolve(entry.id)

    def list(self, folder: RemoteEntry) -> list[RemoteEntry]:
        """Children of ``folder`` sorted by name, without the trash, temporary uploads and
        links leading outside the root."""
        rel = self._rel(folder.id)
        full, st = self._stat(rel, folder.id)
        if not _stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{full} is a file, not a folder")
        if rel and os.path.islink(full):
            refuse_loop(full, self.root)
        out = []
        with os.scandir(full) as it:
            children = sorted(it, key=lambda d: d.name)
        for child in children:
            if child.name.startswith(UPLOAD_PREFIX):
                _sweep(child.path, child.name[len(UPLOAD_PREFIX):], st)
                continue
            if local_trash.hidden(rel, child.name):
                continue
            child_rel = f"{rel}/{child.name}" if rel else child.name
            if child.is_symlink() and not (self._inside(child.path) and os.path.exists(child.path)):
                self.links_out.append(child_rel)   # leading outside the root, or nowhere
                continue
            try:
                child_st = os.stat(child.path)
            except FileNotFoundError:
                continue  # removed meanwhile
            if not (_stat.S_ISREG(child_st.st_mode) or _stat.S_ISDIR(child_st.st_mode)):
                self.special.append(child_rel)  # (a FIFO's read could block forever)
                continue
            try:
                out.append(self._entry(child_rel, child_st, child.path))
            except FileNotFoundError:
                continue  # removed meanwhile, before its hash (another machine's push)
        return out

    def make_folders(self, path: Union[str, StorePath], *, mark: bool = False) -> RemoteEntry:
        """``mkdir -p`` inside the root; returns the deepest folder (``mark``: marked as a run
        folder, :mod:`drivestage.local_marks`)."""
        rel = self._rel(path)
        done = ""
        for part in rel.split("/") if rel else []:
            done = f"{done}/{part}" if done else part
            full = self._full(done)
            try:
                os.mkdir(full)
            except FileExistsError:
                if not os.path.isdir(full):
                    raise not_a_folder(full) from None
            except OSError as exc:
                raise folder_error(exc, full) from exc
            if not self._inside(full):
                raise UsageError(f"{full} is a link leading outside the store root {self.root}")
        full, st = self._stat(rel, str(path))
        made = self._entry(rel, st, full)
        return replace(made, run_mark=True) if mark and rel and put(full, True) else made

    def read_range(self, entry: RemoteEntry, start: int, end: int) -> Iterator[bytes]:
        """Stream bytes ``[start, end)`` of a file, 1 MiB at a time."""
        if start < 0 or end < start:
            raise UsageError(f"bad byte range [{start}, {end}) for {self.describe(entry)}")
        full, st = self._stat(self._rel(entry.id), entry.id)
        if _stat.S_ISDIR(st.st_mode) and entry.is_dir:   # (listed a file: changed, read_blocks's)
            raise UsageError(f"{full} is a folder, not a file")
        return read_blocks(full, start, end, _CHUNK)

    def upload(self, local_path: str, folder: RemoteEntry, name: str, *,
               replace: Optional[RemoteEntry] = None, progress: Optional[ProgressFn] = None,
               chunk_size: Optional[int] = None, md5_cache: Optional[Md5Source] = None,
               follow: bool = False, real: str = "") -> RemoteEntry:
        """Copy ``local_path`` to ``folder/name`` atomically and verify the copy's md5 (through
        a link only where ``follow``, and only at ``real`` where given:
        :func:`~drivestage.special_files.open_sent`).

        A source that changed while it was copied is copied once more (the next push copies
        it again if it keeps changing); a copy of one written into while it was read replaces
        nothing, and is made again, :data:`_TRIES` times at most (then SourceChangedError)."""
        try:   # (a dangling link planted there: "became a link", by the copy's open)
            st = os.stat(local_path, follow_symlinks=follow)
        except FileNotFoundError:
            raise NotFoundError(f"local file {shown(local_path)} does not exist") from None
        read = (follow, real)
        entry = self._whole(local_path, folder, name, replace, progress, read)
        now = os.stat(local_path, follow_symlinks=follow)
        if (now.st_mtime_ns, now.st_size) != (st.st_mtime_ns, st.st_size):
            entry = self._whole(local_path, folder, name, entry, progress, read)
            st = os.stat(local_path, follow_symlinks=follow)
        local = md5_cache.get(local_path, st) if md5_cache is not None else None
        if local is None:
            if md5_cache is not None:
                wait_settled(st)  # else not cached, and the next push hashes it again
            try:   # (by the copy's rules: a link planted since was hashed, pushlinks46)
                local = walked_md5(local_path, real) if real else \
                    file_md5(local_path, follow=follow)
            except OSError as exc:
                raise became(local_path, exc) from None
        if entry.md5 is not None and entry.md5 != local:
            raise ChecksumMismatchError(
                f"{self.describe(entry)} does not match {shown(local_path)} after the copy (md5 "
                f"{entry.md5}, local {local}); run the push again", expected=local,
                got=entry.md5)
        if md5_cache is not None:
            md5_cache.put(local_path, st, local)  # (settled as of now: see Md5Cache.put)
        return entry

    def _whole(self, local_path: str, folder: RemoteEntry, name: str,
               replace: Optional[RemoteEntry], progress: Optional[ProgressFn],
               read: tuple[bool, str]) -> RemoteEntry:
        """:meth:`_copy` until a copy is of one version of ``local_path`` (``read``: its
        follow and real, :meth:`upload`'s)."""
        for _ in range(_TRIES - 1):
            try:
                return self._copy(local_path, folder, name, replace, progress, read)
            except SourceChangedError:
                pass
        return self._copy(local_path, folder, name, replace, progress, read)

    def _copy(self, local_path: str, folder: RemoteEntry, name: str,
              replace: Optional[RemoteEntry], progress: Optional[ProgressFn],
              read: tuple[bool, str]) -> RemoteEntry:
        """Copy ``local_path`` to ``folder/name`` atomically (temp file + rename)."""
        follow = read[0]
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise UsageError(f"bad file name {name!r}: a name must not be empty, '.', '..' "
                             "or contain '/'")
        folder_rel = self._rel(folder.id)
        folder_full, st = self._stat(folder_rel, folder.id)
        if not _stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{folder_full} is a file, not a folder")
        rel = f"{folder_rel}/{name}" if folder_rel else name
        target = self._full(rel)
        if os.path.isdir(target):
            raise UsageError(f"{target} is a folder; cannot replace it with the file "
                             f"{shown(local_path)}")
        try:
            src_st = os.stat(local_path, follow_symlinks=follow)
        except FileNotFoundError:
            raise NotFoundError(f"local file {shown(local_path)} does not exist") from None
        tmp = os.path.join(folder_full, upload_name(UPLOAD_PREFIX))
        h, aside = hashlib.md5(), None
        try:
            with open_sent(local_path, *read) as src, open(tmp, "xb") as dst:
                while True:
                    buf = src.read(_CHUNK)
                    if not buf:
                        break
                    h.update(buf)
                    dst.write(buf)
                    if progress is not None:
                        progress(len(buf))
                # Written into while read (torch.save into the file itself): a torn copy,
                # which replaced the verified one here at once (attacksync34).
                moved = _version(os.fstat(src.fileno())) != _version(src_st)
                dst.flush()
                # On a Drive mount, fsync is what pushes the bytes towards Drive before
                # the rename makes the file visible under its real name.
                os.fsync(dst.fileno())
            os.utime(tmp, ns=(src_st.st_atime_ns, src_st.st_mtime_ns))
            # Not over the verified copy: kept aside until the new pair is (local_held).
            aside = None if moved or replace is not None else self._hold(rel)
            _unlink_quietly(tmp) if moved else os.replace(tmp, target)
            self._replaced_over(aside)
        except OSError as exc:
            _unlink_quietly(tmp)
            if aside is not None:
                self._unhold(rel, aside)
            raise write_error(exc, self.root, shown(local_path), target, src_st.st_size) from exc
        except BaseException:
            _unlink_quietly(tmp)
            # (a Ctrl-C before the new copy's rename: the old one back at its name)
            if aside is not None:
                self._unhold(rel, aside)
            raise
        if moved:
            raise SourceChangedError(
                f"{shown(local_path)} kept changing while it was uploaded ({_TRIES} tries); "
                f"{target} was left as it was. Upload it once the writer is done (write "
                "checkpoints to a temporary name and rename them into place).")
        if replace is not None and self._rel(replace.id) not in (rel, ""):
            self._drop(rel, replace)  # renamed: drop the replaced file
        final_st = os.stat(target)
        self._remember(target, final_st, h.hexdigest(), written=True)
        return self._entry(rel, final_st, target)

    def delete(self, entry: RemoteEntry, *, trash: bool = False) -> None:
        """Delete a file or folder; with ``trash``, move it into the trash."""
        rel = self._rel(entry.id)
        if not rel:
            raise UsageError(f"refusing to delete the store root {self.root}")
        full = self._full(rel)
        if not os.path.lexists(full):
            raise NotFoundError(f"no such file or folder: {full}")
        parent_full = self._full(rel.rsplit("/", 1)[0] if "/" in rel else "")
        if not self._inside(parent_full):
            raise UsageError(f"{full} lies behind a link leading outside {self.root}")
        if entry.is_dir and not os.path.islink(full):
            left_unmarked(full)   # (a run on another machine may have begun there since)
        # A copy kept aside (local_held) goes for good: the file its replacement took the
        # place of, overwritten before; trashed, a mirror filled the disk a copy a push.
        held = not entry.is_dir and stands_for(rel.rsplit("/", 1)[-1]) is not None
        to = local_trash.place(rel, self.trash_in) if trash and not held else None
        local_trash.remove(full, self.root, to, self.trash_in)

    def quota(self, into: Optional[RemoteEntry] = None) -> Quota:
        """The filesystem's size and use; ``trash`` is the size of the trash."""
        du = shutil.disk_usage(self.root)
        trash = 0
        place = self.trash_place()   # (a link there is no trash: not its target's size)
        for dirpath, _dirs, files in () if os.path.islink(place) else os.walk(place):
            for f in files:
                try:
                    trash += os.lstat(os.path.join(dirpath, f)).st_size
                except OSError:
                    pass
        return Quota(total=du.total, used=du.total - du.free, trash=trash)


def _version(st: os.stat_result) -> tuple[int, int, int]:
    """What a write into a file moves (a FUSE mount may show another ctime by descriptor)."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _sweep(path: str, rest: str, folder: os.stat_result) -> None:
    """Remove the copy at ``path`` a dead process left (:func:`drivestage.temps.upload_left`;
    ``folder``: the stat of the folder it is in)."""
    try:
        if upload_left(rest, os.lstat(path), folder=folder):
            os.unlink(path)
    except OSError:
        pass


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass

