"""What a push leaves on the store instead of replacing it: another run's checkpoint, and a
checkpoint further on in the push's own run (:mod:`drivestage.behind`).

**Another run's.** A checkpoint on the store is run R's when a sidecar of it there (either
form, :func:`drivestage.sidecar.owners`) names R and vouches for one of its copies (names
that copy's md5). With ``other_runs`` (the trainer; the CLI unless ``--force``) a push whose
local sidecar of that checkpoint names another run or none leaves the checkpoint and its
sidecars as they are, and the local ones stay unsent: sending them
would delete R's copy once the new sidecar vouches for the new one, or (a sidecar pushed
alone, ``--exclude '*.pt'``) leave R's copy vouched for by nothing. Every copy of the sidecar's
name on the store is read but those with the local sidecar's very bytes: two machines pushing
one name at once leave two, and the next push must not "repair" R's away. A sidecar the store
will not serve fails the push before a byte is sent (whose checkpoint it is cannot be told).

**Whose cannot be told.** A sidecar copy on the store that Drive flagged as malware or spam
and will not serve to this account (:mod:`drivestage.flagged`) says nothing this push can
read: the checkpoint it describes is left as it is, with its sidecars, as another run's is
(never replaced nor removed: its run is unknown), said once, and the push goes on (not a
refusal: the run may be the push's own). Before, the push failed at the read, at every
period of a mirror (attackstream40).

A checkpoint pushed without a local sidecar says no run: it goes up beside R's copy, which
R's sidecar keeps vouching for and :mod:`drivestage.old_copies` therefore keeps. A local
sidecar drivestage cannot read (not JSON, over :data:`drivestage.sidecar.MAX_BYTES`) says
nothing either: sent as any file, as before. A store file without a sidecar, or whose
sidecar names no run or vouches for none of its copies, is no run's checkpoint: replaced as
before. What the policy deletes anyway (``--keep-runs`` dropping R, R's own ``--keep-last``)
is not left: :mod:`drivestage.upload_tree` plans around what is left, then lets the local
file replace what the plan deletes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional, Sequence

from drivestage import behind, flagged, sidecar
from drivestage.errors import AbusiveFileError, NotFoundError, OtherRunError, \
    RemoteChangedError
from drivestage.local_tree import LocalFile
from drivestage.old_copies import Key, Listings, newest
from drivestage.sidecar import Sidecar
from drivestage.state import Md5Cache
from drivestage.store import RemoteEntry, RemoteStore

log = logging.getLogger(__name__)

#: Whether a local file is a checkpoint, given the sidecar pairs of its folder's names.
IsCheckpoint = Callable[[LocalFile, Mapping[str, str]], bool]

#: How many store files the refusal names before "and N more".
NAMED = 3


@dataclass(frozen=True)
class Left:
    """A checkpoint on the store a push left as it is, with the local files it did not send."""

    rel: str                      # the local checkpoint (or sidecar sent alone), SRC-relative
    where: str                    # the store's checkpoint, as the store names it
    theirs: str                   # how far it got ("epoch 5")
    mine: str                     # what the local one is ("epoch 4", "no run, epoch 4")
    keys: frozenset[Key]          # the local files left unsent (checkpoint and sidecars)
    id: str                       # the store's checkpoint's id
    path: str                     # the local file's path, as lines name it (LocalFile.shown)
    run: Optional[str] = None     # the other run; None: further on in the push's own run
    #: The store's sidecar (as the store names it) that Drive flagged and will not serve
    #: here: whose the checkpoint is cannot be told (``run`` None, nor further on).
    flagged: Optional[str] = None


def left_on_store(store: RemoteStore, cache: Md5Cache, listing: Listings,
                  files: Sequence[LocalFile], is_checkpoint: IsCheckpoint,
                  *, other_runs: bool) -> list[Left]:
    """The checkpoints on the store this push must leave: another run's (with
    ``other_runs``), and those further on in the same run. Decided before a byte is sent;
    at most one small read per sidecar copy that differs from the local one. Raises what
    the store raises when it will not serve such a sidecar (with ``other_runs``). Nothing
    is logged: the caller may still find the policy deletes one anyway (:func:`report`)."""
    by_key = {(lf.folder_rel, lf.name): lf for lf in files}
    names: dict[str, set[str]] = {}
    for lf in files:
        names.setdefault(lf.folder_rel, set()).add(lf.name)
    out: list[Left] = []
    if other_runs:
        for rel in sorted(names):
            out += _other_runs(store, cache, rel, by_key, names[rel], listing[rel])
    taken = {k for left in out for k in left.keys}
    out += _further_on(store, cache, listing, by_key, names, is_checkpoint, taken)
    return out


def report(left: Iterable[Left], store: Optional[RemoteStore] = None) -> None:
    """One warning for each checkpoint a push left on the store (one whose sidecar Drive
    flagged: once per ``store`` object, :mod:`drivestage.flagged`)."""
    for lf in left:
        if lf.flagged is not None:
            if store is not None and not flagged.first_time(store, lf.flagged):
                continue
            log.warning("Drive flagged %s as malware or spam and does not serve it to this "
                        "account, so whose run %s is cannot be told; left as it is, not "
                        "replaced with %s (%s). To replace it, remove that pair there (its "
                        "owner may read it: drivestage pull --acknowledge-abuse)", lf.flagged,
                        lf.where, lf.path, lf.mine)
        elif lf.run is not None:
            log.warning("%s is a checkpoint of run %s (%s); left as it is, not replaced with "
                        "%s (%s). Give each run its own folder", lf.where, lf.run, lf.theirs,
                        lf.path, lf.mine)
        else:
            log.warning("%s is further on (%s) than %s (%s) of the same run; left as it is: "
                        "pull it to continue from it, or delete it there to replace it",
                        lf.where, lf.theirs, lf.path, lf.mine)


#: How a command line replaces another run's checkpoints (the ``refusal``'s default hint).
FORCE = "add --force"


def refusal(left: Sequence[Left], how: str = FORCE) -> str:
    """The one line that says which store files of other runs a push left, and what to do
    (``how``: the way to replace them anyway, in the caller's terms)."""
    runs = sorted({lf.run or "" for lf in left})
    shown = ", ".join(lf.where for lf in left[:NAMED])
    more = f" and {len(left) - NAMED} more" if len(left) > NAMED else ""
    if len(left) == 1:
        return (f"{left[0].where} is another run's checkpoint (run {left[0].run}, "
                f"{left[0].theirs}), left as it is; the rest was pushed. Push into another "
                f"folder, or {how} to replace it")
    which = f"run {runs[0]}" if len(runs) == 1 else "runs " + ", ".join(runs)
    return (f"{shown}{more} are another run's checkpoints ({which}), left as they are; the "
            f"rest was pushed. Push into another folder, or {how} to replace them")


def refuse(left: Iterable[Left], how: str = FORCE) -> None:
    """Raise :class:`~drivestage.errors.OtherRunError` when a push left checkpoints of another
    run (everything else was pushed): the CLI, ``CheckpointSync`` and the trainer report
    it as a failure, never as a push that went well."""
    others = [lf for lf in left if lf.run is not None]
    if others:
        raise OtherRunError(refusal(others, how))


def left_ids(left: Iterable[Left], listing: Listings) -> set[str]:
    """The store files of the checkpoints a push leaves, and their sidecars in either form:
    ``--delete`` removed a sidecar whose local name differs (0.1.0's ``epoch_001.pt.json``
    beside a local ``epoch_001.json``), and the next push replaced the checkpoint it left,
    vouched for by nothing any more."""
    out: set[str] = set()
    for lf in left:
        for folder, name in lf.keys:
            listed = listing[folder]
            sides = {s for s, cs in sidecar.owners(listed).items() if name in cs}
            out |= {e.id for n in sides | {name} for e in listed.get(n, []) if not e.is_dir}
    return out


def _other_runs(store: RemoteStore, cache: Md5Cache, rel: str,
                by_key: dict[Key, LocalFile], local: set[str],
                remote: dict[str, list[RemoteEntry]]) -> list[Left]:
    """Another run's checkpoints in the folder ``rel`` that the local files would replace."""
    files = {n: fs for n, fs in ((n, [e for e in es if sidecar.has_bytes(e)])
                                 for n, es in remote.items()) if fs}
    local_sides = sidecar.owners(local)       # local sidecar -> the local checkpoints
    out: list[Left] = []
    taken: set[Key] = set()
    for side, ckpts in sorted(sidecar.owners(set(files) | local).items()):
        copies = files.get(side, [])
        mine_ckpts = ckpts & local
        # The local sidecar that says whose the local files are: this one, when it is sent
        # over the store's; else one of another form sent with the checkpoint.
        own = side if side in local else next(
            (s for s in sorted(local_sides) if local_sides[s] & mine_ckpts), None)
        if not copies or own is None or {(rel, n) for n in mine_ckpts | {side}} & taken:
            continue  # nothing there to replace, a checkpoint sent without a sidecar, or
            # one already left (both sidecar forms of it on the store)
        own_lf = by_key[(rel, own)]
        try:
            own_md5 = cache.md5(own_lf.path, follow=False, real=own_lf.real)
        except OSError:
            continue  # gone meanwhile: the send says so
        mine = sidecar.read(own_lf.path, follow=False, real=own_lf.real)
        if mine is None:
            continue  # no sidecar to drivestage (unreadable, too large): whose, none can tell
        for copy in sorted(copies, key=lambda e: (-e.modified, e.id)):
            if copy.md5 == own_md5 and side == own:
                continue  # the local sidecar's very bytes: the same run
            theirs_copies = [e for c in sorted(ckpts) for e in files.get(c, [])]
            flagged_side: Optional[str] = None
            try:
                theirs, vouched = _whose(store, copy, theirs_copies)
            except AbusiveFileError:
                # Whose, none can tell: kept as another run's is (the newest copy stands for
                # them all; left_ids keeps every copy of the names), never replaced.
                theirs, flagged_side = None, store.describe(copy)
                vouched = max(theirs_copies or [copy], key=lambda e: (e.modified, e.id))
            if vouched is None or (flagged_side is None and (
                    theirs is None or mine.run == theirs.run)):
                continue
            keys = {(rel, n) for n in {side} | mine_ckpts if n in local}
            keys |= {(rel, s) for s, cs in local_sides.items() if cs & mine_ckpts}
            lf = by_key[(rel, sorted(mine_ckpts)[0])] if mine_ckpts else by_key[(rel, side)]
            out.append(Left(lf.rel, store.describe(vouched),
                            _label(theirs) if theirs is not None else "whose run: unknown",
                            _mine(mine), frozenset(keys), vouched.id, lf.shown,
                            theirs.run if theirs is not None else None, flagged_side))
            taken |= keys
            break
    return out


def _whose(store: RemoteStore, side: RemoteEntry, ckpts: Iterable[RemoteEntry]
           ) -> tuple[Optional[Sidecar], Optional[RemoteEntry]]:
    """What the sidecar copy ``side`` on the store says, and the copy among ``ckpts`` (its
    checkpoints' copies there) it vouches for: (None, None) when it names no run, it is no
    sidecar, or it is gone."""
    try:
        try:
            data = sidecar.fetch(store, side)
        except RemoteChangedError:
            # Other bytes than listed: Drive's listings lag (this process updated it a
            # moment ago, or another machine did). Whose it is now is what counts: read so.
            data = sidecar.fetch(store, store.stat(side))
    except NotFoundError:
        return None, None  # deleted meanwhile (another push): nothing of it to keep
    said = sidecar.parse(data, side.name) if data is not None else None
    if said is None or said.md5 is None:
        return None, None
    named = [e for e in ckpts if (e.md5 or "").lower() in said.md5s]
    kept = sidecar.vouched(named, said) if named else None
    # Whose the bytes there are: a push stopped between a checkpoint's update in place and
    # its sidecar's last write left the old description on top, the new under ``coming``
    # (sidecar_phases), and a top naming no run hid the run of the bytes there (attacksync36).
    theirs = said.speaking_for(kept.md5) if kept is not None else said
    if theirs.run is None:
        return None, None
    return theirs, kept


def _further_on(store: RemoteStore, cache: Md5Cache, listing: Listings,
                by_key: dict[Key, LocalFile], names: dict[str, set[str]],
                is_checkpoint: IsCheckpoint,
                taken: set[Key]) -> list[Left]:
    """Checkpoints (and their sidecars) whose copy on the store is further on in the same
    run than the local one (:mod:`drivestage.behind`): left as they are there."""
    out: list[Left] = []
    # Paired once per folder: looked up file by file among all its names, an idle period
    # of a 5,000-file folder took 45 s of CPU (quadratic) on the machine that trains.
    paired = {rel: sidecar.pairs(folder) for rel, folder in names.items()}
    for (rel, name), lf in by_key.items():
        side_name = paired[rel].get(name)
        theirs = [e for e in listing[rel].get(name, []) if sidecar.has_bytes(e)]
        their_sides = [e for e in listing[rel].get(side_name or "", []) if sidecar.has_bytes(e)]
        if side_name is None or (rel, side_name) not in by_key or not theirs or \
                len(their_sides) != 1 or not is_checkpoint(lf, paired[rel]) or \
                (rel, name) in taken:
            continue
        current = newest(theirs)
        try:
            if current.size == lf.size and current.md5 == cache.md5(lf.path, follow=False,
                                                                   real=lf.real):
                continue  # unchanged: nothing to replace
        except OSError:
            continue  # gone meanwhile: the send says so
        got = behind.further_on(store, cache, lf, by_key[(rel, side_name)], current,
                                their_sides[0])
        if got is None:
            continue
        out.append(Left(lf.rel, store.describe(current), got.theirs, got.mine,
                        frozenset({(rel, name), (rel, side_name)}), current.id, lf.shown))
    return out


def _label(side: Sidecar) -> str:
    if side.epoch is None:
        return "no epoch given"
    into = side.epoch_iteration
    return f"epoch {side.epoch}" + (f", {into} steps into the next" if into else "")


def _mine(side: Sidecar) -> str:
    return f"{'run ' + side.run if side.run else 'no run'}, {_label(side)}"
