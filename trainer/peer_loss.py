"""A rank lost under torchrun/DDP: SIGKILLed (the kernel's OOM killer), ended by its own error
(its DataLoader worker dead while it awaited its batch: :mod:`trainer.worker_deaths`), or its
machine gone. The other ranks met gloo's ``Connection closed by peer`` in their next
collective and ended with its traceback, and rank 0 saved nothing: everything trained since
the last save was lost.

Here rank 0 saves the state of the last completed iteration with no collective at all (the
lost rank cannot answer one: :func:`trainer.distributed.lose` makes them no-ops), and every rank
ends with one line, exit 1. Only a consistent state is saved. Each step's collectives (DDP's
buffer broadcast in the forward, the loss's all_reduce, DDP's gradient all-reduce inside
``backward()``) all come before the optimizer's step, and the rest of the step (the step, the
scaler, the EMA, the meter) is local. So a lost peer is met either between two steps (the model,
optimizer, EMA and counters are those of ``run.state.pos``) or in a step before its update:
there the forward has moved the BatchNorm running statistics and ``set_lr`` the learning
rate, both put back from the copies :class:`Steps` took as the step began. One met after the
optimizer's step began (a collective inside it: an optimizer of the user's) would find a half
updated model: nothing is saved then, and the line says so.

A peer that died is seen at once (its sockets close); one that stops answering alive, once
:mod:`trainer.silence` found it silent for ``train.silent_rank_minutes`` (it shuts this rank's
sockets to it, so the collective fails the same way). Other errors, ``RuntimeError``s
included, go on as before.

Tried with gloo (CPU) only: under NCCL a lost peer may instead hold the collective until
NCCL's own watchdog ends the process, and then nothing here runs.
"""
from __future__ import annotations

import contextlib
import re
from typing import Any, Iterator, Optional

import torch

from trainer import distributed, silence
from trainer.callbacks import Callback
from trainer.errors import TrainingInterrupted
from trainer.stopping import untrained

#: What gloo, NCCL and the TCP store say when a peer's connection ended or never answered.
_LOST = ("Connection closed by peer", "Connection reset by peer", "Broken pipe",
         "Connection refused", "Read timeout", "ms for recv operation", "ms for send operation",
         "Connection was likely closed", "ncclRemoteError", "remote process exited",
         "NCCL communicator was aborted")
#: Where a text says it comes from torch.distributed's backends.
_BACKENDS = ("gloo", "nccl", "c10d", "tcpstore")

BETWEEN, STEP, UPDATE = "between steps", "in a step", "in the optimizer's step"


def lost_peer(exc: BaseException) -> Optional[str]:
    """The words of a collective that failed because another rank was lost (``gloo:
    Connection closed by peer [10.0.0.2]:41234``), or None for any other error."""
    if not isinstance(exc, RuntimeError):
        return None
    text = str(exc)
    typed = isinstance(exc, (getattr(torch.distributed, "DistNetworkError", ()),
                             getattr(torch.distributed, "DistStoreError", ())))
    ours = typed or any(b in text.lower() for b in _BACKENDS)
    if not ours or not any(w in text for w in _LOST):
        return None
    # gloo: "[/…/gloo/transport/tcp/pair.cc:561] Connection closed by peer [ip]:port. This is
    # typically caused by a remote worker crashing. …": its first sentence, named.
    words = re.sub(r"^\[[^\]]*\]\s*", "", text.strip().splitlines()[0])
    words = re.split(r"\.(?:\s|$)", words)[0]
    backend = next((b for b in ("gloo", "NCCL") if b.lower() in text.lower()), "torch.distributed")
    return f"{backend}: {words}"


class Steps(Callback):
    """Where rank 0's training is (:data:`BETWEEN`, :data:`STEP`, :data:`UPDATE`), and what a
    step's forward changed before its update: the buffers (BatchNorm's running statistics,
    copied as each step begins: a few KB) and the learning rates."""

    def __init__(self, run: Any):
        self.phase = BETWEEN
        self._model: Any = None   # whose buffers these are (a phase's SyncBatchNorm: another)
        self._live: list = []
        self._buffers: list = []
        self._lrs: list = []
        self._hook = run.optimizer.register_step_pre_hook(self._updating)

    def _updating(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.phase = UPDATE

    def on_train_batch_start(self, run: Any, pos: Any) -> None:
        if run.bare_model is not self._model:   # (listed once: 0.5 ms a step otherwise)
            self._model = run.bare_model
            self._live = [b.detach() for b in self._model.buffers()]
            self._buffers = [b.clone() for b in self._live]
        else:
            torch._foreach_copy_(self._buffers, self._live)
        self._lrs = [g["lr"] for g in run.optimizer.param_groups]
        self.phase = STEP

    def on_train_batch_end(self, run: Any, pos: Any, logs: dict) -> None:
        self.phase = BETWEEN   # (first of the callbacks: before the stop's collective)

    def undo_forward(self, run: Any) -> bool:
        """Put back what the step under way changed before its update; False (nothing put
        back) when the model's buffers are no longer those copied (one replaced, not updated
        in place: what was copied says nothing of it)."""
        now = [b.data_ptr() for b in run.bare_model.buffers()]
        if run.bare_model is not self._model or now != [b.data_ptr() for b in self._live]:
            return False
        with torch.no_grad():
            torch._foreach_copy_(self._live, self._buffers)
        for group, lr in zip(run.optimizer.param_groups, self._lrs):
            group["lr"] = lr
        return True

    def close(self) -> None:
        self._hook.remove()


def who_lost(info: distributed.DistInfo, words: str) -> tuple[str, str]:
    """``(the rank lost, what is known of it)``: the silent rank and how long it was silent
    (:mod:`trainer.silence`), else as far as this rank can know (with two, the other one)."""
    silent = silence.who_and_words(info)
    if silent is not None:
        return silent
    who = f"rank {1 - info.rank}" if info.world_size == 2 else "another rank"
    itself = silence.stopped_itself()   # (the others judged this one: attacktr32)
    return who, f"{words}: {itself or f'{who} ended or stopped answering, its own lines say why'}"


@contextlib.contextmanager
def watched(run: Any) -> Iterator[None]:
    """Training of ``run`` (:class:`trainer.engine.Run`) in which a lost rank ends this one in
    one line (:class:`~trainer.errors.TrainingInterrupted`, exit 1), rank 0 once it saved what
    it consistently could. Outside torchrun, nothing changes."""
    if not run.info.distributed:
        yield
        return
    steps = Steps(run) if run.info.is_main else None
    if steps is not None:
        run.callbacks.callbacks.insert(0, steps)
    try:
        yield
    except RuntimeError as exc:
        words = lost_peer(exc)
        if words is None:
            raise
        distributed.lose()   # (every collective from here on: none could be answered)
        raise ended(run, steps, words) from None
    finally:
        if steps is not None:
            steps.close()


def ended(run: Any, steps: Optional[Steps], words: str) -> TrainingInterrupted:
    """This rank's line (rank 0: after its save, when the state is consistent)."""
    (who, words), pos = who_lost(run.info, words), run.state.pos
    head = f"stopped by the loss of {who}"
    tail = f" ({words}; run the same torchrun command again)"
    if steps is None:   # (another rank: rank 0 saves)
        # (A signal's stop asked here: rank 0 got it too, and one whose batch hung saves
        # alone before it ends: trainer.worker_deaths.)
        said = ("nothing is saved (rank 0 alone saves)" if who == "rank 0" and
                silence.stopped_itself() is None and not run.stop.signalled else
                "rank 0 saves what it can, its line says what")
        return TrainingInterrupted(f"{head} at {pos.label} on rank {run.info.rank}: {said}; "
                                   f"--resume auto goes on from the newest checkpoint{tail}",
                                   exit_code=1)
    if pos.iteration == getattr(run.checkpointer, "began", 0):
        # No step of this process: the untrained network, or the state it resumed from.
        return TrainingInterrupted(f"{head} {untrained(run)}{tail}", exit_code=1)
    torn = {UPDATE: "the model was half updated",
            STEP: "what its forward changed could not be put back"}.get(steps.phase)
    if steps.phase == UPDATE or (steps.phase == STEP and not steps.undo_forward(run)):
        return TrainingInterrupted(
            f"{head} {steps.phase} after {pos.label}: {torn}, so nothing is saved; --resume "
            f"auto goes on from the newest checkpoint{tail}", exit_code=1)
    run.stop.lose_peer(who)   # (the save's line and exit code: "stopped by the loss of rank 1")
    try:
        run.checkpointer.stop_saved(run, pos)   # (the epoch's files hold it: no second save)
        run.checkpointer.stop_at(run, pos)   # (collectives are no-ops now: rank 0 alone)
    except TrainingInterrupted as exc:
        return TrainingInterrupted(f"{exc}{tail}", exit_code=1)
    raise AssertionError("Checkpointer.stop_at returned")   # (it always raises)
