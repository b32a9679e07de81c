"""What a pull does for one file, decided before anything is staged: the pure
:func:`decide` over :class:`Local` (what is on local disk), the records of the archive's own
last extraction (:func:`own_records`), and :func:`safe_name` (a remote title as a local file
name). Split from :mod:`drivestage.stage_file` at its 500-line cap."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence

from drivestage import local_trash, stamps
from drivestage.errors import RemoteError, UsageError
from drivestage.local_held import stands_for
from drivestage.extract import MemberRecord
from drivestage.mtimes import same_mtime as same_mtime  # re-exported (moved: pull29, mount31)
from drivestage.paths import UTF8_LOCALE, names_encoding, printable
from drivestage.stamps import Stamp
from drivestage.store import RemoteEntry

#: The longest file name (bytes) the usual local file systems take (ext4, xfs, btrfs, tmpfs).
NAME_MAX = 255


def safe_name(name: str, where: str, item_id: Optional[str] = None) -> str:
    """A remote title usable as a local file name (never one drivestage keeps for itself);
    ``item_id`` is the Drive item's, named where its title can be no name at all."""
    from drivestage.extract.validation import is_reserved

    if name in ("", ".", "..") and item_id is not None:
        # What Drive holds, not what the user typed: exit 1, not 2, and the item named by
        # its id, since its title names nothing (lefts43, attackserver42).
        raise RemoteError(f"{where}: the item {item_id} on Drive has the title {name!r}, "
                          "which no local file name can be; rename it on Drive "
                          f"(https://drive.google.com/open?id={item_id})")
    if name in ("", ".", ".."):
        raise UsageError(f"{where}: the remote name {name!r} cannot be a local file name")
    local = name.replace("/", "_").replace("\0", "_")
    if any("\ud800" <= ch <= "\udfff" for ch in local):
        # (os.fsencode raised UnicodeEncodeError on it, a traceback: attack28)
        raise UsageError(f"{where}: the remote name {printable(local)} is not valid Unicode "
                         "(half of a surrogate pair): no local file name can be it. Rename it "
                         "on Drive, or leave it out of a folder pull (--exclude)")
    try:
        size = len(os.fsencode(local))
    except UnicodeEncodeError as exc:   # (a traceback from os.fsencode: attackcli40)
        raise UsageError(f"{where}: the remote name {printable(local)} cannot be a file name "
                         f"here: {names_encoding()}, which has no {exc.object[exc.start]!r}; "
                         f"{UTF8_LOCALE}, or leave it out of a folder pull (--exclude)") from None
    if size > NAME_MAX:
        raise UsageError(f"{where}: the remote name {printable(local[:60])}... is {size} bytes "
                         f"long; local file systems allow at most {NAME_MAX}. Rename it on "
                         "Drive, or leave it out of a folder pull (--exclude)")
    if local.casefold() == local_trash.NAME:
        # A local DEST's trash: "rename that item on Drive" named a Drive it never was on,
        # and said nothing of how to get back what was trashed there (attacknew34).
        raise UsageError(f"{where}: {local} is a local DEST's trash (what push --delete and "
                         "prune --use-trash moved there), a name drivestage keeps for "
                         "itself; copy what you need out of it with cp or mv, or pull its "
                         "files one at a time")
    held = stands_for(local)
    if held is not None:
        # A local DEST's copy kept aside by a push (local_held): "rename that item on Drive"
        # named a Drive it never was on, and not the file it stands for (attacknew35).
        raise UsageError(f"{where}: {local} is an old copy of {printable(held)} that a push "
                         "into that local folder keeps aside until the new one is verified "
                         f"(then removed), a name drivestage keeps for itself; pull "
                         f"{printable(held)}, or copy this one with cp")
    if is_reserved(local):
        raise UsageError(f"{where}: the name {local} is where drivestage keeps its stamps and "
                         "locks (names starting with .drivestage, and partial downloads "
                         ".<name>.<16 hex digits>.partial or .ranges, with their records' "
                         "temporary files); rename that item on Drive")
    return local


# ------------------------------------------------------------------------------ the decision

@dataclass(frozen=True)
class Local:
    """What is on local disk for one file to stage (gathered before :func:`decide`)."""

    size: Optional[int] = None       # the file at the target; None when there is none
    mtime_ns: Optional[int] = None
    members_intact: bool = False     # every member the stamp lists is in place
    partial: int = 0                 # bytes of a partial download of this very version
    md5_ok: Optional[bool] = None    # the target's md5 is the remote one (None: not checked)


def decide(stamp: Optional[Stamp], entry: RemoteEntry, local: Local, *, extract: bool,
           force: bool = False) -> str:
    """What to do for ``entry``: ``cached``, ``extract``, ``verified``, ``resume``, ``update``
    or ``download``; or ``check`` when the answer depends on the target's md5 (hash it, then
    ask again with ``local.md5_ok`` set). Pure: no I/O. ``stamp`` is None with ``force``; a
    stamp of another remote file of that name (another id) counts for its content: same md5
    and size is the same file, another md5 an older version (``update``).

    The target is the stamped copy when its size and mtime are the stamp's; anything else
    at the target (a copy some other process or a killed pull put there) is judged by its
    md5 when its size is right."""
    stamped = (stamp is not None and local.size == stamp.get("size")
               and same_mtime(local.mtime_ns, stamp.get("mtime_ns"), stamp.get("_shown_ns")))
    older = stamp is not None and not same_content(stamp, entry)
    if removed(stamp, local) and extract and not older and not force and \
            stamp is not None and stamp.get("size") == entry.size and local.members_intact:
        # (--remove-archive: the members stand for the archive; one missing brings it back.)
        return "cached"
    if stamped and not older and stamp is not None and stamp.get("size") == entry.size \
            and not force:
        return "cached" if not extract or local.members_intact else "extract"
    if not (stamped and older) and not force and local.size == entry.size and entry.md5:
        if local.md5_ok is None:
            return "check"
        if local.md5_ok:
            return "verified"
    action = "update" if older or local.md5_ok is False else "download"
    return "resume" if local.partial and not force else action


def removed(stamp: Optional[Stamp], local: Local) -> bool:
    """Whether ``stamp``'s archive was removed once extracted (``pull --remove-archive``)
    and nothing is at its name: a file there since is judged as any other."""
    return stamp is not None and stamp.get("removed") is True and local.size is None \
        and bool(stamp.get("extracted"))


def put_since(stamp: Optional[Stamp], local: Local, found: Sequence[Stamp] = ()) -> bool:
    """Whether the file at the name of ``stamp``'s archive, removed once extracted, is another
    one put there since: the user's, which a pull never replaces unasked (and with
    --remove-archive, would then remove). Not the stamped copy a kill kept from its removal,
    nor the staged copy of another file of that name (``found``: the name's stamps)."""
    def describes(s: Stamp) -> bool:
        return local.size == s.get("size") and \
            same_mtime(local.mtime_ns, s.get("mtime_ns"), s.get("_shown_ns"))

    return stamp is not None and stamp.get("removed") is True and local.size is not None \
        and not any(describes(s) for s in [stamp, *found])


def same_content(stamp: Stamp, entry: RemoteEntry) -> bool:
    """Whether ``stamp`` is of ``entry``'s content as Drive lists it: the same md5; for a file
    Drive lists without one (verified by its SHA-256), the same SHA-256. By md5 alone, a new
    version of such a file (md5 None both times) of the same size was "already staged" for
    good, the old bytes kept (attackds29)."""
    if stamp.get("md5") != entry.md5:
        return False
    return bool(entry.md5) or stamp.get("sha256") == (entry.sha256 or "").lower() or \
        not entry.sha256


def verified_sha256(stamp: Optional[Stamp], entry: RemoteEntry, checksum: str
                    ) -> Optional[str]:
    """The SHA-256 that vouches for the copy of ``entry``, which its stamp keeps and the
    summary names: Drive's, when this run verified the bytes with it (``checksum``) or Drive
    lists no md5 (the version's mark: :func:`same_content`); when this run hashed nothing, the
    one ``stamp`` (of the same content) keeps. None where the md5 verified them: a summary
    named Drive's md5 for bytes verified by SHA-256, an md5 never checked (attackpull33)."""
    if entry.sha256 and (checksum == "sha256" or not entry.md5):
        return entry.sha256.lower()
    kept = stamp.get("sha256") if stamp is not None and not checksum and \
        same_content(stamp, entry) else None
    return kept if isinstance(kept, str) else None


def own_records(basis: Optional[Stamp], entry: RemoteEntry, action: str
               ) -> list[MemberRecord]:
    """The records of ``entry``'s own extraction (a stamp of the same md5: its ``members``
    are only ever that archive's), for a rerun that finds a member gone: never an earlier
    version's, whose same-sized files differ."""
    if action != "extract" or basis is None or basis.get("md5") != entry.md5 or \
            not entry.md5:
        return []
    return stamps.records(basis)
