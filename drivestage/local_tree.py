"""The local side of a push: which files and folders of SRC are sent.

:func:`walk` lists SRC (folders parents first, files sorted) through the filters. Symbolic
links are judged by where they lead: a link to a file inside SRC is sent as that file, read
where it led as the walk looked (:attr:`LocalFile.path`, never through the link again); a
link that leads outside SRC, to a folder, or nowhere is skipped and reported
(:attr:`LocalTree.skipped_links`), unless ``follow_symlinks``, which follows every link that
leads somewhere (each real folder is entered once, so a link loop ends). Nothing else of the
disk is read.
"""
from __future__ import annotations

import logging
import os
import stat as _stat
import sys
from dataclasses import dataclass, field
from typing import Optional, Sequence

from drivestage import temps, unread, unread_memory
from drivestage.errors import BecameOtherError, LocalFileError, ShortcutCycleError, UsageError
from drivestage.paths import PATH_MAX, UTF8_LOCALE, is_reserved, matches, names_encoding, printable
from drivestage.shell_words import exclude_deep, exclude_pattern
from drivestage.unread import Unread

log = logging.getLogger(__name__)

#: Never mirrored: hidden temporary files (someone's atomic write in progress, e.g. the
#: trainer's checkpoints), partial downloads (download.py) and partial directory-store
#: uploads (localdir.py).
DEFAULT_EXCLUDES = (".*.tmp", ".*.partial", ".drivestage-upload-*")


@dataclass
class LocalFile:
    """A file of the local tree."""

    rel: str              # relative path, "/"-separated
    #: The absolute local path read (never through a link: opened O_NOFOLLOW); for a link the
    #: walk let through, the file it led to then (``rel`` and ``name`` are the link's).
    path: str
    size: int
    folder_rel: str       # "" for the top
    name: str
    link: bool = False    # a link the walk let through (else a file there, not a link)
    link_path: str = ""   # that link's own absolute path (``path``: where it led)
    #: ``path`` with no link on its way as the walk found it (every read of the push checks
    #: it landed there: a folder swapped for a link since leads elsewhere, pushlefts47).
    real: str = ""

    @property
    def named(self) -> str:
        """The absolute path of ``rel`` (a link's own path: what lines about it name)."""
        return self.link_path or self.path

    @property
    def shown(self) -> str:
        """``path`` as a line about the file names it: for a link the walk let through, the
        link and where it led (``…/last.pt (-> epoch_002.pt)``). Named by the file it led to
        alone, ``push --exclude train.log`` of ``latest.log -> train.log`` failed on
        train.log, a file the user had left out (pushlefts47)."""
        if not self.link:
            return self.path
        led = os.path.relpath(self.path, os.path.dirname(self.link_path))
        return f"{self.link_path} (-> {led})"


def said_of(lf: LocalFile, exc: BaseException) -> BaseException:
    """``exc``, raised by a read of ``lf``, as its line names ``lf`` (:attr:`LocalFile.shown`):
    a :class:`BecameOtherError` naming the file a link led to names the link too."""
    if lf.link and isinstance(exc, BecameOtherError) and exc.path == temps.shown(lf.path):
        return BecameOtherError(lf.shown, exc.what, exc.was)
    return exc


def linked_folder(lf: LocalFile) -> Optional[str]:
    """The first folder between SRC and ``lf`` that is a link now, or None. A walk that
    follows no link (no ``--follow-symlinks``) entered none: one now was swapped in since,
    and opening ``lf.path`` would read through it a file outside SRC (attack46). (A link the
    walk let through is read at the resolved path it led to: a link on that way is new.)"""
    if lf.link:
        folder = os.path.dirname(lf.path)
        return None if os.path.realpath(folder) == folder else folder
    root = lf.path[:len(lf.path) - len(lf.rel)]   # (SRC, its separator kept: "/" too)
    parts = lf.folder_rel.split("/") if lf.folder_rel else []
    for n in range(1, len(parts) + 1):
        folder = root + os.sep.join(parts[:n])
        if os.path.islink(folder):
            return folder
    return None


def led_out(lf: LocalFile) -> bool:
    """Whether ``lf``, a link the walk let through (to a file inside SRC), leads out of SRC
    now: pointed elsewhere since, it had the push send the file it led to (attack46)."""
    own = lf.named
    root = os.path.realpath(own[:len(own) - len(lf.rel)])
    return not _inside(os.path.realpath(own), root)


@dataclass
class LocalTree:
    """What :func:`walk` found."""

    folders: list[str] = field(default_factory=lambda: [""])   # relative, parents first
    files: list[LocalFile] = field(default_factory=list)
    skipped_links: list[str] = field(default_factory=list)     # relative paths, sorted
    #: FIFOs, sockets and devices the filters let through, not sent (relative, in walk order).
    special: list[str] = field(default_factory=list)
    #: The folders a push makes on the store, parents first (:func:`made`); ``folders`` is
    #: every folder of SRC the filters let through, what ``--delete`` leaves on the store.
    made: list[str] = field(default_factory=lambda: [""])
    #: What the walk could not stat or list (never taken as absent: :mod:`drivestage.unread`).
    unread: list[Unread] = field(default_factory=list)

    @property
    def unread_rels(self) -> set[str]:
        """The relative paths of :attr:`unread` (what ``--delete`` takes as there)."""
        return {u.rel for u in self.unread}

    def add_unread(self, again: Sequence[Unread]) -> None:
        """Add ``again`` (:func:`~drivestage.unread_memory.empty_again`'s) to :attr:`unread`,
        leaving out what the walk found at or below those of them that hold something: the
        disk beneath a mount not mounted now, whose files are no copy of the mount's (sent,
        they replaced its copies on Drive)."""
        self.unread.extend(again)
        out = [u.rel for u in again if not u.empty]
        if not out:
            return

        def kept(rel: str) -> bool:
            return not any(rel == o or rel.startswith(o + "/") for o in out)
        self.files = [lf for lf in self.files if kept(lf.rel)]
        self.folders = [f for f in self.folders if kept(f)]
        self.made = [f for f in self.made if kept(f)]
        self.skipped_links = [s for s in self.skipped_links if kept(s)]
        self.special = [s for s in self.special if kept(s)]


def wanted(rel: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether the file ``rel`` passes the default excludes and the user's filters."""
    if matches(rel, DEFAULT_EXCLUDES) or matches(rel, exclude):
        return False
    return not include or matches(rel, include)


def made(folders: Sequence[str], files: Sequence[LocalFile],
         include: Sequence[str]) -> list[str]:
    """The folders a push makes: every one of ``folders`` without ``include`` (an empty
    folder is mirrored); with it, those that hold a file it sends or that a pattern names,
    and the folders above them. ``push --include '*.zip'`` made every folder of a dataset
    on Drive, empty (include29)."""
    if not include:
        return list(folders)
    need = {""}
    for rel in [lf.folder_rel for lf in files] + [f for f in folders if matches(f, include)]:
        while rel not in need:
            need.add(rel)
            rel = rel.rsplit("/", 1)[0] if "/" in rel else ""
    return [f for f in folders if f in need]


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _unicode(src: str, rel: str, name: str) -> None:
    """Refuse ``rel`` when its name is not UTF-8 (Python reads such bytes as lone surrogates,
    which no Drive title can hold): a push ended in a UnicodeEncodeError traceback at a
    lock's name for a file, and blamed the server for a folder (attack28)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(os.path.join(src, rel))
        if sys.getfilesystemencoding() != "utf-8" and _is_utf8(raw):
            # UTF-8, read by the locale as ASCII (LC_ALL=C, PYTHONUTF8=0): convmv -f latin1
            # made it mojibake for good (attackcli40).
            raise UsageError(
                f"{printable(raw.decode('utf-8'))}: the name is UTF-8, but {names_encoding()}, "
                f"which cannot read it; {UTF8_LOCALE}, or leave it out of the push (--exclude "
                f"{exclude_pattern(rel)})") from None
        raise UsageError(
            f"{os.path.join(src, printable(rel))}: the name is not valid UTF-8 "
            f"({ascii(os.fsencode(name))}), and a Drive name is Unicode: rename it (convmv -f "
            f"latin1 -t utf8), or leave it out of the push (--exclude {exclude_pattern(rel)})"
        ) from None


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


#: What :func:`say_special` said last, by place: a mirror pushes every period, and said
#: the same line every time.
_SAID: dict[tuple[str, str], tuple[str, ...]] = {}


def say_special(special: Sequence[str], where: str, verb: str) -> None:
    """One warning for the FIFOs, sockets and devices ``special`` (paths relative to
    ``where``) a walk left out, unless the same were said of ``where`` last time: a push or
    pull of a folder holding one said nothing, and the file was only missing from its count."""
    key, now = (os.path.abspath(where), verb), tuple(special)
    if _SAID.get(key, ()) == now:
        return
    _SAID[key] = now
    if special:
        n, first = len(special), os.path.join(where, *special[0].split("/"))
        log.warning("skipped %s of %s that %s not a regular file or folder (a FIFO, socket "
                    "or device: no data to %s)%s %s", "1 item" if n == 1 else f"{n} items",
                    where, "is" if n == 1 else "are", verb, ":" if n == 1 else ", the first",
                    first)


def say_links(links: Sequence[str], where: str) -> None:
    """One warning for the links of a local folder pulled that lead outside it or nowhere
    (``links``: relative to ``where``), which the pull left out: it said nothing, and
    ``train -> /mnt/shared/train`` was missing from DEST (attackpull34). Once per place and
    set, as :func:`say_special`."""
    key, now = (os.path.abspath(where), "links"), tuple(links)
    if _SAID.get(key, ()) == now:
        return
    _SAID[key] = now
    if links:
        n = len(links)
        log.warning("skipped %s of %s that lead%s outside it or nowhere (%s): a pull copies "
                    "what is inside the folder; copy what %s to into it, or pull that on its "
                    "own", "1 link" if n == 1 else f"{n} links", where, "s" if n == 1 else "",
                    ", ".join(links[:10]) + (", ..." if n > 10 else ""),
                    "it leads" if n == 1 else "they lead")


def walk(src: str, include: Sequence[str] = (), exclude: Sequence[str] = (), *,
         follow_symlinks: bool = False) -> LocalTree:
    """The folders and files of ``src`` that a push sends (see the module's rules)."""
    tree = LocalTree()
    # Every read of the push opens a file by its absolute path: one longer than the kernel
    # takes was skipped here without a word (its stat failed), or ended the push in an
    # OSError traceback at its upload (a SRC named relatively from a deep folder).
    reach = len(os.fsencode(os.path.abspath(src)))
    if reach > PATH_MAX:
        raise UsageError(f"SRC {_start(os.path.abspath(src))} is {reach:,} bytes long, over the "
                         f"{PATH_MAX:,} bytes Linux takes in a path; push from a folder with a "
                         "shorter path (move it nearer to /)")
    root = os.path.realpath(src)
    entered = {root}

    def visit(folder: str, rel_root: str, real_folder: str) -> None:
        try:
            with os.scandir(folder) as it:
                children = sorted(it, key=lambda d: d.name)
        except (FileNotFoundError, NotADirectoryError):
            return  # removed while we walked
        except OSError as exc:   # (EACCES: no r; EIO, a mount that stopped)
            if not rel_root:
                raise unread_memory.src_unread(folder, exc.errno or 0) from None
            tree.folders.remove(rel_root)   # (not made on the store: nothing known of it)
            tree.unread.append(Unread(rel_root, os.path.abspath(folder), exc.errno or 0, True))
            return
        for child in children:
            if is_reserved(child.name):
                # drivestage's own state (a pull's stamps in .drivestage, partial downloads):
                # sent, it made every pull of the pushed folder fail on that name (attack28).
                continue
            rel = f"{rel_root}/{child.name}" if rel_root else child.name
            if reach + 1 + len(os.fsencode(rel)) > PATH_MAX and _sent(child, rel, include,
                                                                    exclude):
                _too_long(os.path.abspath(child.path), rel)
            try:   # (a listing without kinds, DT_UNKNOWN: an lstat, which may fail: EIO)
                link = child.is_symlink()
            except OSError as exc:
                if _sent(child, rel, include, exclude, unknown=True):
                    tree.unread.append(Unread(rel, os.path.abspath(child.path),
                                              exc.errno or 0, True))
                continue
            try:
                st = os.stat(child.path)  # follows a link
            except (FileNotFoundError, NotADirectoryError):
                if link:
                    tree.skipped_links.append(rel)  # dangling (or its target vanished)
                continue
            except OSError as exc:
                if link:
                    tree.skipped_links.append(rel)  # a loop of links (ELOOP)
                elif _sent(child, rel, include, exclude, unknown=True):   # (EACCES: no x)
                    tree.unread.append(Unread(rel, os.path.abspath(child.path),
                                              exc.errno or 0, _is_dir(child, unknown=True)))
                continue
            is_dir = _stat.S_ISDIR(st.st_mode)
            if is_dir:
                if matches(rel, exclude):
                    continue
                _unicode(src, rel, child.name)
                real = os.path.realpath(child.path)
                if link and (not follow_symlinks or real in entered):
                    tree.skipped_links.append(rel)
                    continue
                entered.add(real)
                tree.folders.append(rel)
                visit(child.path, rel, real)
                continue
            if not wanted(rel, include, exclude):
                continue
            if not _stat.S_ISREG(st.st_mode):
                tree.special.append(rel)  # (never opened: a FIFO's read could block forever)
                continue
            # A link is read where it led as the walk looked, resolved once: read through by
            # its name at each pass, re-pointed since (at /etc/passwd), its new target went
            # to the store under its name (pushlinks46).
            path = os.path.realpath(child.path) if link else os.path.abspath(child.path)
            if link and not follow_symlinks and not _inside(path, root):
                tree.skipped_links.append(rel)
                continue
            if link and len(os.fsencode(path)) > PATH_MAX:   # (read where it leads)
                _too_long(path, rel)
            _unicode(src, rel, child.name)
            tree.files.append(LocalFile(rel, path, st.st_size, rel_root, child.name, link,
                                        os.path.abspath(child.path) if link else "",
                                        path if link else os.path.join(real_folder, child.name)))

    visit(src, "", root)
    tree.skipped_links.sort()
    tree.made = made(tree.folders, tree.files, include)
    return tree


def _sent(child: "os.DirEntry[str]", rel: str, include: Sequence[str],
          exclude: Sequence[str], unknown: bool = False) -> bool:
    """Whether the filters let ``child`` (at ``rel``) through, as far as its name tells (a
    path too long to stat: its kind from the folder's listing, ``unknown`` where it gives
    none and the stat failed)."""
    if matches(rel, exclude):
        return False
    return _is_dir(child, unknown) or wanted(rel, include, exclude)


def _is_dir(child: "os.DirEntry[str]", unknown: bool = False) -> bool:
    """Whether ``child`` is a folder as far as its folder's listing tells (``unknown``
    where its stat failed and the listing gives no kind: a file for a path too long, a
    folder for one push could not read, whose Drive copies an ``--include`` would otherwise
    let ``--delete`` take: attackr248)."""
    try:
        return child.is_dir()
    except OSError:
        return unknown


def _start(path: str) -> str:
    """``path`` named in about 200 characters: its start and its end."""
    return path if len(path) <= 200 else f"{path[:100]}...{path[-100:]}"


def _too_long(full: str, rel: str) -> None:
    """Refuse ``full`` (SRC's ``rel``), whose path is longer than the kernel takes."""
    size = len(os.fsencode(full))
    raise UsageError(
        f"{printable(_start(full))} is {size:,} bytes long, over the {PATH_MAX:,} bytes Linux "
        f"takes in a path: no push can read it there; move SRC to a shorter path, or push "
        f"without it: --exclude {exclude_deep(rel)}")


def refuse_loop(full: str, root: str) -> None:
    """Refuse the folder ``full``, a link, when it leads to a folder it sits in (or to its
    own), by any of its path up to ``root`` (a directory store's listing: localdir.py): a
    folder pull took it again inside itself until a path held 40 links (ELOOP, a
    600-character line), and two such links in a folder made 2^40 listings (attackpull32); so
    did ``x/y -> ../z`` with ``z/w -> ../x``, whose loop the parent alone does not show
    (attackds32)."""
    real = os.path.realpath(full)
    at = os.path.dirname(full)
    while True:
        above = os.path.realpath(at)
        if above == real or above.startswith(real.rstrip(os.sep) + os.sep):
            break
        if len(at) <= len(root) or os.path.dirname(at) == at:
            return
        at = os.path.dirname(at)
    raise ShortcutCycleError(
        f"{full} is a link to {real}, a folder it sits in: a walk through it would never "
        f"end. Leave it out (--exclude {exclude_pattern(os.path.basename(full))}, on a pull or "
        "a push --delete) or remove the link.")
