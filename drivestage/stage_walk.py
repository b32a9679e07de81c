"""The walk of a folder pull (:func:`walk`): the remote tree listed before the first byte
moves, one listing per folder, each folder once (one reached twice through shortcuts, or
nested deeper than :data:`MAX_DEPTH`, is refused), the globs applied, duplicate local names
and files whose owner turned downloading off refused early. Split from
:mod:`drivestage.stage_tree` at its 500-line cap."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Sequence

from drivestage import partials, stamps, temps, walk_clock
from drivestage.errors import DownloadRestrictedError, DuplicateNameError, NotFoundError, \
    RemoteError, ShortcutCycleError, UsageError
from drivestage.extract.validation import is_reserved
from drivestage.local_tree import say_links, say_special
from drivestage.held_choice import one_each
from drivestage.localdir import LocalDirStore
from drivestage.paths import PATH_MAX, matches
from drivestage.pool import each
from drivestage.shell_words import exclude_deep, exclude_pattern
from drivestage.stage_decide import safe_name, same_mtime
from drivestage.stage_original import vouch
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)


@dataclass
class Item:
    """One file of the tree to stage."""

    entry: RemoteEntry
    src: str        # drive:a/b/c.zip, for messages and the stamp
    folder: str     # the local folder it lands in
    #: The folders the walk took from the one pulled down to its own, each as listed in the
    #: one above it (the first: the one pulled), with its src and local folder (one tuple
    #: for the files of a folder): the look again at the end asks that each is still in the
    #: one above it, under that name (walk52).
    chain: tuple[tuple[RemoteEntry, str, str], ...] = ()

    @property
    def target(self) -> str:
        return os.path.join(self.folder, safe_name(self.entry.name, self.src, self.entry.id))


def walk(store: RemoteStore, folder: RemoteEntry, src: str, local: str, jobs: int,
         include: Sequence[str] = (), exclude: Sequence[str] = (), force: bool = False,
         extract: bool = False) -> tuple[list[Item], list[str], dict[str, set[str]]]:
    """Every downloadable file under ``folder`` that the globs select, in tree order, those
    skipped for having no content, and the local names of every item listed, by local
    folder (each folder listed: an excluded one is not).

    One listing per folder; the folders of one level are listed ``jobs`` at a time (each
    listing is a round trip to Drive). An excluded folder is not listed at all. The listings
    share one time bound, as one listing's pages do (:mod:`drivestage.walk_clock`)."""
    items: list[Item] = []
    skipped: list[str] = []
    # (folder, its src, its local folder, its names below ``folder``, the ids above it, the
    # folders taken down to it: Item.chain)
    level: list[tuple[RemoteEntry, str, str, tuple[str, ...], tuple[str, ...],
                      tuple[tuple[RemoteEntry, str, str], ...]]] = [
        (folder, src, local, (), (), ((folder, src, local),))]
    placed: dict[tuple[str, ...], list[Item]] = {}
    listed: dict[str, set[str]] = {}
    # Every folder the walk takes, by id: a folder reached twice (two shortcuts to it, or two
    # parents) would be taken twice, and a tree of such pairs 2^depth times.
    walked: dict[str, str] = {folder.id: src}
    clock = walk_clock.WalkClock(src)
    while level:
        if isinstance(store, LocalDirStore) and not force:
            # A local folder's listing hashes every file in it: the stamps of what was
            # staged from it say the md5 of each version they saw (a rerun read it whole).
            for stamp in (s for entry in level for s in stamps.every(entry[2])):
                vouch(store, stamp)
        listings = []
        for listing in each(lambda f: walk_clock.run(clock, store.list, f[0]), level, jobs,
                            "drivestage-list"):
            if isinstance(listing, BaseException):
                raise listing
            listings.append(listing)
        next_level = []
        for (cur, cur_src, cur_local, names, above, chain), children in zip(level, listings):
            # A checkpoint's old copy a push into a local DEST kept aside (local_held), and a
            # killed one left: the copy its sidecar vouches for, under its name (pair36).
            children = sorted(one_each(store, children), key=lambda e: (e.name, e.id))
            chosen = [c for c in children if _chosen(c, names, include, exclude)]
            # A folder that was a DEST holds drivestage's own state (.drivestage: stamps,
            # locks, a run folder's mark; partial downloads; a DEST's trash; the trainer's
            # .drivestage-trainer): not data, and no such name can be staged (reserved in
            # DEST). A local folder holds it; so does one on Drive that a Drive mount
            # (Drive for desktop, Colab's) synced from a DEST in it. Taken as data, the pull
            # failed, exit 2: "rename that item on Drive", which for a live state folder
            # moved the mount's stamps away, and the next push or pull there made it again
            # (attacknew34, for the trash; attackpull35).
            chosen = [c for c in chosen if not is_reserved(c.name)]
            # The names left out count too: the partial download of one stays.
            listed[cur_local] = {c.name.replace("/", "_").replace("\0", "_") for c in children}
            # Only what the pull writes must make a plain, distinct local name: an item
            # left out (--exclude) is the way past one that cannot.
            _refuse_duplicates(chosen, cur_src)
            files: list[Item] = []
            for child in chosen:
                name = safe_name(child.name, cur_src, child.id)
                child_src = f"{cur_src}/{child.name}"
                if child.is_dir:
                    _walk_once(walked, child, child_src, above + (cur.id,))
                    child_local = os.path.join(cur_local, name)
                    next_level.append((child, child_src, child_local, names + (name,),
                                       above + (cur.id,),
                                       chain + ((child, child_src, child_local),)))
                elif child.unreadable:
                    raise NotFoundError(child.unreadable)
                elif child.no_download and (force or not _staged(child, name, cur_local, extract)):
                    inside = "/".join(names + (child.name,))
                    raise DownloadRestrictedError(
                        child.no_download + partials.left_behind(
                            os.path.join(cur_local, name), child)
                        + " Or pull the rest of the folder without it: "
                        f"--exclude {exclude_pattern(inside)}")
                elif not child.has_content:
                    log.warning("skipping %s: it has no binary content (a Google Docs, "
                                "Sheets or Slides file? its type is %s)", child_src,
                                child.kind or "unknown")
                    skipped.append(child_src)
                elif temps.parse(name):
                    # A killed write's leftover (a push leaves them out): staged, the next
                    # atomic write into its folder removed it, and every pull fetched it again.
                    log.warning("skipping %s: the temporary file of a write that was "
                                "interrupted where it was made, not data", child_src)
                else:
                    _check_path(os.path.join(cur_local, name), child_src,
                                "/".join(names + (child.name,)))
                    files.append(Item(child, child_src, cur_local, chain))
            placed[names] = files
        level = next_level
    # Tree order: a folder's files, then its subfolders' (sorted name tuples do exactly that).
    for names in sorted(placed):
        items.extend(placed[names])
    if isinstance(store, LocalDirStore):
        _say_special(store, folder, include, exclude)
    return items, skipped, listed


def _say_special(store: LocalDirStore, folder: RemoteEntry, include: Sequence[str],
                 exclude: Sequence[str]) -> None:
    """The FIFOs, sockets and devices of a local folder pulled that the globs select, and its
    links leading outside it or nowhere, said once (its listings left them out)."""
    top = folder.id + "/" if folder.id else ""

    def chosen(found: list[str]) -> list[str]:
        inside = sorted({rel[len(top):] for rel in found if rel.startswith(top)})
        return [rel for rel in inside if not matches(rel, exclude) and
                (not include or matches(rel, include))]

    say_special(chosen(store.special), store.describe(folder), "copy")
    say_links(chosen(store.links_out), store.describe(folder))


def _staged(child: RemoteEntry, name: str, folder: str, extract: bool = False) -> bool:
    """A copy of ``child`` is staged as ``folder/<name>`` already, by its stamp: the same
    version (md5), the file as the stamp left it; with ``extract``, an archive of it removed
    once extracted (``--remove-archive``: its members stand for it). A rerun needs no
    download of it, so a file whose owner turned downloading off since does not stop the
    pull (staging it checks again, and fails before a media request if it must download
    after all: a member gone)."""
    stamp = stamps.own(folder, name, child.id)
    if stamp is None or not child.md5 or stamp.get("md5") != child.md5:
        return False
    try:
        st = os.stat(os.path.join(folder, name))
    except FileNotFoundError:
        return extract and stamp.get("removed") is True and bool(stamp.get("extracted"))
    except OSError:
        return False
    return st.st_size == stamp.get("size") and \
        same_mtime(st.st_mtime_ns, stamp.get("mtime_ns"), stamp.get("_shown_ns"))


def _chosen(child: RemoteEntry, names: tuple[str, ...], include: Sequence[str],
            exclude: Sequence[str]) -> bool:
    """Whether the globs select ``child`` (of the folder at ``names`` inside the pulled one);
    ``include`` chooses files only."""
    inside = "/".join(names + (child.name,))  # what the globs are matched to
    return not matches(inside, exclude) and \
        (child.is_dir or not include or matches(inside, include))


#: Folder levels a pull walks below SRC. Drive allows 100 (My Drive since November 2023,
#: shared drives before); folder shortcuts may lead a walk into another such tree, but not
#: ten of them: a server whose every folder holds one more, each with a new id, would
#: otherwise keep a pull listing for ever.
MAX_DEPTH = 1000


def _walk_once(walked: dict[str, str], child: RemoteEntry, child_src: str,
               above: tuple[str, ...]) -> None:
    """Refuse a folder the walk takes already, or one too deep (:data:`MAX_DEPTH`). A folder
    above it is left to the store's cycle check (listing it says so)."""
    if child.id in above:
        return
    if len(above) >= MAX_DEPTH:
        shown = child_src if len(child_src) <= 200 else child_src[:200] + "..."
        raise RemoteError(
            f"{shown}: folders nested more than {MAX_DEPTH} deep, far more than "
            "Drive allows (100 levels); the server keeps listing new folders. Stopped before "
            "anything was downloaded. Pull a folder further down, or check --api-root / "
            "DRIVESTAGE_API_ROOT and any proxy between you and Drive")
    first = walked.setdefault(child.id, child_src)
    if first != child_src:
        raise ShortcutCycleError(
            f"{child_src} is the folder {first} again (a shortcut to it, or a folder with two "
            "parents): a folder pull takes each folder once. Leave one out (pull --exclude "
            f"{exclude_pattern(child.name)}).")


#: What a file's download needs beside its name (:data:`~drivestage.paths.PATH_MAX`: the
#: longest path the kernel takes): its partial and its record's temporary file
#: (``..<name>.<16 hex>.ranges.<8 hex>-<pid>.<6 hex>.tmp``).
_BESIDE = 64


def _check_path(target: str, src: str, inside: str) -> None:
    """Refuse a file whose local path (with room for its partial download's) is longer than
    the kernel takes: Drive's folders nest 100 deep with names of 255 bytes, and such a
    file failed the pull with a 4 KB line naming its partial's record, after the files
    before it were staged (attackpull33)."""
    size = _needed(target)
    if size <= PATH_MAX:
        return
    leaf = inside.rpartition("/")[2]
    shown = src if len(src) <= 200 else f"{src[:100]}.../{leaf[:100]}"
    glob = exclude_deep(inside)   # (the glob of the whole path: as long as the path)
    raise UsageError(
        f"{shown}: its local path would be {size - _BESIDE:,} bytes, and a download needs "
        f"{_BESIDE} more for its partial file, over the {PATH_MAX:,} bytes Linux takes; "
        f"shorten its folders' names on Drive, or pull without it: --exclude {glob}")


def check_file_path(target: str, src: str) -> None:
    """Refuse a file pull whose file would land at a path longer than the kernel takes (with
    its partial's): the folder pull's line, where it said "File name too long" (leftovers40)."""
    size = _needed(target)
    if size > PATH_MAX:
        raise UsageError(
            f"{src}: its local path would be {size - _BESIDE:,} bytes, and a download needs "
            f"{_BESIDE} more for its partial file, over the {PATH_MAX:,} bytes Linux takes; "
            "pull it into a folder with a shorter path")


def check_dest_path(dest: str) -> None:
    """Refuse a DEST longer than the kernel takes, named in 200 bytes, before Drive is asked."""
    size = len(os.fsencode(dest))
    if size > PATH_MAX:
        raise UsageError(f"DEST {dest[:100]}...{dest[-100:]} is {size:,} bytes long, over the "
                         f"{PATH_MAX:,} bytes Linux takes in a path; pull into a folder with a "
                         "shorter path")


def _needed(target: str) -> int:
    """The bytes of ``target``'s absolute path and of what its download writes beside it."""
    return len(os.fsencode(os.path.abspath(target))) + _BESIDE


def _refuse_duplicates(children: list[RemoteEntry], where: str) -> None:
    by_name: dict[str, list[RemoteEntry]] = {}
    for child in children:
        by_name.setdefault(safe_name(child.name, where, child.id), []).append(child)
    for name, same in by_name.items():
        if len(same) > 1:
            ids = [e.id for e in same]
            raise DuplicateNameError(
                f"{where}/{name} names {len(same)} items (ids {', '.join(ids)})"
                "; a folder pull needs one local path per item. Rename or delete the "
                f"others on Drive, or pull one by id, e.g. drive:id:{ids[0]}", ids=ids)
