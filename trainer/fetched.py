"""Copies of a checkpoint fetched from Drive for ``--resume auto`` to look at, kept apart.

A copy is fetched beside a local file of its name (never over it: that file may be a bad one
"kept as it is"), moved at once to the temporary name of an atomic write, loaded and vetted
there, and given its name only once chosen; a copy that is not chosen, or one being looked at
when an error or a Ctrl-C comes, is removed with what its download left (Drive keeps its
own). Split out of :mod:`trainer.resume` (trainer24); the names are importable from there too.
"""
from __future__ import annotations

import os
from typing import Optional

from trainer import checkpoint as ckpt
from trainer.drive import RemoteCheckpoint
from trainer.errors import CheckpointError, LoadFailedError, NewerCheckpointError


def _beside(dest: str, chosen: RemoteCheckpoint) -> str:
    """Where ``chosen`` is fetched when ``dest`` holds another file: its hidden copy beside it
    (:mod:`trainer.chosen`'s, named by its md5: a rerun's download goes on from its partial;
    never mirrored)."""
    from trainer.chosen import _side_copy

    return _side_copy(dest, (chosen.sidecar.md5 or chosen.entry.md5 or "x").lower())


def _aside(fetched: str, dest: str) -> str:
    """Move the copy just fetched (``fetched``: ``dest``, or its copy beside it) to a temporary
    name of an atomic write beside ``dest``, where it is loaded and looked at (it takes the
    name ``dest`` only once chosen). Killed meanwhile (SIGKILL, or SIGTERM: the trainer takes
    signals only once training begins), a copy left under its name, without a sidecar, was taken by
    the next run for a killed save of this folder (:func:`ckpt.describe_killed_saves`),
    dated then, and the mirror rewrote Drive's sidecar of a state Drive keeps as it was; a
    temporary file is never mirrored, and the folder's next atomic write removes it once
    this process is gone (:mod:`drivestage.temps`)."""
    from drivestage import temps

    looked = os.path.join(os.path.dirname(dest), temps.name_for(os.path.basename(dest)))
    os.replace(fetched, looked)
    return looked


def _load_looked(looked: str, dest: str, chosen: Optional[RemoteCheckpoint] = None) -> dict:
    """:func:`ckpt.load_checkpoint` of the copy at ``looked``, its refusal naming ``dest``.
    A copy of ``chosen``'s bytes its sidecar vouches for that does not load here raises
    :class:`~trainer.errors.LoadFailedError` naming ``chosen`` on Drive (loadfail37)."""
    try:
        return ckpt.load_checkpoint(looked, vouched=chosen.sidecar if chosen else None)
    except LoadFailedError as exc:
        assert chosen is not None and exc.again is not None   # (a copy has no sidecar beside)
        raise exc.again(chosen.where, True) from None
    except (CheckpointError, NewerCheckpointError) as exc:
        raise type(exc)(str(exc).replace(looked, dest)) from None


def _drop_looked(looked: Optional[str]) -> None:
    """A copy being looked at, on the way out (a Ctrl-C, an error): it goes too."""
    if looked is not None:
        try:
            os.unlink(looked)
        except FileNotFoundError:
            pass


def _drop_fetched(dest: str, looked: Optional[str] = None) -> None:
    """A fetched checkpoint that is not used, and what its download left for a rerun."""
    from drivestage.partials import remove_partial, stale_partials

    _drop_looked(looked)
    ckpt.remove_checkpoint(dest)
    for partial in stale_partials(dest):
        remove_partial(partial)


def _check_matches_sidecar(state: dict, chosen: RemoteCheckpoint) -> None:
    """The file holds the run and position its sidecar claims (the sidecar chose it: one that
    lies would continue another run, or another point of this one)."""
    why = ckpt.sidecar_mismatch(state, chosen.sidecar)
    if why is not None:
        raise CheckpointError(why)
