"""Same-named folders on Drive: which one every push on every machine takes.

Drive allows two folders of one name in one folder. Two machines that make a folder at the
same moment (both listed, found nothing, created) would otherwise split a run over two folders,
and every later lookup of that path would fail on the duplicate. The rule: the **oldest**
folder (then the lowest id) is the one; whoever made a newer one removes it while it is still
empty (:meth:`drivestage.drive.store.DriveStore.make_folders`). Nobody ever takes a folder
that is not the oldest, and nobody sees only the newer one, so that removal never takes
anything someone put there. One machine's create sent twice (its answer lost, or its push cut
and run again while Drive's listing does not show the folder yet) makes one folder: both name
the id chosen for it beforehand (:mod:`drivestage.drive.ids`), which Drive takes once.
"""
from __future__ import annotations

import logging
import unicodedata
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

from drivestage.drive.resources import FOLDER_MIME, parse_time
from drivestage.errors import DriveStageError, DuplicateNameError, NotFoundError
from drivestage.store import RemoteEntry

log = logging.getLogger(__name__)

Get = Callable[[str, str], dict[str, Any]]
#: Most folders climbed above a push's folder for its locks: My Drive and shared drives nest
#: folders 100 deep (at 64, a push 70 deep did not wait for one into the top: attackz27).
MAX_DEPTH = 101


def folders(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The folders among File resources (a shortcut to a folder is not one)."""
    return [it for it in items if it.get("mimeType") == FOLDER_MIME]


def oldest(found: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """Of same-named folders, the one every push takes: the oldest, then the lowest id."""
    return min(found, key=lambda it: (parse_time(it.get("createdDate")), str(it["id"])))


def choose(found: Sequence[Mapping[str, Any]], where: str) -> Mapping[str, Any]:
    """The item ``where`` names among the items of that name: the only one, the oldest of
    same-named folders, else DuplicateNameError naming the ids."""
    same = folders(found)
    if len(found) > 1 and len(same) == len(found):
        chosen = oldest(same)
        log.warning("%s: %d folders have this name (ids %s); using the oldest, %s. Until "
                    "they are one, `pull` refuses this path: `drivestage dedupe %s` merges "
                    "them", where, len(same), ", ".join(sorted(str(it["id"]) for it in same)),
                    chosen["id"], where)
        return chosen
    if len(found) > 1:
        ids = [str(it["id"]) for it in found]
        raise DuplicateNameError(
            f"{where} matches {len(ids)} items with that exact name (ids "
            f"{', '.join(ids)}); Drive allows duplicates. Address one by id, e.g. "
            f"drive:id:{ids[0]}, or rename/delete the others.", ids=ids)
    return found[0]


def ensure(children: Callable[[], list[dict[str, Any]]], create: Callable[[], dict[str, Any]],
           remove: Callable[[Mapping[str, Any]], None], where: str,
           attempts: Iterable[Any]) -> Mapping[str, Any]:
    """The folder ``where``: the one there (:func:`choose`), or one made now (each of
    ``attempts``, a retry loop, looks again first, so a retried create makes no second one).
    Made now, it is checked against folders of the same name another machine made at the same
    moment: all take the oldest, and whoever made a newer one removes it, still empty."""
    made: dict[str, Any] = {}
    for attempt in attempts:
        with attempt:
            found = children()
            if found:
                return choose(found, where)
            made = create()
    winner = oldest(folders(children()) + [made])
    if winner["id"] != made["id"]:
        log.info("another push made %s at the same moment; using its folder (%s)", where,
                 winner["id"])
        try:
            remove(made)
        except DriveStageError as exc:  # an empty folder left behind is only untidy
            log.warning("could not remove the empty duplicate %s: %s", where, exc)
    return winner


def is_live_folder(res: Mapping[str, Any], parent_id: str, name: str) -> bool:
    """Whether the File resource ``res`` (read by id) is still the folder ``name`` in
    ``parent_id``, not trashed: a folder this machine made, which a lagging listing hides."""
    parents = [p for p in res.get("parents") or [] if isinstance(p, Mapping)]
    inside = any(p.get("id") == parent_id or (parent_id == "root" and p.get("isRoot"))
                 for p in parents)
    return inside and not (res.get("labels") or {}).get("trashed") and \
        res.get("title") == name and res.get("mimeType") == FOLDER_MIME


def made_here(get: Callable[[str, str], dict[str, Any]], parent_id: str, name: str,
              where: str) -> list[dict[str, Any]]:
    """The folder ``name`` this machine made in ``parent_id`` lately, as files.get (``get``:
    always current) shows it, when it is still there: Drive's listing may not show a folder
    made a moment ago (:class:`~drivestage.state.MadeFolders`)."""
    from drivestage.state import MadeFolders

    folder_id = MadeFolders().recall(parent_id, name)
    if folder_id is None:
        return []
    try:
        res = get(folder_id, where)
    except NotFoundError:
        return []
    return [res] if is_live_folder(res, parent_id, name) else []


def mount_name_hint(in_my_drive: bool, names: tuple[str, ...], at: int) -> str:
    """For ``drive:MyDrive/a`` (the Colab mount's folder name, /content/drive/MyDrive/a)
    not found at the top of My Drive (``at``: the name not found): the path that was meant."""
    if not in_my_drive or at != 0 or names[0] not in ("MyDrive", "My Drive"):
        return ""
    return f"; a drive: path starts inside My Drive: write drive:{'/'.join(names[1:])}"


def typed_name_hint(name: str, meant: str) -> str:
    """For a name not found that a user mistyped in a way the message hides: a space before
    or after it (``"drive: VOC_datasets"``, a pasted ``"drive:VOC_datasets "``) or a
    Windows-style ``\\`` between names (``drive:VOC_datasets\\VOC.zip``); ``meant``: the
    path with the ``\\`` made ``/`` (ux35)."""
    if "\\" in name:
        return f"; a drive: path's folders are separated by /: {meant}"
    if name != name.strip():
        return f"; the name has a space before or after it: did you mean {name.strip()!r}?"
    return ""


def unicode_name_hint(name: str, folder: str, holds: Callable[[str], bool]) -> str:
    """For a name not found in ``folder`` whose other Unicode form (NFC: composed accents;
    NFD: combining ones, as macOS's file names hold them) the folder ``holds`` (one look-up
    each, two at most): the name Drive has. Drive's titles are exact and the two read the
    same, so "not found" named a name the user saw there (attackcli39)."""
    for form in ("NFC", "NFD"):
        other = unicodedata.normalize(form, name)
        if other != name and holds(other):
            return (f"; Drive holds {other!r}, which reads the same in other Unicode code "
                    f"points (composed or combining accents): copy the name from "
                    f"`drivestage ls {folder}`")
    return ""


def warn_typed_name(where: str, name: str) -> None:
    """A folder about to be made whose name looks mistyped (:func:`typed_name_hint`): made
    as asked (Drive takes it), but said, as the store's: a push to ``"drive:Models/logs "``
    made a second folder beside ``logs`` that read the same in Drive's web page (ux35)."""
    if "\\" in name:
        why = "a \\ in it: a drive: path's folders are separated by /"
    elif name != name.strip():
        why = "a space before or after its name"
    else:
        return
    logging.getLogger("drivestage.drive.store").warning("%s makes a folder called %r (%s)",
                                                        where, name, why)


def warn_mount_name(where: str, name: str, meant: str) -> None:
    """drive:MyDrive/x, from the mount's /content/drive/MyDrive/x, makes a folder as asked
    (it may be meant), but says so: the run would land beside the folder it meant."""
    # Said as the store's (where it happens, as users see it named).
    logging.getLogger("drivestage.drive.store").warning(
        "%s makes a folder called %r at the top of My Drive: a drive: path starts inside My "
        "Drive (/content/drive/MyDrive/%s is drive:%s)", where, name, meant, meant)


def say_gone(where: str) -> None:
    """The folder a store pushed into at ``where`` is no longer the one the path leads to
    (trashed, deleted, renamed or moved since, it or a folder above it: the user cleaned up
    Drive while a mirror ran): the path is made again, as a fresh process (a resume) reads
    it, and all is sent there again; said, as the store's."""
    logging.getLogger("drivestage.drive.store").warning(
        "%s is no longer at its path on Drive (moved, renamed, trashed or deleted since this "
        "process last pushed there); making it anew and sending everything to it: put the "
        "folder back first to keep one copy", where)


def lineage(get: Get, folder_id: str, above: dict[str, Optional[str]],
            parent: Optional[str] = None) -> list[str]:
    """The ids of the folder ``folder_id`` and of the folders it sits in (each its first
    parent, as Drive has them: whatever path or link reached it), nearest first, each once;
    My Drive's top by its own id however it was named (``drive:`` is ``root``). ``above``:
    what was read before, id -> its parent (None: none; ``root`` -> the top's id), filled in;
    ``parent``: the folder's, when known. A folder that cannot be read ends the climb (above
    a folder shared with this account), and so does one met twice."""
    hinted = parent is not None and folder_id != "root" and folder_id not in above
    if hinted:
        above[folder_id] = parent
    out, looped = _climb(get, folder_id, above)
    if looped and hinted:
        # The parent given was the folder of a shortcut that leads back up to this folder
        # (``course/back`` -> ``course``), not the folder's own: read its own instead.
        del above[folder_id]
        out, _ = _climb(get, folder_id, above)
    return out


def moved(above: dict[str, Optional[str]],
          folder: RemoteEntry) -> tuple[dict[str, Optional[str]], Optional[str]]:
    """What :func:`lineage` read before (``above``), unless ``folder`` now sits in another
    parent (as its entry, read for this push, says): then My Drive's top alone, which never
    moves; and the parent :func:`lineage` may take from the entry (None for a folder reached
    through a shortcut: the entry's is the shortcut's, lock28). Kept for the life of a store
    (a mirror, a training run's), a folder moved since its last push kept its old chain, and
    so the locks of the folders it used to sit in: a push into its new parent did not wait
    for it (lock28). Free: no request. A folder above it moved is seen at a mirror's next
    walk (every 10th period)."""
    parent = None if folder.linked else folder.parent_id
    if parent is None or above.get(folder.id, parent) == parent:
        return above, parent
    found = above.get("root")
    return ({"root": found, found: None} if found else {}), parent


def _climb(get: Get, folder_id: str, above: dict[str, Optional[str]]) -> tuple[list[str], bool]:
    """:func:`lineage`'s ids, and whether the climb came back to a folder already met (a
    loop: a wrong ``parent``, or a server's lie) and ended there."""
    out: list[str] = []
    at: Optional[str] = folder_id
    while at is not None and len(out) < MAX_DEPTH:
        if at not in above:
            try:
                res = get(at, "drive:" if at == "root" else f"drive:id:{at}")
            except DriveStageError:
                break
            parents = [p for p in res.get("parents") or [] if isinstance(p, Mapping)]
            real = str(res.get("id") or at)
            above[real] = str(parents[0].get("id")) if parents else None
            if parents and parents[0].get("isRoot") is True:   # My Drive's top: no more
                above.setdefault("root", str(parents[0].get("id")))
                above.setdefault(str(parents[0].get("id")), None)
            if real != at:   # root: the alias of the top of My Drive
                above[at] = real
        at = above[at] if at == "root" else at
        if at is None:
            break
        if at in out:
            # A folder's lock held twice (shared as a folder above, exclusively as its
            # own) waits for itself for good.
            return out, True
        out.append(at)
        at = above.get(at)
    return out, False


def still_there(get: Get, folder_id: str, where: str, parent_id: Optional[str] = None,
                name: str = "") -> Optional[dict[str, Any]]:
    """The folder as Drive has it now; None when it is gone or in the trash, or (with
    ``parent_id``) no longer the folder ``name`` in ``parent_id``."""
    try:
        res = get(folder_id, where)
    except NotFoundError:
        return None
    moved = bool(parent_id) and not is_live_folder(res, parent_id or "", name)
    return None if (res.get("labels") or {}).get("trashed") or moved else res
