"""A Drive item of a folder pull that lands where an archive of the same pull extracted a
member (:func:`refuse_member_clash`): the file ``ds/x`` or the folder ``ds/x/`` added on
Drive after ``a.zip``, holding ``ds/x`` or ``ds/x/y``, was extracted. The two can never
both be staged; a pull lets neither replace the other and says so, naming both, before a
byte moves. Split from :mod:`drivestage.stage_tree` (near its 500-line cap)."""
from __future__ import annotations

import os
import stat
from typing import Callable, Optional

from drivestage import stamps
from drivestage.errors import ArchiveError
from drivestage.extract.members import ancestors
from drivestage.shell_words import exclude_pattern
from drivestage.stage_walk import Item


def refuse_member_clash(root: str, items: list[Item], is_archive: Callable[[Item], bool]
                        ) -> None:
    """Refuse the pull when a file or folder of it lands on a member of an archive of it
    that its current stamp says was extracted: a file where a member of another size (or a
    link) lies, or where a member lay that is gone (deleted here), a file where a member
    folder lies, a folder where a member file lies.

    The checks each item would meet later said "not a copy … move it away, or pull with
    --force", "is a folder … Move the folder away", "is a file where the folder pull needs
    a folder … move the file away": moved or forced, the archive was extracted again over
    it, or refused, at every rerun (chunkdet35, attackorder35 for the folders); a file where
    a member the user deleted lay was downloaded there, then the archive refused, at every
    rerun (attack36). Stamps are read only when a file's target or a folder is not what a
    staged rerun finds (a staged folder's rerun reads no stamp more); a file of the size of
    the member there is left to the usual checks (a member of the file's very bytes is
    staged as its copy)."""
    # Every file of the pull, archives too: `b.zip` added where a.zip's member `b.zip` lies
    # got "not a copy … move it away, or pull with --force" (attackorder35).
    files = {os.path.abspath(it.target): it for it in items}
    folders = drive_folders(root, items)
    odd = {p for p, it in files.items() if _unlike(p, it.entry.size)} | \
        {p for p in folders if not _is_folder(p)}
    real = os.path.realpath(root)
    for it in items if odd else ():
        # (a folder that is a link is refused next, before a byte: read no stamp through it)
        inside = os.path.normpath(os.path.join(real, os.path.relpath(it.folder, root)))
        stamp = stamps.own(it.folder, os.path.basename(it.target), it.entry.id) \
            if is_archive(it) and os.path.realpath(it.folder) == inside else None
        if stamp is None or not stamp.get("extracted") or \
                it.entry.md5 not in (None, stamp.get("md5")):
            continue
        here = os.path.abspath(it.folder)

        def at(rel: str) -> str:
            return os.path.join(here, *rel.split("/"))

        records = stamps.records(stamp)
        kept = [m.path for m in records if m.kind != "dir"]
        for path in kept:        # a member file: on a Drive folder, or a file unlike it
            where = at(path)
            if where in folders and where in odd:
                _refuse(root, where, f"{folders[where]} (a folder on Drive)",
                        f"the member {path} of {it.src} (a file)", None, it)
            # (Or the member deleted here, to be extracted again: the file was downloaded into
            # its place, then the archive refused at every rerun, "would replace … a file
            # staged from Drive", even of the member's very bytes: attack36.)
            if where in files and (_other(where, files[where].entry.size) or
                                   _lstat(where) is None):
                _refuse(root, where, files[where].src, f"the member {path} of {it.src}",
                        files[where], it)
        dirs = ancestors(m.path for m in records) | {m.path for m in records
                                                     if m.kind == "dir"}
        for path in sorted(dirs):   # a member folder where Drive has a file
            where = at(path)
            if where in files and where in odd:
                inside = min((m.path for m in records if m.path.startswith(path + "/")),
                             default=path + "/")
                _refuse(root, where, f"{files[where].src} (a file on Drive)",
                        f"the member folder {path} of {it.src} (holding {inside})",
                        files[where], it)


def drive_folders(root: str, items: list[Item]) -> dict[str, str]:
    """The local paths of the Drive folders below ``root`` that hold ``items`` (and the
    folders above them), each with its Drive path (for messages)."""
    top, out = os.path.abspath(root), {}
    for it in items:
        path, src = os.path.abspath(it.folder), it.src.rpartition("/")[0]
        while len(path) > len(top) and path not in out:
            out[path], path, src = src, os.path.dirname(path), src.rpartition("/")[0]
    return out


def _refuse(root: str, where: str, one: str, other: str, file: Optional[Item],
            archive: Item) -> None:
    """Raise the line naming both (``file``: the Drive file, None for a folder)."""
    rel = _inside(root, file) if file is not None else \
        os.path.relpath(where, root).replace(os.sep, "/")
    raise ArchiveError(
        f"{one} and {other} both land on {where}; a pull lets neither replace the other: "
        f"rename one of them on Drive, or pull without one (--exclude {exclude_pattern(rel)}"
        f" or --exclude {exclude_pattern(_inside(root, archive))})")


def _inside(root: str, item: Item) -> str:
    rel = os.path.relpath(item.folder, root)
    return "/".join(([] if rel == "." else rel.split(os.sep)) + [item.entry.name])


def _lstat(path: str) -> Optional[os.stat_result]:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _unlike(path: str, size: int) -> bool:
    """Whether ``path`` is not what a staged rerun finds there: a file of ``size`` bytes."""
    st = _lstat(path)
    return st is None or not stat.S_ISREG(st.st_mode) or st.st_size != size


def _other(path: str, size: int) -> bool:
    """Whether ``path`` holds something that cannot be a copy of a file of ``size`` bytes:
    a file of another size, a link, or a folder."""
    st = _lstat(path)
    return st is not None and (stat.S_ISLNK(st.st_mode) or stat.S_ISDIR(st.st_mode) or
                               (stat.S_ISREG(st.st_mode) and st.st_size != size))


def _is_folder(path: str) -> bool:
    st = _lstat(path)
    return st is not None and stat.S_ISDIR(st.st_mode)
