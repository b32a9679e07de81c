"""Whether a Drive answer is about the item that was asked about.

Every other check of an answer (:func:`drivestage.drive.resources.check_resource`) looks at
its shape; these look at *whose* it is. A server (or a cache or proxy on the way) that answers
files.get for another id, lists another folder's items, or completes an upload with another
file's resource would otherwise have prune and push act on files the user never named: a
prune of one folder deleted another's checkpoints; a push deleted the old copy of a file that
the upload's answer placed in another folder. Drive never answers so; these checks cost no
request. One more, :func:`check_as_listed`, costs a files.get per deletion: Drive's listings
do lag, and an item is deleted only while it is still what the listing showed.
"""
from __future__ import annotations

import logging
from typing import Any, Collection, Mapping, Optional

from drivestage.drive.resources import FOLDER_MIME, SHORTCUT_MIME, run_marked
from drivestage.errors import LeftAloneError, StaysElsewhereError, WrongItemError
from drivestage.paths import printable
from drivestage.store import RemoteEntry

log = logging.getLogger("drivestage.drive.store")

#: Ids Drive answers for under another id (``root`` is My Drive's top, whose real id differs).
_ALIASES = frozenset({"root", "appDataFolder"})
_ADVICE = ("Drive never does that: check --api-root / DRIVESTAGE_API_ROOT and any proxy or "
           "cache between you and Drive")


def _parent_ids(res: Mapping[str, Any]) -> Optional[list[str]]:
    """The ids of ``res``'s parents; None when the answer does not say."""
    parents = res.get("parents")
    if not isinstance(parents, list):
        return None
    return [str(p.get("id")) for p in parents if isinstance(p, Mapping)]


def is_in(res: Mapping[str, Any], folder_id: str) -> Optional[bool]:
    """Whether ``res`` sits in ``folder_id`` (``root``: any parent Drive marks ``isRoot``);
    None when the answer names no parents."""
    parents = res.get("parents")
    if not isinstance(parents, list):
        return None
    for p in parents:  # a loop, not any(<generator>): a Ctrl-C in one is "ignored" noise
        if isinstance(p, Mapping) and (p.get("id") == folder_id or
                                       (folder_id == "root" and p.get("isRoot") is True)):
            return True
    return False


def check_got(res: Mapping[str, Any], asked: str, where: str) -> None:
    """files.get of ``asked`` answered ``res``: it must be that item."""
    got = res.get("id")
    if got != asked and asked not in _ALIASES:
        raise WrongItemError(
            f"stat {where}: the server answered for another item (asked for id {asked}, got "
            f"{printable(str(got))}); stopped, nothing done with that answer. {_ADVICE}")


def check_listed(items: list[dict[str, Any]], folder_id: Optional[str], where: str) -> None:
    """A listing of ``folder_id``'s children (None: of Shared with me) answered ``items``:
    each must sit in it (one whose answer names no parents is taken as listed), and an item
    listed twice (a page served again) must have one name: under a second name a prune
    deleted ``best.pt`` as the ``epoch_001.pt`` it was also listed as."""
    names: dict[Any, Any] = {}
    for it in items:
        title = names.setdefault(it.get("id"), it.get("title"))
        if title != it.get("title"):
            raise WrongItemError(
                f"list {where}: the server answered for another item: id "
                f"{printable(str(it.get('id')))} is listed twice, as "
                f"{printable(str(title))!r} and as {printable(str(it.get('title')))!r}; "
                f"stopped, nothing done with that answer. {_ADVICE}")
        if folder_id is not None and is_in(it, folder_id) is False:
            raise WrongItemError(
                f"list {where}: the server answered for another item: "
                f"{printable(str(it.get('title')))!r} (id {printable(str(it.get('id')))}) sits "
                f"in another folder (parents {', '.join(_parent_ids(it) or [])}), not in "
                f"{where}; stopped, nothing done with that answer. {_ADVICE}")


def check_uploaded(res: Mapping[str, Any], folder_id: str, name: str,
                   replace_id: Optional[str], where: str) -> None:
    """An upload of ``name`` into ``folder_id`` (in place of ``replace_id``) completed with
    ``res``: it must be that file (the one replaced, if any), under that name, and a new one
    in that folder. Its md5 alone proves nothing: a file elsewhere with the same bytes has it too."""
    wrong = []
    if replace_id is not None and res.get("id") != replace_id:
        wrong.append(f"id {printable(str(res.get('id')))}, not {replace_id}")
    title = res.get("title")
    if title is not None and title != name:
        wrong.append(f"named {printable(str(title))!r}")
    # An update names its file by id: a dedupe may have moved it meanwhile (the push sees to
    # that, :class:`drivestage.errors.MovedApartError`); a new file is where it was sent.
    if replace_id is None and is_in(res, folder_id) is False:
        wrong.append(f"in another folder (parents {', '.join(_parent_ids(res) or [])})")
    if wrong:
        raise WrongItemError(
            f"uploading {where}: the server answered for another item (the file it says it "
            f"made is {'; '.join(wrong)}); the old copies were kept. {_ADVICE}")



def moved_since_listed(res: Mapping[str, Any], entry: RemoteEntry,
                       listed_in: Optional[str]) -> Optional[str]:
    """How files.get's ``res`` shows the item a listing showed as ``entry`` (in ``listed_in``)
    renamed or moved into another folder since (``"renamed 'x'"``); None when it is still
    there under that name (each unknown is not compared)."""
    # The folder it was listed in first: an item with several parents (Drive's older items)
    # taken out of DEST but kept in its first parent was deleted, still "in" parents[0].
    title, parent = res.get("title"), listed_in or entry.parent_id
    if entry.name and title != entry.name:
        return f"renamed {printable(str(title))!r}"
    if parent and is_in(res, parent) is False:
        return f"moved into another folder (parents {', '.join(_parent_ids(res) or [])})"
    return None


def check_as_listed(res: Mapping[str, Any], entry: RemoteEntry, listed_in: Optional[str],
                    where: str, *, marked_before: bool = False,
                    also: Collection[str] = ()) -> None:
    """:func:`check_unchanged`, and an item also in a folder besides ``listed_in`` and
    ``also`` (:func:`elsewhere`) is left (:func:`stays_elsewhere`, said)."""
    check_unchanged(res, entry, listed_in, where, marked_before=marked_before)
    if elsewhere(res, entry, listed_in, also) is not None:
        raise stays_elsewhere(where)


def stays_elsewhere(where: str, refused: Optional[str] = None) -> StaysElsewhereError:
    """The error (and warning, said here) of ``where`` left for another folder it is also
    in; ``refused``: Drive's words refusing to take it out of its folder only (files.update
    ``removeParents``: :meth:`drivestage.drive.store_deletes.Deletes.take_out`)."""
    folder = where.rsplit("/", 1)[0] if "/" in where else where
    why = "" if refused is None else \
        f"; Drive refused taking it out of {folder} only ({refused})"
    said = (f"{where} was not deleted: it is also in another folder (an item with two "
            "parents, kept from before 2020), and its removal would take it from there too"
            f"{why}. Take it out of {folder} on Drive (it stays in its other folder) to let "
            "it go")
    log.warning("%s", said)
    return StaysElsewhereError(said)


def check_taken_out(res: Mapping[str, Any], item_id: str, home: str, where: str) -> None:
    """files.update ``removeParents=home`` of ``item_id`` answered ``res``: it must be that
    item, out of ``home`` (parents unsaid: taken as done). An answer that shows it still in
    ``home`` would have the caller take it as gone from there. One in no folder is Drive's
    answer where another process took it out of its other folder meanwhile and it is
    another user's (placed in its owner's My Drive, unseen: :func:`taken_out` says so); it
    stopped dedupe as a server's lie (attackrm39)."""
    check_got(res, item_id, where)
    if is_in(res, home) is True:
        raise WrongItemError(
            f"take {where} out of its folder: the server answered that it is in folders "
            f"{', '.join(_parent_ids(res) or [])}, not out of {home}; stopped, nothing done "
            f"with that answer. {_ADVICE}")


def in_no_folder(res: Mapping[str, Any]) -> bool:
    """Whether files.update's answer ``res`` names no folder at all (``parents: []``)."""
    return _parent_ids(res) == []


def check_read_after(res: Mapping[str, Any], item_id: str, home: str, where: str) -> None:
    """The update taking ``item_id`` out of ``home`` answered that it is in no folder,
    and files.get then read it as ``res``. That answer is Drive's for an item it put in its
    owner's My Drive (attackrm39), and a lying server's for one it kept in the folder
    (edges40); the read tells which: one still in ``home`` stops, as an answer showing it
    there does (:func:`check_taken_out`)."""
    check_got(res, item_id, where)
    if is_in(res, home) is True:
        raise WrongItemError(
            f"take {where} out of its folder: the server answered that it is in no folder, "
            f"then that it is in folders {', '.join(_parent_ids(res) or [])}, not out of "
            f"{home}; stopped, nothing done with those answers. {_ADVICE}")


def taken_out(now: Mapping[str, Any], before: Mapping[str, Any], home: str, where: str,
              folder: str) -> tuple[str, bool]:
    """The line of ``where``, taken out of ``folder`` (id ``home``) only, and whether it stays
    in a folder it was in (a summary says so or not: leftovers39): files.get showed it
    as ``before``, the update answered ``now`` (:func:`check_taken_out` passed). It stays in
    a folder it was in, said; or another process took it out of those between the two
    requests and Drive put it, left in none, at the top of My Drive, or (another user's) in
    no folder the caller sees (attackrm39): said so, never "where it stays"."""
    had = [p for p in _parent_ids(before) or [] if p != home]
    after = _parent_ids(now)   # (unsaid: the folders it had, as for the check above)
    stays = had if after is None else [p for p in after if p in had]
    if stays:
        return (f"{where}: taken out of {folder} only, not deleted: it is also in another "
                f"folder (id {stays[0]}; an item with two parents, kept from before 2020), "
                "where it stays. For good: Drive gives no item a second parent since 2020 (a "
                f"shortcut may stand for it in {folder})"), True
    top = [str(p.get("id")) for p in now.get("parents") or []
           if isinstance(p, Mapping) and p.get("isRoot") is True]
    place = f"at the top of My Drive (id {top[0]})" if top else \
        f"in folder {', '.join(after)}" if after else \
        "in no folder you see (its owner's My Drive, or none: search Drive for it by name)"
    return (f"{where}: taken out of {folder} only, not deleted; it was no longer in its other "
            f"folder (id {', '.join(had)}: taken out of it meanwhile), and Drive placed it "
            f"{place}" + ("" if not after else ", where it is now")), False


def check_unchanged(res: Mapping[str, Any], entry: RemoteEntry, listed_in: Optional[str],
                    where: str, *, marked_before: bool = False) -> None:
    """Before ``entry`` is deleted: files.get shows it now as ``res``, which must be the item
    a listing showed (its name, in the folder ``listed_in`` (else ``entry.parent_id``), with
    its md5; each unknown is not compared), else :class:`LeftAloneError` (a NotFoundError:
    what the plan meant to delete is not there any more: callers take it as gone). Drive's listings lag (and a cache
    may serve an old one): a checkpoint the user renamed or moved away to keep it was still
    listed as it was, and a prune deleted it from its new name or folder."""
    _check_kind(res, entry, where)
    now = res.get("md5Checksum")
    change = moved_since_listed(res, entry, listed_in)
    if change is None and entry.is_dir and not (entry.run_mark or marked_before) \
            and run_marked(res):
        # A run (another machine's) marked it while this push sent its files: its
        # checkpoints are in it now, and --delete went by a listing of before (attacksync34).
        # (``marked_before``: the store knew the mark, a listing without properties did not
        # show it: a dedupe's emptied twin, its mark carried to the folder kept.)
        change = "marked a run folder"
    if change is None and entry.md5 and isinstance(now, str) and now.lower() != entry.md5.lower():
        change = f"given other content (md5 {now})"
    _left_if(change, where)


def elsewhere(res: Mapping[str, Any], entry: RemoteEntry, listed_in: Optional[str],
              also: Collection[str] = ()) -> Optional[str]:
    """A parent files.get's ``res`` names besides the folder ``entry`` was listed in (else
    its ``parent_id``); None where there is none, or that folder is not known. Drive's delete
    and trash take an item from every folder it is in (a second parent kept from before
    2020): a prune took ``Archive/epoch_001.pt`` along with ``logs/epoch_001.pt``, a push's
    replacement of ``best.pt`` deleted the old copy for good from ``Archive`` too, and a
    listing that left ``parents`` out had ``push --delete`` trash ``drive:Docs/x.pdf`` with
    ``runs/x.pdf`` (attackout38). Only the folder the deletion was pointed at counts: a
    caller that decided on more names them in ``also`` (``push --delete``: the folders of
    DEST it removes the item from, item by item or whole; parents39)."""
    parents = res.get("parents")
    home = listed_in or entry.parent_id
    if not isinstance(parents, list) or not home:
        return None
    for p in parents:
        if not isinstance(p, Mapping) or p.get("id") == home or p.get("id") in also or \
                (p.get("isRoot") is True and home == "root"):
            continue
        return str(p.get("id"))
    return None


def _left_if(change: Optional[str], where: str) -> None:
    """LeftAloneError (said) where the item about to be deleted was ``change`` since listed."""
    if change is None:
        return
    log.warning("%s was %s on Drive since it was listed; not deleted", where, change)
    raise LeftAloneError(f"{where} was {change} on Drive since it was listed; not deleted")


def _check_kind(res: Mapping[str, Any], entry: RemoteEntry, where: str) -> None:
    """Before ``entry`` is deleted: files.get shows it as the kind the listing did. Drive
    never turns a file into a folder: a listing that showed a folder as a file (a proxy, a
    server that is not Drive) had ``push --delete`` trash a run folder whole, checkpoints and
    all, as a file SRC lacks (attackpush32)."""
    mime = res.get("mimeType")
    if not isinstance(mime, str) or (mime == FOLDER_MIME) == entry.is_dir:
        return
    listed, now = ("a folder", "a file") if entry.is_dir else ("a file", "a folder")
    raise WrongItemError(
        f"delete {where}: the server listed it as {listed}, but files.get answers {now}; "
        f"stopped, not deleted. {_ADVICE}")


def check_shortcut(res: Mapping[str, Any], entry: RemoteEntry, listed_in: Optional[str],
                   where: str) -> None:
    """Before a shortcut is deleted: files.get of its own id shows a shortcut. A listing
    that showed a folder as a shortcut had ``push --delete`` delete that folder by the
    "shortcut's" id, unchecked, whatever it held (attackpush32). And it is still named and
    placed as listed (``entry``: the shortcut's name and folder), as :func:`check_as_listed`
    asks of a file: one the user moved away to keep it went from its new folder
    (attacksync33)."""
    mime = res.get("mimeType")
    if isinstance(mime, str) and mime != SHORTCUT_MIME:
        now = "a folder" if mime == FOLDER_MIME else "a file"
        raise WrongItemError(
            f"delete {where}: the server listed it as a shortcut, but files.get answers {now}; "
            f"stopped, not deleted. {_ADVICE}")
    _left_if(moved_since_listed(res, entry, listed_in), where)


def check_moved(res: Mapping[str, Any], target_id: str, source_id: str, where: str) -> None:
    """A move from ``source_id`` into ``target_id`` answered ``res``: it must show the item
    in the target and out of the source (parents unsaid: taken as done). A move answered as
    done but not done had dedupe trash the folder still holding the item."""
    if is_in(res, target_id) is False or is_in(res, source_id) is True:
        if not _parent_ids(res):   # (a liar: a move into a folder is never in none)
            raise WrongItemError(
                f"move {where}: the server answered that it is in no folder, not moved into "
                f"{target_id}; stopped, nothing done with that answer. {_ADVICE}")
        raise WrongItemError(
            f"move {where}: the server answered for another item (it is still in folders "
            f"{', '.join(_parent_ids(res) or [])}, not moved into {target_id}); stopped, "
            f"nothing done with that answer. {_ADVICE}")
