"""A folder pull's second look at Drive (:func:`check_unchanged`): the files it staged are
still the versions it listed.

The walk lists the tree once, before the first byte moves, and each file is verified
against its md5 *as listed*. A file replaced on Drive after that listing was never looked
at again: a pull that ran while a dataset was being updated ended exit 0 with files of both
versions side by side (``a.txt`` of before the update beside ``big.bin`` of after it), a
tree Drive never held once the update ended, and nothing said (attack49). One listing per
folder at the end tells: a file whose md5 or size changed since the walk fails the pull
(exit 1), named; the rerun stages the new version (its stamp names the old md5). Asked only
where this pull downloaded something: a rerun that found everything staged costs nothing
more, and what it left is as listed, as before. A local folder (a mounted Drive folder, a
dataset another process updates) is looked at again the same way (pull50: it mixed alike,
exit 0): its listing hashes only a file whose identity (size, times, inode) changed since
the walk, the rest known by this process, so the look costs a stat per file. Not on a FUSE
or network mount (:func:`~drivestage.localfs.fuse_devices`, where ``vouch`` trusts no
identity either): its daemon chooses the identity, and a same-size revision that reached a
Drive mount with its mtime kept showed the old one, so the look called it unchanged and the
pull ended exit 0 with a mixed tree (attackb50). Each file staged from such a mount is read
and hashed again there (:func:`_hashed_again`): one more read of the folder (fuse51 measured
it; docs/guarantees.md).

A file the second listing no longer has (trashed on Drive, which still serves a trashed file
to its owner by id, so its download went well; moved out of its folder; deleted after it was
staged) left a tree with a file the folder no longer held, exit 0, nothing said: it fails
the pull as a file gone before its download does (:func:`gone`'s line, fuse51); a subfolder
trashed or deleted whole, as a folder gone (walk51); and one moved out of the tree or renamed
in it, whose files are still listed by its id, as well: the folder above each folder the walk
took is listed again too, and one that no longer holds it under its name fails the pull
alike (:func:`_folder_moved`, walk52). The listings of the look share one clock, as the
walk's do (:mod:`drivestage.walk_clock`).

A file deleted on Drive between the walk and its download (a live run's retention removing
an old checkpoint while its folder is pulled) failed the pull with Drive's plain 404, as a
broken server's would: :func:`gone` asks Drive for that file once and, gone, names it and
what to do (pull50); a local folder's, as gone from its folder (attackb50)."""
from __future__ import annotations

import hashlib
import os
from typing import Optional, Sequence

from drivestage import walk_clock
from drivestage.errors import DanglingShortcutError, DriveStageError, NotFoundError, \
    RemoteChangedError, TrashedError
from drivestage.held_choice import aside_for
from drivestage.localdir import LocalDirStore
from drivestage.localfs import fuse_devices, open_regular
from drivestage.lost_mounts import read_error
from drivestage.pool import check, each, leavable
from drivestage.stage_file import PullResult
from drivestage.stage_walk import Item
from drivestage.store import RemoteEntry, RemoteStore

#: Files named in the error at most (the rest counted).
NAMED = 5
#: Bytes per read of a file hashed again (:func:`_md5`).
_BLOCK = 1 << 20


def check_unchanged(store: RemoteStore, staged: Sequence[tuple[Item, PullResult]],
                    jobs: int = 1, src: str = "") -> None:
    """Raise :class:`RemoteChangedError` naming the files of ``staged`` (each listed, and
    what the pull staged of it) whose md5 or size on Drive is no longer that of the bytes
    staged (see the module doc; a version staged by another pull after the walk, the one on
    Drive now, is no mix); :class:`NotFoundError` (:func:`gone`'s line) for one the folder
    no longer lists. Nothing is asked where the pull downloaded nothing. ``src``: the folder
    pulled, named where the look's listings took too long (:mod:`drivestage.walk_clock`)."""
    if not any(r.fetched for _, r in staged):
        return
    by_folder: dict[str, list[tuple[Item, PullResult]]] = {}
    for pairs in _by_local_folder(staged).values():
        folder_id = _drive_folder(pairs)
        if folder_id is not None:
            by_folder.setdefault(folder_id, []).extend(pairs)
    changed: list[str] = []
    missing: list[tuple[str, Item, Optional[str]]] = []   # (its folder's id, it, how if known)
    kept: list[tuple[Item, PullResult]] = []   # as listed: a FUSE one's bytes may not be
    # Each folder taken, by the one above it: listed too (a folder of folders holds no file
    # staged), to tell it still holds it under that name (walk52). A local folder's id is its
    # path: one moved or renamed answers "not found" itself.
    links = {} if isinstance(store, LocalDirStore) else _links(staged)
    folders = list(by_folder) + sorted({up for up, *_ in links.values()} - set(by_folder))
    clock = walk_clock.WalkClock(src or "the folders pulled, again")
    # (``jobs`` folders at a time, as the walk listed them: each listing is a round trip)
    listings = each(lambda f: walk_clock.run(clock, store.list,
                                             RemoteEntry(id=f, name="", is_dir=True)),
                    folders, jobs, "drivestage-relist")
    unlisted: list[str] = []   # folders whose listing Drive answered "not found"
    # Each folder's listing: the names of each id in it (two shortcuts to one folder: two)
    relisted: dict[str, dict[str, list[str]]] = {}
    for folder_id, listing in zip(folders, listings):
        if isinstance(listing, NotFoundError):
            unlisted.append(folder_id)   # (gone since, or not listable by id here: asked)
            continue
        if isinstance(listing, BaseException):
            raise listing
        now = {e.id: e for e in listing}
        ids: dict[str, list[str]] = {}
        for listed in listing:
            ids.setdefault(listed.id, []).append(listed.name)
        relisted[folder_id] = ids
        named = {e.name: e for e in listing if not e.is_dir}
        for it, r in by_folder.get(folder_id, ()):
            # (gone by its id, a file of its name there now: a new file at its path, which
            # another pull may have staged since, stamped as such: compared as a version.
            # Renamed since, it is no longer at its path: what is there now is compared, or
            # the path holds nothing: a renamed file was left staged under a name the folder
            # no longer held, exit 0, and the rerun staged it again beside it: attackd51)
            e = now.get(it.entry.id)
            # (a copy kept aside the walk took under the name it stands for: not renamed)
            renamed = e.name if e is not None and e.name != it.entry.name and \
                aside_for(e) != it.entry.name else None
            if e is None or renamed is not None:
                e = named.get(it.entry.name)
            if e is None:
                missing.append((folder_id, it, None if renamed is None else
                                f"renamed to {renamed}"))
            # (a local file listed without its md5, an archive its reader hashes: its size)
            elif e.size != r.size or e.md5 is not None and \
                    e.md5.lower() != (r.md5 or "").lower():
                changed.append(it.src)
            else:
                kept.append((it, r))
    if isinstance(store, LocalDirStore):
        again, gone_since = _hashed_again(store, kept, jobs)
        changed += again
        missing += [(it.entry.parent_id or "", it, None) for it in gone_since]
    if changed:
        more = f" and {len(changed) - NAMED} more" if len(changed) > NAMED else ""
        where = "in its folder" if isinstance(store, LocalDirStore) else "on Drive"
        raise RemoteChangedError(
            f"{', '.join(changed[:NAMED])}{more} changed {where} while this pull ran (a new "
            f"version since the folder was listed): what it staged mixes files of before and "
            f"after that change. Run again to stage the new version (only what changed is "
            f"fetched)")
    folder_gone = _folder_gone(store, by_folder, unlisted, missing) or \
        _folder_moved(store, staged, links, relisted)
    if folder_gone is not None:
        raise folder_gone
    # Drive asked about each file once (files.get) until one is gone, then about NAMED at
    # most: a folder trashed whole is no thousand requests; the rest counted as unlisted.
    went: Optional[tuple[Item, str]] = None
    others = 0
    for n, (folder_id, it, known) in enumerate(missing):
        if went is not None and n >= NAMED:
            others += len(missing) - n
            break
        how = known or _missing(store, folder_id, it)
        if how is not None and went is None:
            went = it, how
        elif how is not None:
            others += 1
    if went is not None:
        raise _went_away(store, *went, others)


def _hashed_again(store: LocalDirStore, kept: Sequence[tuple[Item, PullResult]], jobs: int
                  ) -> tuple[list[str], list[Item]]:
    """The files of ``kept`` on a FUSE or network mount whose bytes there hash to another
    md5 than those staged (their srcs), and those gone meanwhile: each such file read and
    hashed again, ``jobs`` at a time (see the module doc). A file on a local disk is not
    read: its identity, which the second listing checked, tells."""
    devices = fuse_devices()
    if not devices:
        return [], []
    # (the stats in one look aside, left by a Ctrl-C where the mount hangs: hang52)
    chosen = store.looked(lambda: [(it, r) for it, r in kept
                                   if r.md5 and _on(store.describe(it.entry), devices)])

    def hashed(pair: tuple[Item, PullResult]) -> Optional[str]:
        full = store.describe(pair[0].entry)
        try:
            return _md5(full, pair[1].size)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise read_error(exc, full) from exc

    changed: list[str] = []
    went: list[Item] = []
    for (it, r), md5 in zip(chosen, each(hashed, chosen, jobs, "drivestage-rehash")):
        if isinstance(md5, BaseException):
            raise md5
        if md5 is None:
            went.append(it)
        elif md5.lower() != (r.md5 or "").lower():
            changed.append(it.src)
    return changed, went


def _md5(full: str, size: int) -> str:
    """The md5 of the regular file at ``full`` (a FIFO put there since is not waited on),
    read in blocks, a Ctrl-C taken between two (:func:`drivestage.pool.check`): a file of
    gigabytes read again from a Drive mount takes minutes. ``""`` where it holds more than
    ``size`` bytes (the bytes staged): read no further, it changed (a file growing on a
    network mount, whose client asks its size again at each read past the end, was read as
    long as it grew: attackd51)."""
    h, left = hashlib.md5(), size + 1
    # (A read of a mount that stopped answering is left by a Ctrl-C: pool.leavable, hang51)
    with leavable():
        opened = os.fdopen(open_regular(full), "rb")
    with opened as fh:
        while True:
            check()
            with leavable():
                block = fh.read(min(_BLOCK, left))
            if not block:
                return h.hexdigest()
            left -= len(block)
            if left <= 0:
                return ""
            h.update(block)


def _on(full: str, devices: frozenset[int]) -> bool:
    try:
        return os.stat(full).st_dev in devices
    except OSError:
        return False    # (gone: the listing just had it; the look of a stat is enough)


def _missing(store: RemoteStore, folder_id: str, it: Item) -> Optional[str]:
    """How ``it``, staged by this pull, went from its folder, whose second listing no longer
    has it: trashed (Drive still serves a trashed file to its owner), deleted, or moved out
    of it, as Drive says (one files.get). None where the file is in that folder still (a
    listing that lags behind is no reason to fail a pull)."""
    try:
        now = store.stat(it.entry)
    except TrashedError:
        how = "trashed"
    except NotFoundError:
        how = "deleted"
    except DriveStageError:
        how = "no longer listed in its folder"
    else:
        parents = set(now.parent_ids) or ({now.parent_id} if now.parent_id is not None
                                          else set())
        if folder_id in parents and not now.is_dir:
            return None
        how = "moved out of its folder"
    return how


def _folder_gone(store: RemoteStore, by_folder: dict[str, list[tuple[Item, PullResult]]],
                 unlisted: Sequence[str],
                 missing: Sequence[tuple[str, Item, Optional[str]]]) -> Optional[NotFoundError]:
    """The error naming a folder the pull staged files from that went itself (trashed or
    deleted) since the walk listed it, where one did: its files were named one by one
    (trashed with it, so unlisted), or not at all where its listing answered "not found"
    (the pull ended exit 0 with a folder the tree no longer held: fuse51's left). Asked of
    the folders whose listing failed so or lacks a file staged, one files.get each, parent
    before child, until one went, NAMED at most (a tree trashed whole: no thousand
    requests). None where every folder asked is there still: its files, asked about one by
    one, tell."""
    asked = {f for f in (*unlisted, *(f for f, _, _ in missing)) if by_folder.get(f)}
    for folder_id in sorted(asked, key=lambda f: by_folder[f][0][0].folder)[:NAMED]:
        pairs = by_folder[folder_id]
        how = _how_gone(store, RemoteEntry(id=folder_id, name="", is_dir=True))
        if how is None:
            continue
        first = pairs[0][0]
        local = first.folder
        inside = {it.src for f in asked for it, _ in by_folder[f]
                  if it.folder == local or it.folder.startswith(local + os.sep)}
        others = len({it.src for _, it, _ in missing} - inside)
        return _folder_went_away(store, first.src.rsplit("/", 1)[0], local, how,
                                 len(inside), others)
    return None


def _folder_moved(store: RemoteStore, staged: Sequence[tuple[Item, PullResult]],
                  links: dict[str, "_Link"], relisted: dict[str, dict[str, list[str]]]
                  ) -> Optional[NotFoundError]:
    """The error naming a folder the walk took that the one above it, listed again, no
    longer holds under the name it had: moved out of the tree pulled, or renamed in it,
    since the walk. Its files are listed by its id, still there: the pull ended exit 0 with
    a folder at a path Drive no longer had, and the rerun staged it again under its new
    name beside it (walk51's left). Parent before child; a folder the listing lacks is asked
    about (one files.get, NAMED at most): a listing that lags is no reason to fail a pull."""
    asked = 0
    for folder_id, (above, folder, src, local) in sorted(links.items(),
                                                         key=lambda kv: kv[1][3]):
        listing = relisted.get(above)
        now = None if listing is None else listing.get(folder_id)
        if listing is None or now is not None and folder.name in now:
            continue   # (there still; or the one above answered "not found": its files tell)
        if now is not None:
            how: Optional[str] = f"renamed to {now[0]}"
        elif asked == NAMED:
            break
        else:
            asked += 1
            how = _how_moved(store, folder, above)
        if how is not None:
            inside = sum(1 for it, _ in staged
                         if it.folder == local or it.folder.startswith(local + os.sep))
            return _folder_went_away(store, src, local, how, inside, 0)
    return None


def _how_moved(store: RemoteStore, folder: RemoteEntry, above: str) -> Optional[str]:
    """How ``folder``, which the listing of the folder ``above`` lacks, went, as Drive says
    (one files.get): trashed, deleted, or moved out of it; None where it is in it still."""
    now, how = _looked(store, folder)
    if now is None:
        return how
    parents = set(now.parent_ids) or ({now.parent_id} if now.parent_id is not None else set())
    return None if above in parents else "moved out of its folder"


#: A folder the walk took: (the id of the one above it, it as listed there, its src, its
#: local folder), by its id.
_Link = tuple[str, RemoteEntry, str, str]


def _links(staged: Sequence[tuple[Item, PullResult]]) -> dict[str, _Link]:
    """Every folder the walk took down to a file of ``staged``, below the one pulled (the
    first of each chain)."""
    out: dict[str, _Link] = {}
    for chain in {id(it.chain): it.chain for it, _ in staged}.values():   # (one a folder)
        for above, (folder, src, local) in zip(chain, chain[1:]):
            out.setdefault(folder.id, (above[0].id, folder, src, local))
    return out


def _how_gone(store: RemoteStore, folder: RemoteEntry) -> Optional[str]:
    """How ``folder`` went, as Drive says (one files.get): trashed or deleted; None where it
    is there still (or the look failed: its files, asked one by one, tell)."""
    return _looked(store, folder)[1]


def _looked(store: RemoteStore, folder: RemoteEntry) -> tuple[Optional[RemoteEntry],
                                                               Optional[str]]:
    """``folder`` as Drive answers it now (one files.get), or None and how it went: trashed,
    deleted, or None where the look failed."""
    try:
        return store.stat(folder), None
    except TrashedError:
        return None, "trashed"
    except NotFoundError:
        return None, "deleted"
    except DriveStageError:
        return None, None


def _folder_went_away(store: RemoteStore, src: str, local: str, how: str, staged: int,
                      others: int) -> NotFoundError:
    """:func:`_went_away`'s line for a folder (``staged``: the files staged from it and the
    folders below it; ``others``: files gone elsewhere)."""
    more = "" if not others else " (and 1 more file)" if others == 1 else \
        f" (and {others} more files)"
    files = "the file" if staged == 1 else f"the {staged} files"
    local_store = isinstance(store, LocalDirStore)
    return NotFoundError(
        f"{src} (a folder, and {files} staged from it){more} went away "
        f"{'from its folder' if local_store else 'on Drive'} while this pull ran ({how} "
        "after the folder was listed: a run still writing there, its retention removing old "
        f"checkpoints?), after it was staged: {local} is a folder "
        f"{'its source' if local_store else 'Drive'} no longer holds. Pull again once the "
        "folder is settled, or pull a run's folder once its trainer has stopped")


def _went_away(store: RemoteStore, it: Item, how: str, others: int) -> NotFoundError:
    """:func:`gone`'s line for a file that went after it was staged (``others``: more)."""
    more = "" if not others else " (and 1 more file)" if others == 1 else \
        f" (and {others} more files)"
    where = "from its folder" if isinstance(store, LocalDirStore) else "on Drive"
    return NotFoundError(
        f"{it.src}{more} went away {where} while this pull ran ({how} after the folder was "
        "listed: a run still writing there, its retention removing old checkpoints?), "
        f"after it was staged: {it.target} is a file the folder no longer holds. Pull "
        "again once the folder is settled, or pull a run's folder once its trainer has "
        "stopped")


def gone(store: RemoteStore, it: Item) -> Optional[NotFoundError]:
    """The error of a pull whose file ``it`` Drive answered "not found" for as it was
    downloaded, where Drive says so of its id too (one files.get): a file that went away
    since the folder was listed, named with what to do. None where the download's own error
    stands: the file is there (a server that lost track of its own file is not told apart
    from that by guessing), the look failed, or ``it`` is a shortcut to nothing."""
    if it.entry.unreadable:
        return None     # (a shortcut to nothing, as listed: said so already)
    try:
        store.stat(it.entry)
    except DanglingShortcutError:
        return None     # (a shortcut whose target went: what the download said stands)
    except NotFoundError as now:
        how = "trashed" if isinstance(now, TrashedError) else "deleted"
        # (a local folder's file was said gone "on Drive", a Drive never asked: attackb50)
        where = "from its folder" if isinstance(store, LocalDirStore) else "on Drive"
        return NotFoundError(
            f"{it.src} went away {where} while this pull ran ({how} after the folder was "
            "listed: a run still writing there, its retention removing old checkpoints?), "
            "so it was not staged. Pull again (only what is missing is fetched), "
            "or pull a run's folder once its trainer has stopped")
    except DriveStageError:
        pass    # (the look itself failed)
    return None


def _by_local_folder(staged: Sequence[tuple[Item, PullResult]]
                     ) -> dict[str, list[tuple[Item, PullResult]]]:
    out: dict[str, list[tuple[Item, PullResult]]] = {}
    for it, r in staged:
        out.setdefault(it.folder, []).append((it, r))
    return out


def _drive_folder(pairs: Sequence[tuple[Item, PullResult]]) -> Optional[str]:
    """The Drive folder the walk listed the files of one local folder from: the one folder
    every one of them is in. (An item's first parent is not always it: files from before
    Drive's single-parent rule may be in several folders, the first one another's.)"""
    common: Optional[set[str]] = None
    for it, _ in pairs:
        ids = set(it.entry.parent_ids) or \
            ({it.entry.parent_id} if it.entry.parent_id is not None else set())
        common = ids if common is None else common & ids
    if not common:
        return None
    first = pairs[0][0].entry.parent_id
    return first if first in common else min(common)
