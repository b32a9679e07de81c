"""Moving an extracted tree into DEST, one extraction at a time, as ``unzip`` merges.

The merge lock is ``DEST/.drivestage/merge.flock`` (an ``flock`` on a file of drivestage's
state folder): every extraction takes it for checking its members against DEST and moving
them in - never while decompressing - so extractions into one DEST from threads and processes
overlap their decompression and merge one after another. The kernel drops the lock of a
process that dies. The merge itself walks DEST through folder descriptors opened with
``O_NOFOLLOW``, so it never goes through a link even if DEST changes under it.
"""
from __future__ import annotations

import errno
import logging
import os
import posixpath
import secrets
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Optional

from drivestage.errors import ArchiveError, DestChangedError
from drivestage.extract.members import Entry, ancestors
from drivestage.extract.owned import NOTHING, Owned, own_folder
from drivestage.extract.statedir import state_lock
from drivestage.extract.tempdir import DIR_FLAGS, OLD_PREFIX, TempDir, remove_tree
from drivestage.extract.validation import STATE_DIR

log = logging.getLogger(__name__)

MERGE_LOCK = f"{STATE_DIR}/merge.flock"   # relative to the folder it serialises
_RETRIES = 8   # a path that keeps changing under the merge (another program) is an error


@contextmanager
def merge_lock(folder: str) -> Iterator[None]:
    """Hold the merge lock of ``folder`` (threads and processes alike wait for it), reached
    through its state folder's checked descriptor (:mod:`.statedir`: whoever can write
    ``folder`` can put a link or a folder of theirs at ``.drivestage``; a lock file made
    through the link lands elsewhere, and one of theirs can be held forever)."""
    def waiting() -> None:
        log.debug("waiting for another extraction into %s to finish its merge", folder)

    with state_lock(folder, posixpath.basename(MERGE_LOCK), waiting):
        yield


def archive_tree(entries: list[Entry]) -> dict[str, Entry]:
    """Every path the merge will bring, implied parent folders included (not to be changed:
    the same list asked again, the check's and the merge's, gets the same tree)."""
    global _last_tree
    last = _last_tree
    if last is not None and last[0] is entries and last[1] == len(entries):
        return last[2]
    tree = {e.path: e for e in entries}
    for parent in ancestors(tree):
        if parent not in tree:
            tree[parent] = Entry(parent, "dir")
    _last_tree = (entries, len(entries), tree)   # (one step: another thread sees old or new)
    return tree


#: The last list :func:`archive_tree` was asked of (held: no other list gets its id), its
#: length and its tree: a pull -x asks for the same list's tree in its check and again under
#: the merge lock, 20,000 members each time (tail39). Job's lists are never changed in place.
#: Released when the extraction ends (:func:`release_tree`).
_last_tree: Optional[tuple[list[Entry], int, dict[str, Entry]]] = None


def release_tree(asked: list[list[Entry]]) -> None:
    """Forget the tree of any list in ``asked`` (an extraction's, as it ends): it held every
    member's Entry until the next extraction, megabytes for 20,000 members, for good in a
    long-lived process (a notebook's kernel: leftovers41). Another extraction's tree, made
    meanwhile in another thread, is kept."""
    global _last_tree
    last = _last_tree
    if last is not None and any(last[0] is entries for entries in asked):
        _last_tree = None   # (another's made since, lost: it is made again when asked)


@dataclass
class Plan:
    """How the archive meets DEST as it is now."""

    tree: dict[str, Entry]
    kept: frozenset[str]      # the archive's folders that merge into a real folder of DEST
    replaces_links: bool      # some member replaces a link of DEST (or a folder holding one)
    #: What DEST holds at the archive's paths other than a folder (a file, a link, a FIFO),
    #: as lstat'ed here: what the merge would replace (see :mod:`.occupied`).
    occupied: dict[str, os.stat_result] = field(default_factory=dict)
    #: Members that are not folders where DEST has a folder the merge may not replace, in
    #: the order met (only with ``lenient``: else the first is refused at once).
    clashes: list[str] = field(default_factory=list)
    #: Members left out of the plan: a later archive of the pull holds their paths
    #: (:func:`drivestage.extract.job.check_against_dest`'s ``later``).
    later: frozenset[str] = frozenset()


def plan_merge(archive: str, dest: str, entries: list[Entry], owned: Owned = NOTHING,
               lenient: bool = False) -> Plan:
    """Check the members against DEST: a member that is not a folder never replaces a folder
    of DEST (it could hold anything of the user's), unless ``owned`` (the records of an
    earlier extraction of this archive) holds that folder and all it has (see
    :mod:`.owned`). ``lenient``: such a member is listed (:attr:`Plan.clashes`), not
    refused."""
    tree = archive_tree(entries)
    kept: set[str] = set()
    replaces_links = False
    occupied: dict[str, os.stat_result] = {}
    clashes: list[str] = []
    for path in _below_kept(tree, kept):
        try:
            st = os.lstat(os.path.join(dest, path))
        except (FileNotFoundError, NotADirectoryError):
            continue
        mode = st.st_mode
        if not stat.S_ISDIR(mode):
            occupied[path] = st
        if stat.S_ISDIR(mode) and tree[path].kind != "dir":
            links = _own_folder_at(dest, path, owned)
            if links is None:
                if not lenient:
                    raise _folder_error(archive, dest, path)
                clashes.append(path)
                continue
            replaces_links = replaces_links or links  # not kept: its entries go (links.View)
        elif stat.S_ISDIR(mode):
            kept.add(path)
        elif stat.S_ISLNK(mode):
            replaces_links = True
    return Plan(tree, frozenset(kept), replaces_links, occupied, clashes)


def _below_kept(tree: dict[str, Entry], kept: set[str]) -> Iterator[str]:
    """The paths of ``tree`` whose parent is DEST itself or a folder in ``kept`` (which the
    caller fills as it goes), parents first, a level at a time in name order. Nothing is
    there below a folder DEST lacks (or has as a file or link), so a new ``VOCdevkit/``
    costs one lstat, not one per member."""
    children: dict[str, list[str]] = {}
    for path in tree:
        children.setdefault(path.rpartition("/")[0], []).append(path)
    level = sorted(children.get("", ()))
    while level:
        yield from level
        level = sorted(c for path in level if path in kept for c in children.get(path, ()))


def _own_folder_at(dest: str, path: str, owned: Owned) -> Optional[bool]:
    """:func:`own_folder` of ``path`` (reached from ``dest``; its parents are real folders:
    :func:`plan_merge` walks only below those)."""
    if not owned:
        return None
    parent, name = posixpath.split(path)
    try:
        fd = os.open(os.path.join(dest, parent) if parent else dest, DIR_FLAGS)
    except OSError:
        return None
    try:
        return own_folder(fd, name, path, owned)
    finally:
        os.close(fd)


def folder_error(archive: str, dest: str, path: str) -> ArchiveError:
    """The refusal of a member that is not a folder where DEST has a folder."""
    return _folder_error(archive, dest, path)


def _folder_error(archive: str, dest: str, path: str) -> ArchiveError:
    return ArchiveError(
        f"{os.path.basename(archive)}: member {path} is a file, but "
        f"{os.path.join(dest, path)}"
        " is a folder; move that folder away or extract elsewhere")


def merge(archive: str, tmp: TempDir, dest: str, tops: list[str],
          owned: Owned = NOTHING) -> None:
    """Move the tree in the temporary folder ``tmp`` into ``dest``: a path DEST lacks arrives by one rename (a
    whole new ``VOCdevkit/`` at once); folders on both sides are merged; a file or link
    replaces what sits at its path by one atomic rename; a folder replaces a file or link of
    DEST (put aside inside ``tmp`` first). A folder of DEST is never replaced, but one that
    ``owned`` holds whole (an earlier extraction of this archive made it, see :mod:`.owned`)
    is: put aside inside ``tmp``, judged again there (nothing else writes there), then the
    member renamed into its place. Run it under :func:`merge_lock`."""
    dest_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _merge_dir(_Ctx(archive, dest, tmp.fd, owned), tmp.fd, dest_fd, tops, "")
    finally:
        os.close(dest_fd)


class _Ctx:
    def __init__(self, archive: str, dest: str, tmp_fd: int, owned: Owned):
        self.archive, self.dest, self.tmp_fd, self.asides = archive, dest, tmp_fd, 0
        self.owned = owned


def _merge_dir(ctx: _Ctx, src_fd: int, dst_fd: int, names: list[str], prefix: str) -> None:
    for name in names:
        rel = prefix + name
        src_is_dir = stat.S_ISDIR(os.lstat(name, dir_fd=src_fd).st_mode)
        for _ in range(_RETRIES):
            try:
                if _merge_one(ctx, src_fd, dst_fd, name, rel, src_is_dir):
                    break
            except OSError as exc:
                if exc.filename == name:  # relative to a folder's descriptor: say where
                    exc.filename = os.path.join(ctx.dest, rel)
                raise
        else:
            raise DestChangedError(f"{os.path.join(ctx.dest, rel)} kept changing while "
                               f"{os.path.basename(ctx.archive)} "
                               "was moved into place; is another program writing there? "
                               "Extract again")


def _merge_one(ctx: _Ctx, src_fd: int, dst_fd: int, name: str, rel: str,
               src_is_dir: bool) -> bool:
    """One path; False when DEST changed under it and it must be looked at again."""
    try:
        dst_mode = os.lstat(name, dir_fd=dst_fd).st_mode
    except FileNotFoundError:
        dst_mode = None
    if dst_mode is not None and stat.S_ISDIR(dst_mode):
        if not src_is_dir:
            if rel in ctx.owned:
                return _replace_own_folder(ctx, src_fd, dst_fd, name, rel)
            raise _folder_error(ctx.archive, ctx.dest, rel)
        try:
            child_dst = os.open(name, DIR_FLAGS, dir_fd=dst_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                return False  # replaced since the lstat
            raise
        try:
            child_src = os.open(name, DIR_FLAGS, dir_fd=src_fd)
            try:
                _merge_dir(ctx, child_src, child_dst, sorted(os.listdir(child_src)), rel + "/")
            finally:
                os.close(child_src)
        finally:
            os.close(child_dst)
        return True
    aside = None
    if src_is_dir and dst_mode is not None:  # a file or link of DEST where a folder goes
        aside = _put_aside(ctx, dst_fd, name)
        if aside is None:
            return False
    try:
        os.rename(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    except OSError as exc:
        if aside is not None:
            _restore(ctx, dst_fd, aside, name, rel)
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR):
            return False  # something appeared at the path since the lstat
        raise
    if aside is not None:
        os.unlink(aside, dir_fd=ctx.tmp_fd)
    return True


def _replace_own_folder(ctx: _Ctx, src_fd: int, dst_fd: int, name: str, rel: str) -> bool:
    """A file or link member in place of a folder an earlier extraction of the archive made
    (``ctx.owned``). A kill between the two renames leaves the path empty and the old folder
    in the temporary folder (removed by the next extraction): the rerun merges the member."""
    aside = _put_aside(ctx, dst_fd, name)
    if aside is None:
        return False
    # Judged again where nothing but this merge writes: a file the user put there since
    # the check goes back with its folder, and the archive is refused.
    if own_folder(ctx.tmp_fd, aside, rel, ctx.owned) is None:
        _put_back(ctx, dst_fd, aside, name, rel)
        raise _folder_error(ctx.archive, ctx.dest, rel)
    try:
        os.rename(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    except OSError as exc:
        _put_back(ctx, dst_fd, aside, name, rel)
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR):
            return False  # something appeared at the path since the rename aside
        raise
    remove_tree(ctx.tmp_fd, aside)
    return True


def _put_aside(ctx: _Ctx, dst_fd: int, name: str) -> Optional[str]:
    """Move DEST's entry ``name`` into the temporary folder: its name there, or None when it
    is gone already (DEST changed: look again)."""
    ctx.asides += 1
    aside = f"{OLD_PREFIX}{ctx.asides}"
    try:
        os.rename(name, aside, src_dir_fd=dst_fd, dst_dir_fd=ctx.tmp_fd)
    except FileNotFoundError:
        return None
    return aside


def _restore(ctx: _Ctx, dst_fd: int, aside: str, name: str, rel: str) -> None:
    """Return DEST's file or link put aside (a folder member was to take its path, and
    could not) to its path, never over what another program put there meanwhile: then,
    or where the file system has no hard links, to a name beside it, said in the log. It
    never stays in the temporary folder, which goes."""
    try:
        os.link(aside, name, src_dir_fd=ctx.tmp_fd, dst_dir_fd=dst_fd,
                follow_symlinks=False)
    except FileExistsError:
        pass
    except OSError:  # no hard links here (vfat, some FUSE mounts): a rename, if still free
        try:
            os.lstat(name, dir_fd=dst_fd)
        except FileNotFoundError:
            os.rename(aside, name, src_dir_fd=ctx.tmp_fd, dst_dir_fd=dst_fd)
            return
    else:
        os.unlink(aside, dir_fd=ctx.tmp_fd)
        return
    while True:
        kept = f"{name}.kept-{secrets.token_hex(4)}"
        try:
            os.lstat(kept, dir_fd=dst_fd)
        except FileNotFoundError:
            break
    os.rename(aside, kept, src_dir_fd=ctx.tmp_fd, dst_dir_fd=dst_fd)
    log.warning("%s changed while %s was moved into place; what was there is now %s",
                os.path.join(ctx.dest, rel), os.path.basename(ctx.archive),
                os.path.join(ctx.dest, posixpath.dirname(rel), kept))


def _put_back(ctx: _Ctx, dst_fd: int, aside: str, name: str, rel: str) -> None:
    """Return a folder put aside to its path; if something took the path meantime, to a name
    beside it (never left in the temporary folder, which goes)."""
    try:
        os.rename(aside, name, src_dir_fd=ctx.tmp_fd, dst_dir_fd=dst_fd)
        return
    except OSError:
        pass
    kept = f"{name}.kept-{secrets.token_hex(4)}"
    os.rename(aside, kept, src_dir_fd=ctx.tmp_fd, dst_dir_fd=dst_fd)
    where = os.path.join(ctx.dest, posixpath.dirname(rel), kept)
    raise DestChangedError(f"{os.path.join(ctx.dest, rel)} kept changing while "
                       f"{os.path.basename(ctx.archive)} was moved into place; is another "
                       f"program writing there? The folder that was there is now {where}; "
                       "extract again")
