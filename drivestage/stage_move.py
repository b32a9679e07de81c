"""``move_staged``: the files a pull staged into one DEST moved into another, each with its
stamp, so that a pull of the same SRC into the new DEST finds its copy staged: one metadata
call (the stamp's id re-checked), not a byte downloaded.

A caller that moves where it pulls to (the trainer's ``drive:`` weights, out of the
dataset's tree: a new version of the dataset's archive bringing ``weights/<name>`` was
refused over them) keeps its users' copies this way. Only drivestage's own copies move: a
plain download (no extraction, nothing removed) whose file is this user's regular file
with the stamp's size, mtime and md5. Anything else at DEST is left as it is, however it
is named: a file of the user's is never moved, nor removed.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import stat
from dataclasses import dataclass, field
from typing import Callable, Collection, Optional

from drivestage import stamps
from drivestage.extract.statedir import state_lock
from drivestage.extract.validation import STATE_DIR
from drivestage.local_reads import mount_read
from drivestage.localfs import atomic_file, file_md5, fitted_name
from drivestage.mtimes import same_mtime
from drivestage.pool import leavable
from drivestage.stamps import Stamp

log = logging.getLogger(__name__)

__all__ = ["Moved", "move_staged"]

#: What a stamp of a copy that is only a download never holds (an extraction's, a removed
#: archive's, a local original's): such a copy stays where its members are.
_NOT_A_DOWNLOAD = ("members", "stale", "unrecorded", "original", "removed")


@dataclass
class Moved:
    """What :func:`move_staged` did: ``moved`` (old path, new path), ``copied`` (old path,
    new path: the old one is also an extracted archive's member, which stays), ``dropped``
    (old copies removed: the new DEST held the same bytes, staged), ``left`` (path, why):
    files staged there that stay, and why."""

    moved: list[tuple[str, str]] = field(default_factory=list)
    copied: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    left: list[tuple[str, str]] = field(default_factory=list)


def move_staged(old: str, new: str, only: Optional[Collection[str]] = None) -> Moved:
    """Move every file that a pull without ``-x`` staged into folder ``old`` into folder
    ``new`` (made when needed), with its stamp: a later ``pull(SRC, new)`` finds it staged
    and re-checks it with one call, as it would have in ``old``. ``only``: the SRCs (as
    the pulls were given them) whose copies move; None: every one. A copy whose name
    ``new`` holds already is removed only where that file is a staged copy of the same
    bytes, or of another version of the same Drive file; else both stay. ``old``'s state
    folder goes once it is empty (a stamp whose copy is gone is dropped). Copies that
    changed since they were staged, and files no pull staged, stay as they are. ``new`` on another file system: each copy is copied there,
    then removed; ``new`` the same folder as ``old`` (a link to it): nothing moves."""
    out = Moved()
    old, new = os.path.abspath(old), os.path.abspath(new)
    if _same_folder(old, new) or not os.path.isdir(os.path.join(old, STATE_DIR)):
        return out
    for stamp in stamps.every(old):
        name = stamp.get("file")
        if stamp.get("version") != stamps.VERSION or not _plain(stamp) or \
                not isinstance(name, str) or not name or "/" in name or name in (".", "..") \
                or (only is not None and stamp.get("src") not in only):
            continue
        with state_lock(old, fitted_name(name) + ".lock", _waiting(old, name), transient=True):
            os.makedirs(new, exist_ok=True)
            with state_lock(new, fitted_name(name) + ".lock", _waiting(new, name),
                            transient=True):
                _move_one(old, new, name, stamp, out)
    _remove_if_empty(old)
    return out


def _same_folder(old: str, new: str) -> bool:
    """Whether ``new`` is ``old`` (by name, or through a link or a bind mount): each copy
    would be taken for its own duplicate and removed, after its lock, taken twice, waited
    for itself for ever (attackmerge33)."""
    try:
        return old == new or os.path.samefile(old, new)
    except OSError:   # (``new`` not made yet: another folder)
        return False


def _plain(stamp: Stamp) -> bool:
    """Whether ``stamp`` is of a download alone (see :data:`_NOT_A_DOWNLOAD`)."""
    return not stamp.get("extracted") and not any(stamp.get(k) for k in _NOT_A_DOWNLOAD)


def _waiting(folder: str, name: str) -> Callable[[], None]:
    def say() -> None:
        log.warning("another pull of %s is running; waiting for it",
                    os.path.join(folder, name))
    return say


def _move_one(old: str, new: str, name: str, stamp: Stamp, out: Moved) -> None:
    """``old/<name>`` and its ``stamp`` moved into ``new`` (under both names' locks), or
    noted in ``out`` as left, or dropped as a duplicate of ``new/<name>``."""
    now = stamps.own(old, name, stamp["id"])   # read again, under the lock
    source, target = os.path.join(old, name), os.path.join(new, name)
    if now is None or not _plain(now):
        return
    seen = _ident(source)   # (before its bytes are read: see _changed)
    why = _unlike(source, now)
    if why is not None:
        if why:
            out.left.append((source, why))
        else:
            # Nothing there: a stamp without its copy (moved, then killed before its stamp
            # went; removed by hand), which a pull into ``old`` would re-stage all the same.
            # Left, it kept ``old``'s state folder (and ``old``) for good (attackmerge33).
            stamps.drop(now)
        return
    # Also an archive's member (extracted there, then a pull found it staged): it stays,
    # the archive's; a copy goes. Moved, the extraction missed it at its next pull and put
    # it back (the archive downloaded again, where it was removed).
    member = _member(old, name)
    if os.path.lexists(target):
        there = _found(new, name, now)
        if there is not None and _unlike(target, there) is None:
            # The same file staged there already (moved before, then staged here again
            # by an older caller; its bytes, or another version): this copy is a duplicate.
            if not member:
                if _changed(source, seen, out):
                    return
                os.unlink(source)
                out.dropped.append(source)
            stamps.drop(now)
        else:
            out.left.append((source, f"{target} is there already"))
        return
    moved = {k: v for k, v in now.items() if not k.startswith("_")}
    done = out.moved
    if _changed(source, seen, out):
        return
    try:
        if member:
            _copy(source, target, seen)
            moved["mtime_ns"] = os.stat(target).st_mtime_ns
            done = out.copied
        else:
            _rename(source, target, moved, seen)
    except OSError as exc:  # a full disk, a read-only folder
        out.left.append((source, f"it cannot be moved to {target} ({exc.strerror})"))
        return
    stamps.write(new, moved)
    if not member and os.path.lexists(source):   # (copied across file systems)
        os.unlink(source)
    stamps.drop(now)
    done.append((source, target))


#: What identifies a file's bytes as read: device, inode, size, mtime, mode.
_Ident = tuple[int, int, int, int, int]


def _ident(path: str) -> Optional[_Ident]:
    """``path``'s :data:`_Ident` (not through a link), or None where there is nothing."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode


def _changed(source: str, seen: Optional[_Ident], out: Moved) -> bool:
    """Whether ``source`` is no longer the file whose bytes were checked (``seen``, taken
    before): written in place (``cp`` over it), or another file or a link put at its name
    meanwhile, by a program that takes no lock. Noted in ``out`` as left: removed or moved
    then, the user's new bytes were lost, or stamped as the copy checked (attackmerge33)."""
    if seen is not None and _ident(source) == seen:
        return False
    out.left.append((source, "it changed while it was moved"))
    return True


def _rename(source: str, target: str, stamp: Stamp, seen: Optional[_Ident]) -> None:
    """``source`` renamed to ``target`` (the mtime stays, which ``stamp`` records), or, on
    another file system (``new`` or ``old`` a link to a folder elsewhere), copied there:
    ``source`` goes once the new stamp is written (attackmerge33: it stayed in ``old``,
    and a new version of the dataset's archive bringing its path was refused over it)."""
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy(source, target, seen)
        stamp["mtime_ns"] = os.stat(target).st_mtime_ns


def _member(folder: str, name: str) -> bool:
    """Whether an extraction's stamp records ``folder/<name>``: seen from ``folder`` and from
    where it leads (``ln -s /content/datasets/data /content/data``: the pull's stamp is
    above the link's target)."""
    real = os.path.realpath(folder)
    return bool(stamps.recorded(folder, [name])) or \
        (real != folder and bool(stamps.recorded(real, [name])))


def _copy(source: str, target: str, seen: Optional[_Ident]) -> None:
    """``source``'s bytes at ``target``, written whole or not at all, read from the very file
    checked (``seen``: not through a link put there since; OSError else)."""
    def check() -> None:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode) != seen:
            raise OSError(errno.ESTALE, "it changed while it was moved")

    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as src:
        check()
        with atomic_file(target, mode=0o644) as dst:
            shutil.copyfileobj(src, dst, 4 << 20)
            check()   # (written in place while copied: the copy is not put in place)


def _found(dest: str, name: str, like: Stamp) -> Optional[Stamp]:
    """The stamp in ``dest`` of a copy at ``name`` that stands for ``like``'s: of its bytes
    (same md5 and size), else of another version of the same Drive file (same id: the pull
    there brings Drive's version, as it would have in the old folder; left, the old copy
    stayed in the dataset's tree for good: attackpull34)."""
    found = [s for s in stamps.of(dest, name) if _plain(s)]
    same = [s for s in found if s.get("md5") == like.get("md5") and
            s.get("size") == like.get("size")]
    return next(iter(same or [s for s in found if s.get("id") == like.get("id")]), None)


def _unlike(path: str, stamp: Stamp) -> Optional[str]:
    """None when ``path`` is this user's regular file of ``stamp``'s size, mtime and md5 (the
    copy it stands for, as staged); else why not ("" when nothing is there)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
        return "it is not a regular file of this user's"
    if st.st_size != stamp.get("size") or \
            not same_mtime(st.st_mtime_ns, stamp.get("mtime_ns"), stamp.get("_shown_ns")):
        return "it changed since it was staged"
    # What verified the bytes: the stamp's SHA-256 where it keeps one (Drive listed no md5,
    # or the pull verified by it: an md5 that lied left such a copy behind), else the md5.
    algo, want = ("sha256", stamp.get("sha256")) if stamp.get("sha256") else \
        ("md5", stamp.get("md5"))
    if not isinstance(want, str) or not want:
        return "its stamp holds no checksum of it"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    try:
        same = mount_read(lambda: _digest(fd, algo), st.st_dev) == want.lower()   # (hang52b)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    finally:
        os.close(fd)
    return None if same else "its bytes are not those staged"


def _digest(fd: int, algo: str) -> str:
    """The hex ``algo`` (md5, sha256) digest of the open file ``fd``, from its start."""
    if algo == "md5":
        return file_md5(fd)
    h, offset = hashlib.new(algo), 0
    while True:
        with leavable():   # (on a hung mount, aside: mount_read)
            buf = os.pread(fd, 4 << 20, offset)
        if not buf:
            return h.hexdigest()
        h.update(buf)
        offset += len(buf)


def _remove_if_empty(folder: str) -> None:
    """``folder``'s state folder removed when nothing is left in it but the lock files of
    copies no one holds: a move (or a pull) killed as it let a copy's lock go leaves that
    file, and the state folder (the trainer's ``weights/`` with it) stayed for good
    (attackpull34). Each goes as its holder's would (taken without waiting, then removed);
    one held, the merge lock (``.flock``), or anything else there keeps the folder."""
    state = os.path.join(folder, STATE_DIR)
    try:
        names = os.listdir(state)
    except OSError:
        return
    if not all(n.endswith(".lock") for n in names):
        return
    for name in names:
        with state_lock(folder, name, None, transient=True):
            pass   # (taken: removed as its block ends; held by another: it stays)
    try:
        os.rmdir(state)   # only an empty one
    except OSError:
        pass
