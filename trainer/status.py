"""``trainer status`` beyond "safe on Drive": the checkpoint ``--resume auto`` goes on from.

A checkpoint verified on Drive is safe there (its bytes are the bytes saved), but it may be no
state to train on: saved by a run that had diverged (NaN or infinite weights, EMA or optimizer
state). ``trainer status`` called such a file safe, and nothing more; the user, told the run's
newest state was on Drive, started a machine for it and met ``--resume auto`` passing over it
(:mod:`trainer.resume_fallback`), or refusing. Now status looks inside the candidates
``--resume auto`` on a machine starting from Drive takes, in its order (the run's newest
first, each state once, :data:`~trainer.resume_fallback.MAX_TRIED` states at most), and names
each one passed over with why, and the one it goes on from.

Checked as the vetter of ``--resume auto`` checks them, with its words: model weights (and an
EMA) of another layout than the config's network under the run's own signature (a damaged or
foreign file, :func:`layout_check`: the network built on the meta device, no memory and
milliseconds, its shapes compared; before, status named such a file as the resume point and
the run passed over it), then non-finite values in the model weights, the EMA and the
optimizer state (:func:`trainer.resume_checks.check_contents`). An optimizer state of another
model is for the run to find (its parameter groups depend on the phase). The bytes are read from this machine's run folder when it holds
them (the same md5: no download), else fetched into a temporary folder that is removed; the
run folder is never written.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Optional, Sequence

from drivestage import run_claims
from drivestage.deferred_ctrl_c import TemporaryFolder
from drivestage.drive import server_clock
from drivestage.errors import DriveStageError, NotFoundError
from trainer import checkpoint as ckpt, drive_lone
from trainer.drive import DriveFolder, RemoteCheckpoint, newest_of_current_run, \
    unvouched_ahead
from trainer.errors import CheckpointError, NewerCheckpointError, UnusableCheckpointError
from trainer.resume_fallback import MAX_TRIED


@dataclass
class Verdict:
    """Where ``--resume auto`` from Drive goes on from, and what it passes over first."""

    start: Optional[RemoteCheckpoint] = None
    passed_over: list[tuple[RemoteCheckpoint, str]] = field(default_factory=list)  # (it, why)
    bounded: bool = False          # MAX_TRIED states were bad: auto refuses, nothing older tried
    unknown: Optional[str] = None  # why a candidate could not be looked at (Drive unreachable)
    refused: Optional[str] = None  # the config changes the model's shape: restore's refusal
    # Checkpoints further on than the start that their sidecar does not vouch for (cut short
    # or replaced on Drive): never candidates, passed over (trainer.drive.unvouched_ahead).
    unvouched: list[RemoteCheckpoint] = field(default_factory=list)
    # Those further on with no sidecar at all (a save killed between its two uploads): their
    # Drive names (trainer.drive_lone.ahead).
    lone: list[str] = field(default_factory=list)


class _ConfigChanged(CheckpointError):
    """The config changes the model's shape (class count, anchors mask, attention, width):
    ``--resume auto`` takes the candidate and restore refuses it, whatever it holds."""


def resume_verdict(folder: DriveFolder, remote: Sequence[RemoteCheckpoint], out_dir: str,
                   layout: Optional[Callable[[dict, str], None]] = None,
                   config: Optional[Callable[[dict, str], None]] = None) -> Verdict:
    """The candidates of the run written last in ``remote``, newest first, looked at as
    ``--resume auto`` looks at them until one passes (``layout``: :func:`layout_check`; the
    one it takes, asked ``config``, :func:`config_check`, as restore does);
    and the checkpoints further on than the one it goes on from (else the run's newest)
    that their sidecar does not vouch for."""
    verdict = _looked_at(folder, remote, out_dir, layout, config)
    newest = newest_of_current_run(remote)
    if newest is not None:
        at = verdict.start or newest
        verdict.unvouched = unvouched_ahead(folder, at.sidecar.run, at.sidecar.progress)
        verdict.lone = [folder.where(e.name) for e in drive_lone.ahead(folder, at.sidecar)]
    return verdict


def _looked_at(folder: DriveFolder, remote: Sequence[RemoteCheckpoint], out_dir: str,
               layout: Optional[Callable[[dict, str], None]],
               config: Optional[Callable[[dict, str], None]]) -> Verdict:
    verdict = Verdict()
    newest = newest_of_current_run(remote)
    if newest is None:
        return verdict
    run, skip, bad_md5s, vetted_bad = newest.sidecar.run, [], set(), 0
    local = _local_bytes(out_dir)
    try:   # (TMPDIR full, read-only, or a file: one line, not a traceback: attack45)
        room = TemporaryFolder(prefix="trainer-status-")   # (removed whole: lefts45)
    except OSError as exc:
        verdict.unknown = f"{newest.where} could not be fetched to look inside ({exc})"
        return verdict
    with room as tmp:
        while True:
            chosen = newest_of_current_run(remote, run, skip=skip)
            if chosen is None:
                return verdict
            md5 = (chosen.sidecar.md5 or chosen.entry.md5 or "").lower()
            if md5 and md5 in bad_md5s:     # the same bytes under another name: one state
                skip.append(chosen.name)
                continue
            if vetted_bad >= MAX_TRIED:
                verdict.bounded = True
                return verdict
            fetched: Optional[str] = None
            try:
                path = _here(local, md5)
                if path is None:
                    path = fetched = folder.fetch(chosen, os.path.join(tmp, chosen.name))
                state = ckpt.load_checkpoint(path)
                why = ckpt.sidecar_mismatch(state, chosen.sidecar)
                if why is None:
                    from trainer.resume_checks import check_contents

                    if layout is not None:
                        layout(state, chosen.where)
                    check_contents(state, chosen.where)
                    if config is not None:
                        config(state, chosen.where)
            except (_ConfigChanged, NewerCheckpointError) as exc:
                # (Status said "--resume auto goes on from" it, or nothing: the resume was
                # then refused at once, on the machine started for it.)
                verdict.refused = str(exc).replace(os.path.join(tmp, chosen.name), chosen.where)
                return verdict
            except UnusableCheckpointError as exc:
                verdict.passed_over.append((chosen, exc.why))
                vetted_bad += 1
                bad_md5s.add(md5)
                skip.append(chosen.name)
                continue
            except (CheckpointError, NotFoundError) as exc:
                # (Unreadable, or gone since the listing: passed over as --resume auto does,
                # and not counted toward its bound. Bytes that arrived damaged twice are not
                # passed over: --resume auto stops there (attack49), so the verdict is unknown.)
                text = str(exc).replace(os.path.join(tmp, chosen.name), chosen.where)
                verdict.passed_over.append((chosen, text))
                skip.append(chosen.name)
                continue
            except (DriveStageError, OSError) as exc:   # (OSError: the copy's disk, ENOSPC)
                verdict.unknown = f"{chosen.where} could not be fetched to look inside ({exc})"
                return verdict
            finally:
                if fetched is not None:   # (its copy only: Drive keeps the file)
                    ckpt.remove_checkpoint(fetched)
            if why is not None:
                verdict.passed_over.append((chosen, why))
                skip.append(chosen.name)
                continue
            verdict.start = chosen
            return verdict


def _local_bytes(out_dir: str) -> dict[str, str]:
    """md5 -> a checkpoint file in the run folder whose sidecar names those bytes (no file is
    read here: a run folder keeps every epoch file, gigabytes; :func:`_here` hashes the one
    used)."""
    out: dict[str, str] = {}
    if os.path.isdir(out_dir):
        for c in ckpt.list_checkpoints(out_dir):
            out.setdefault((c.sidecar.md5 or "").lower(), c.path)
    out.pop("", None)
    return out


def _here(local: dict[str, str], md5: str) -> Optional[str]:
    """The run folder's file of those bytes, hashed to be sure (a file changed since its
    sidecar is not read for Drive's), or None."""
    from drivestage.localfs import file_md5, open_regular

    path = local.get(md5) if md5 else None
    if path is None:
        return None
    try:
        # Opened without waiting and hashed only when a regular file: a FIFO under the
        # checkpoint's name (its sidecar naming Drive's bytes) hung status for good.
        fd = open_regular(path)
    except OSError:
        return None
    try:
        return path if file_md5(fd) == md5 else None
    except OSError:
        return None
    finally:
        os.close(fd)


def foreign_refusal(out_dir: str) -> Optional[str]:
    """``train``'s refusal, in its words, where ``out_dir`` holds another program's file (or
    another run's checkpoint) under a name the run's saves write
    (:func:`trainer.resume_checks.refuse_foreign`): it comes before any look at Drive, so
    Drive's verdict said ("--resume auto goes on from …") was never what ``train`` did
    (lefts45). None where there is none; nothing is written."""
    from trainer.resume_checks import refuse_foreign

    try:
        refuse_foreign(out_dir)
    except CheckpointError as exc:
        return str(exc)
    return None


def lone_line(folder: DriveFolder, out_dir: str) -> str:
    """What status adds to "no verified checkpoint on … yet" where the folder holds checkpoints
    without their sidecar: the one ``--resume auto`` takes up (:func:`trainer.drive_lone.
    looked_inside`: fetched and looked inside, as the take-up does), those it passes over
    first, or that it starts fresh, or its refusal where ``out_dir`` (``train.out_dir``, as
    the resume names it) holds a file of that name; "" where there is none."""
    if not folder.lone:
        return ""
    first = folder.where(folder.lone[0].name)
    try:
        taken, passed, refused = drive_lone.looked_inside(folder, folder.lone, out_dir)
    except (DriveStageError, CheckpointError, OSError) as exc:   # (OSError: TMPDIR's)
        return (f"; {first} is there without its sidecar (a save killed between its two "
                "uploads?); whether --resume auto goes on from it is not known: it could not "
                f"be fetched to look inside ({exc})")
    if refused is not None:   # (the take-up's own words: lefts44b)
        return f"; --resume auto would refuse: {refused}"
    names = ", ".join(folder.where(e.name) for e in passed)
    if taken is None:
        return (f"; {names} {'is' if len(passed) == 1 else 'are'} there without a sidecar and "
                f"{'is no checkpoint' if len(passed) == 1 else 'none is a checkpoint'} of this "
                "trainer: --resume auto with no checkpoint in train.out_dir starts fresh")
    over = f" (it passes over {names}: no checkpoint of this trainer)" if passed else ""
    return (f"; {folder.where(taken.name)} is there without its sidecar (a save killed between "
            "its two uploads?): --resume auto with no checkpoint in train.out_dir goes on from "
            f"it{over}")


def verdict_lines(verdict: Verdict, spec: str, now: float) -> list[str]:
    """The lines status adds: none when the newest checkpoint is the start."""
    from trainer.drive import age_text, unvouched_text
    from trainer.state import Position, describe_run

    lines = [f"{unvouched_text(c)}: --resume auto passes over it" for c in verdict.unvouched]
    lines += [f"{where} {drive_lone.AHEAD_WHY}: --resume auto passes over it"
              for where in verdict.lone]
    lines += [f"{c.where} is no state to train on ({why}): --resume auto passes over it"
              for c, why in verdict.passed_over]
    if verdict.unknown is not None:
        lines.append(f"whether --resume auto can go on from it is not known: {verdict.unknown}")
    elif verdict.refused is not None:
        lines.append(f"--resume auto would refuse: {verdict.refused}")
    elif verdict.start is not None and lines:
        s = verdict.start.sidecar
        label = Position(s.epoch or 0, s.iteration or 0, s.epoch_iteration).label
        lines.append(f"--resume auto goes on from {verdict.start.where}: {label}, verified on "
                     f"Drive {age_text(now - verdict.start.described.modified)} ago")
    elif no_start(verdict, spec) is not None:
        lines.append(f"--resume auto refuses: {no_start(verdict, spec)}")
    return lines


def no_start(verdict: Verdict, spec: str) -> Optional[str]:
    """Why ``--resume auto`` refuses where it passed over every checkpoint (NaN weights, a
    misfit) and found none to start from, with what to do; None otherwise. (Said by the
    text and, as ``resume_refused``, by ``--json``, which had null there: attack52.)"""
    from trainer.state import describe_run

    if verdict.start is not None or not verdict.passed_over or verdict.unknown is not None \
            or verdict.refused is not None:
        return None
    run = verdict.passed_over[0][0].sidecar.run
    older = (f"the {MAX_TRIED} newest states of {describe_run(run)} are bad (older ones "
             f"are not tried)" if verdict.bounded else
             f"no checkpoint of {describe_run(run)} on {spec} is a state to train on")
    return (f"{older}; resume an earlier checkpoint with --resume PATH (drivestage ls {spec} "
            f"lists them, drivestage pull <one> ./weights fetches it), or start a new run in a "
            "new train.out_dir")


def layout_check(cfg: Any) -> Callable[[dict, str], None]:
    """``check(state, where)``: what ``--resume auto``'s vetter asks of a candidate's layout
    (:func:`trainer.resume_checks.check_layout`, the same refusal), against the config's
    network built on the meta device (no tensor memory; milliseconds), and of its EMA where
    the run keeps one. The class count is ``data.classes``'s, or, where that file is not on
    this machine, the checkpoint's own (then only a misfit under the signature it names)."""
    import torch

    from trainer.config import model_signature
    from trainer.model import YoloV4Tiny
    from trainer.resume_checks import check_ema, check_layout

    names = _class_names(cfg)
    classes = len(names) if names is not None else None
    nets: dict[int, dict] = {}

    def check(state: dict, where: str) -> None:
        saved = state.get("signature")
        n = classes if classes is not None else \
            (saved.get("num_classes") if isinstance(saved, dict) else None)
        if not isinstance(n, int):
            return
        if isinstance(saved, dict):
            try:
                ckpt.check_signature(saved, model_signature(cfg, n), where)
            except CheckpointError as exc:
                raise _ConfigChanged(str(exc)) from None
        if n not in nets:
            m = cfg.model
            with torch.device("meta"):
                nets[n] = YoloV4Tiny(n, m.anchors, m.anchors_mask, input_size=m.input_size,
                                     phi=m.phi, width=m.width).state_dict()
        if not check_layout(nets[n], state, where, model_signature(cfg, n)):
            return
        if cfg.train.ema and state.get("ema"):
            # (check_ema asks the EMA's own model for its state dict: the same shapes.)
            check_ema(SimpleNamespace(ema=SimpleNamespace(state_dict=lambda: nets[n])),
                      state["ema"], where)
    return check


def config_check(cfg: Any) -> Callable[[dict, str], None]:
    """``check(state, where)``: restore's refusals of a candidate that passed the vetter
    (:func:`trainer.restore.restore`), as ``--resume auto`` meets them once it chose it: the
    classes of ``data.classes`` (where that file is here) in another order or others of the
    same count, another kind of ``train.optimizer``, and in the middle of an epoch another
    ``train.seed``. Status said the run went on from such a file (attacktrain40)."""
    from trainer.restore import check_classes, saved_classes
    from trainer.resume_checks import check_optimizer_kind, trained_optimizer
    from trainer.sample_list import check_seed
    from trainer.state import Position

    names = _class_names(cfg)

    def check(state: dict, where: str) -> None:
        try:
            if names is not None:
                check_classes(saved_classes(state), names, where)
            check_optimizer_kind(cfg.train.optimizer, state.get("optimizer"), where,
                                 trained_optimizer(state))
            check_seed(state.get("config"), cfg.train.seed, Position(*ckpt.position_of(state)),
                       where, cfg.data.allow_change, main=False)
        except CheckpointError as exc:
            raise _ConfigChanged(str(exc)) from None
    return check


def _class_names(cfg: Any) -> Optional[list[str]]:
    from trainer.data.voc import read_classes
    from trainer.errors import DataError

    try:
        return list(read_classes(cfg.data.classes))
    except (OSError, DataError):
        return None


def local_line(out_dir: str, keep: int) -> Optional[str]:
    """``logs: 4 epoch files on this machine (epoch_001.pt to epoch_004.pt); train.keep_local
    2: 2 of them go once verified on Drive`` (None when the run folder holds none)."""
    from trainer.local_retention import epoch_files

    found = epoch_files(out_dir)
    if not found:
        return None
    names = sorted(found, key=lambda n: (found[n], n))
    span = names[0] if len(names) == 1 else f"{names[0]} to {names[-1]}"
    head = (f"{out_dir}: {len(names)} epoch file{'s' if len(names) != 1 else ''} on this "
            f"machine ({span}); train.keep_local {keep}")
    if not keep:
        return f"{head}: every one is kept"
    over = len(names) - keep
    return f"{head}: {over} of them go once verified on Drive" if over > 0 else \
        f"{head}: the newest {keep} are kept"


def lease(folder: Any, minutes: float) -> Optional[dict[str, Any]]:
    """``trainer status``'s ``lease`` (``--json``): the trainer holding the run's lease on
    ``folder`` (a :class:`trainer.drive.DriveFolder`), or the one that held it last where none
    is live, read from its claim (:mod:`trainer.lease_claims`: who, host, pid, generation,
    seconds since its last renewal by Drive's clock, stale or live); None where the config
    takes no lease (``drive.lease_minutes`` 0) or no claim is there."""
    from trainer.lease import RunLease
    from trainer.lease_claims import view

    if not minutes:
        return None
    taken = RunLease(folder, 60.0 * minutes)
    claim = taken.last_claim()
    return None if claim is None else view(claim, taken.stale_s)


def lease_line(spec: str, held: dict[str, Any]) -> str:
    """The plain status's line of :func:`lease`: ``drive:x: trained now by pid N on HOST (its
    lease renewed 20 s ago)``, or, stale, who trained it last and that the next trainer of the
    run takes the lease over at once."""
    from trainer.drive import age_text

    age = f"renewed {age_text(held['renewed_age_s'])} ago"
    # (Its date says nothing of its renewals, ahead of Drive's clock or no Date heard: the
    # time seen unchanged, drivestage.run_claims.)
    if held.get("ahead_s") or not server_clock.dated():
        age = run_claims.renewed_text(held["renewed_age_s"], held.get("ahead_s", 0.0))
    if not held["stale"]:
        return f"{spec}: trained now by {held['holder']} (its lease {age})"
    return (f"{spec}: trained last by {held['holder']} (its lease {age}, stale: "
            "that trainer is gone; the next trainer of the run takes the lease over at once)")
