"""What one push of the run folder verified on Drive, as :class:`trainer.writer.BackgroundWriter`
counts it ("safe on Drive", a stop's line of the files not there, ``train.keep_local``).

A push that ends well credits what it uploaded, and the names it was asked to look at again
(written while an earlier push ran, or verified by a push that then failed: this one finds
them unchanged). A push that fails credits what it had verified before the failure, read from
its :class:`drivestage.push_result.Outstanding`: a checkpoint and its sidecar, both sent and
verified (or already there, unchanged). Before, it credited nothing; a push failing at its end
every time (Drive refusing the deletions of retention in a folder shared with this account as
a writer that may not delete) left every checkpoint uncounted for good: a stop's line told
the user to upload files Drive held, and "safe on Drive" never moved (train27).
:class:`SafeOnDrive` is the newest checkpoint so counted; :func:`outage_text` the writer's
warning when no push ended well for two save intervals.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Collection, Iterable, Mapping, Optional

from drivestage.lost_mounts import in_drive_mount, said
from trainer import checkpoint as ckpt
from trainer.state import Position


#: How many files not on Drive a stop's line names before "and N more".
NAMED_UNSENT = 5


def unsent_text(names: list[str], spec: str) -> str:
    """``3 files of this run are not on drive:x: a.pt, b.pt, c.pt`` (at most
    :data:`NAMED_UNSENT` named)."""
    n = len(names)
    shown = ", ".join(names[:NAMED_UNSENT])
    more = f" and {n - NAMED_UNSENT} more" if n > NAMED_UNSENT else ""
    return (f"{n} file{'s' if n != 1 else ''} of this run {'are' if n != 1 else 'is'} not on "
            f"{spec}: {shown}{more}")


@dataclass(frozen=True)
class SafeOnDrive:
    """The newest checkpoint known to be verified on Drive."""

    name: str
    position: Position
    verified_at: float                 # time.time() when it was known verified

    @classmethod
    def of(cls, remote) -> "SafeOnDrive":
        """From a :class:`trainer.drive.RemoteCheckpoint` (its sidecar's time on Drive)."""
        s = remote.sidecar
        return cls(remote.name, Position(s.epoch or 0, s.iteration or 0, s.epoch_iteration),
                   remote.described.modified)


@dataclass
class Credit:
    """What one push settled, by name (names in the run folder)."""

    sent: list[str] = field(default_factory=list)   # verified on Drive as written before it
    left: set[str] = field(default_factory=set)     # left out on purpose (policy, other runs)
    changed: set[str] = field(default_factory=set)  # written again while it ran: look again


def credit(result, written: Mapping[str, int], before: Mapping[str, int], recheck: set[str],
           exclude: Iterable[str], folder: str,
           unsent: Optional[Collection[str]] = ()) -> Credit:
    """The names ``result`` (a :class:`drivestage.push_result.PushResult`) verified.

    ``written``: the writes of each name now; ``before``: when the push began (a name written
    again since may have gone as its older bytes, or without its sidecar). ``recheck``: names
    to credit when this push finds them there. ``exclude``: never sent (``last.pt``).
    ``unsent``: what a push that failed had not verified yet (``Outstanding.left()``; None: it
    failed before it knew what it sends, and credits nothing); () for a push that ended well.
    """
    changed = {n for n in written if written.get(n) != before.get(n)}
    if result is None or unsent is None:
        return Credit(changed=changed)
    left = set(result.skipped_by_policy) | set(result.further_on) | set(result.other_run) \
        | set(result.unknown_run) | set(exclude)
    missing = set(unsent)

    def verified(name: str) -> bool:
        if name not in written or name in changed or name in left:
            return False
        if name in missing or os.path.basename(ckpt.sidecar_path(name)) in missing:
            return False   # (its sidecar not sent: not verified there)
        return name in result.uploaded or os.path.exists(os.path.join(folder, name))

    uploaded = set(result.uploaded)
    return Credit(sorted(n for n in uploaded | recheck if verified(n)), left, changed)


def outage_text(quiet_for: float, exc: BaseException, out_dir: str, safe: str,
                part: bool) -> str:
    """The writer's warning, once, when no push ended well for two save intervals; ``part``:
    those pushes verified checkpoints all the same (the rest of each failed: Drive refusing
    the deletions of retention), which "has not accepted a checkpoint" denied."""
    err = str(exc).rstrip(".")
    if part:
        return (f"Drive verifies this run's checkpoints but has refused the rest of every push "
                f"for {quiet_for / 60:.0f} minutes: {err}. Training goes on; the newest copy safe "
                f"on Drive is {safe}. Older checkpoints stay on Drive (drive.keep_last, "
                f"drive.keep_best) until that is fixed; the trainer keeps retrying and says when "
                f"Drive accepts checkpoints again")
    return (f"Drive has not accepted a checkpoint for {quiet_for / 60:.0f} minutes: {err}. "
            f"Training goes on and saves in {out_dir}; the newest copy safe on Drive is {safe}. "
            f"Check the network, or re-authenticate (in Colab run auth.authenticate_user() "
            f"again); the trainer keeps retrying and says when Drive accepts checkpoints again")


def furthest(names: Iterable[str], positions: Mapping[str, Position]) -> Optional[str]:
    """The name of ``names`` furthest on by its position (None: none); of equals, not
    ``best.pt`` (a copy of the epoch file ``--resume auto`` takes)."""
    return max(names, key=lambda n: (positions[n].epoch, positions[n].epoch_iteration,
                                     n != "best.pt"), default=None)


def ahead(a: Position, b: Position) -> bool:
    """Whether ``a`` is as far on as ``b`` (or further)."""
    return (a.epoch, a.epoch_iteration) >= (b.epoch, b.epoch_iteration)


def safe_text(safe: Optional[SafeOnDrive], default: str, short: bool = False) -> str:
    """:meth:`trainer.writer.BackgroundWriter.safe_text` of ``safe`` (``default``: None)."""
    from trainer.drive import describe_safe

    if safe is None:
        return default
    p = safe.position
    text = describe_safe(safe.name, p.epoch, p.iteration, p.epoch_iteration, safe.verified_at)
    return text[len("Drive: "):].rsplit(" (", 1)[0] if short else text


def final_text(safe: Optional[SafeOnDrive], left: Optional[Collection[str]],
               unsent: Collection[str], exc: BaseException, out_dir: str,
               spec: str, other_run: Collection[str] = ()) -> tuple[bool, str]:
    """The last line of a training whose final push failed, and whether this machine may go:
    every file of ``out_dir`` verified on ``spec`` (``left``, what that push had not sent:
    none; ``unsent``, this run's checkpoints not verified there: none), only the rest of the
    push failed (retention's deletions). Before, ``mirror of … failed`` alone (exit 1) said
    neither which checkpoint was safe there nor what was not (train28). ``other_run``: the
    names the push left as another run's there; a push into ``spec`` leaves them again, so
    the line gives one into a folder of the run's own (attacktr29)."""
    # drive.logs in a Google Drive mount (warned at the start): what its push wrote there
    # reaches Drive later, and a mount that stopped lost what it had not sent. The push to
    # give is to the drive: path, not into the mount (which no longer answers).
    mounted = in_drive_mount(spec)
    err = said(exc, then="train on with drive.logs there",
               instead="upload to Drive without it as below").rstrip(".")
    if safe is not None and left is not None and not left and not unsent:
        return True, (f"checkpoints in {out_dir} and on {spec}: every one verified there, the "
                      f"newest {safe.name} ({safe.position.label}); the rest of the final push "
                      f"failed ({err}): older checkpoints stay on Drive (drive.keep_last, "
                      f"drive.keep_best) until that is fixed")
    # A sidecar not sent: its checkpoint is not verified there (named for it).
    names = sorted({_checkpoint_of(n, out_dir) for n in (left or ())} | set(unsent))
    there = (f"the newest verified there is {safe.name} ({safe.position.label})" if safe is not None
             else "nothing of this run is verified there")
    push = f"drivestage push {out_dir} {spec}"
    if mounted is not None:
        newest = (f"the newest written into it is {safe.name} ({safe.position.label}), which "
                  "Drive may not have") if safe is not None else \
            "nothing of this run was written into it"
        return False, (f"mirror of {out_dir} to {spec} failed: {err}; {newest}: upload the run "
                       f"with drivestage push {out_dir} {mounted[1]} before this machine goes "
                       "(it sends what Drive lacks)")
    theirs = sorted({_checkpoint_of(n, out_dir) for n in other_run})
    if theirs:
        rest = (f"not there as this run's: {', '.join(theirs[:5])} (another run's of that name "
                f"is there): push this run into a folder of its own with drivestage push "
                f"{out_dir} drive:<a new Drive folder> before this machine goes")
    elif names:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        rest = f"not there: {shown}: upload them with {push} before this machine goes"
    else:
        rest = (f"whether the rest of {out_dir} is there is not known (the push failed before "
                f"it compared the folders): run {push} before this machine goes")
    return False, f"mirror of {out_dir} to {spec} failed: {err}; {there}; {rest}"


def _checkpoint_of(name: str, folder: str) -> str:
    """The checkpoint a sidecar ``name`` describes, when ``folder`` holds it; else ``name``."""
    pt = name[:-len(".json")] + ".pt"
    return pt if name.endswith(".json") and os.path.exists(os.path.join(folder, pt)) else name


def not_on_drive(positions: Mapping[str, Position], written: Mapping[str, int],
                 verified: Mapping[str, int], left_out: Collection[str], jobs: Iterable,
                 folder: str, exclude: Iterable[str]) -> list[str]:
    """The run's checkpoints that Drive does not hold as they are here, newest first: each
    written and not verified there since (its last write: ``written`` against ``verified``),
    or an epoch's save of ``jobs`` (being written, waiting) not written yet (a close without a
    push writes it, and sends nothing). Not what never goes to Drive (``exclude``: ``last.pt``),
    what the last push left out on purpose (``left_out``: retention; another run's copy
    there, said loudly then), nor an autosave pruned here since."""
    found = {n: p for n, p in positions.items()
             if verified.get(n) != written.get(n) and n not in left_out
             and os.path.exists(os.path.join(folder, n))}
    for job in jobs:
        if not job.droppable and not job.written:
            found.update({n: job.position for n in job.names})
    skip = set(exclude)
    return sorted((n for n in found if n not in skip),
                  key=lambda n: (found[n].iteration, n), reverse=True)
