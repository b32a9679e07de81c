"""ddp31: what counts as a lost rank (real gloo errors, in one process), what a step's forward
changed that rank 0 puts back before it saves, and the lines of the cases that save nothing."""
from __future__ import annotations

import datetime
import gc
import os
import re
import signal
import threading
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from _gloo import LOST_PEER
from torch import nn

from trainer import peer_loss
from trainer.errors import NonFiniteLossError
from trainer.state import Position
from trainer.stopping import PEER_LOSS, StopFlag

TAIL = (r" \(gloo: Connection closed by peer \[127\.0\.0\.1\]:1: {who} ended or stopped answering, "
        r"its own lines say why; run the same torchrun command again\)")


def _gloo_pair(timeout_s: float) -> list:
    """Two gloo ranks in this process (threads: their rendezvous waits for both)."""
    store, pair = dist.HashStore(), [None, None]

    def make(rank: int) -> None:
        pair[rank] = dist.ProcessGroupGloo(store, rank, 2, datetime.timedelta(seconds=timeout_s))

    both = [threading.Thread(target=make, args=(r,)) for r in (0, 1)]
    for t in both:
        t.start()
    for t in both:
        t.join(30)
    return pair


def _error(pg) -> RuntimeError:
    with pytest.raises(RuntimeError) as caught:
        pg.allreduce([torch.ones(1)]).wait()
    return caught.value.with_traceback(None)   # (its frames would keep the group alive)


def test_gloos_errors_for_a_lost_rank_are_a_loss_and_other_errors_are_not():
    pair = _gloo_pair(30)
    done = [pg.allreduce([torch.ones(1)]) for pg in pair]
    for work in done:
        work.wait()
    del done, work, pair[1]   # (its sockets close: as a process that ended)
    try:
        closed = _error(pair[0])
        assert re.fullmatch(rf"gloo: {LOST_PEER}",
                            peer_loss.lost_peer(closed)), str(closed)
        # A rank alive that stops answering: gloo's timeout (0.1 s; the run's is 30 minutes).
        quiet = _gloo_pair(0.1)
        assert peer_loss.lost_peer(_error(quiet[0])) == \
            "gloo: Timed out waiting 100ms for recv operation to complete"
    finally:
        # The groups' threads end now: a test that forks next (tests/test_messages_ddp31.py)
        # gave its ranks these groups, whose end there (the GC's) was a segmentation fault.
        pair[:], quiet = [], None
        gc.collect()
    for other in (RuntimeError("DataLoader worker (pid(s) 12) exited unexpectedly"),
                  RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                  RuntimeError("Connection reset by peer"),   # (no backend of torch's)
                  ConnectionResetError(104, "Connection reset by peer"),   # (Drive's socket)
                  RuntimeError("[gloo/allreduce.cc:9] unsupported device type"),
                  NonFiniteLossError("the loss became nan")):
        assert peer_loss.lost_peer(other) is None, other


def test_a_steps_forward_is_put_back_and_its_update_is_seen():
    """The step's forward moved BatchNorm's running statistics and set_lr the learning rate:
    put back, the saved state is the last completed iteration's; once the optimizer's step
    began, the model is half updated (nothing is saved)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    run = SimpleNamespace(bare_model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    steps = peer_loss.Steps(run)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    steps.on_train_batch_start(run, Position(0, 1, 1))
    run.optimizer.param_groups[0]["lr"] = 0.5
    loss = model(torch.randn(2, 3, 8, 8)).sum()
    assert steps.phase == peer_loss.STEP
    assert not torch.equal(model[1].running_mean, before["1.running_mean"])
    assert steps.undo_forward(run)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert run.optimizer.param_groups[0]["lr"] == 0.1
    del loss   # (its graph holds the statistics put back)
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    run.optimizer.step()
    assert steps.phase == peer_loss.UPDATE
    steps.on_train_batch_end(run, Position(0, 2, 2), {})
    steps.close()
    run.optimizer.step()
    assert steps.phase == peer_loss.BETWEEN
    # A buffer replaced rather than updated in place: its copy says nothing of it.
    steps.on_train_batch_start(run, Position(0, 2, 2))
    model[1].running_mean = torch.zeros(4)
    assert not steps.undo_forward(run)


def _run(rank: int, world: int, phase: str = peer_loss.STEP, began: int = 0):
    saved: list = []
    checkpointer = SimpleNamespace(began=began, stop_at=lambda run, pos: saved.append(pos))
    return SimpleNamespace(info=SimpleNamespace(rank=rank, world_size=world),
                           state=SimpleNamespace(pos=Position(0, 3, 3)), checkpointer=checkpointer,
                           stop=StopFlag(10), saved=saved), \
        SimpleNamespace(phase=phase, undo_forward=lambda run: False)   # (a buffer replaced)


@pytest.mark.parametrize("rank, world, phase, began, line", [
    (0, 2, peer_loss.UPDATE, 0, r"stopped by the loss of rank 1 in the optimizer's step after "
     r"epoch 1, iteration 3: the model was half updated, so nothing is saved; --resume auto goes "
     r"on from the newest checkpoint" + TAIL.format(who="rank 1")),
    (0, 2, peer_loss.STEP, 0, r"stopped by the loss of rank 1 in a step after epoch 1, "
     r"iteration 3: what its forward changed could not be put back, so nothing is saved; "
     r"--resume auto goes on from the newest checkpoint" + TAIL.format(who="rank 1")),
    (0, 2, peer_loss.STEP, 3, r"stopped by the loss of rank 1 before the first step: nothing was "
     r"trained, nothing is saved" + TAIL.format(who="rank 1")),
    (1, 2, None, 0, r"stopped by the loss of rank 0 at epoch 1, iteration 3 on rank 1: nothing "
     r"is saved \(rank 0 alone saves\); --resume auto goes on from the newest checkpoint"
     + TAIL.format(who="rank 0")),
    (2, 4, None, 0, r"stopped by the loss of another rank at epoch 1, iteration 3 on rank 2: "
     r"rank 0 saves what it can, its line says what; --resume auto goes on from the newest "
     r"checkpoint" + TAIL.format(who="another rank")),
])
def test_the_lines_that_save_nothing(rank, world, phase, began, line):
    run, steps = _run(rank, world, phase, began)
    ended = peer_loss.ended(run, steps if phase else None,
                            "gloo: Connection closed by peer [127.0.0.1]:1")
    assert re.fullmatch(line, str(ended)), str(ended)
    assert ended.exit_code == 1 and run.saved == [] and not run.stop.is_set()


def test_the_sigterm_torchrun_sends_after_a_rank_ended_is_a_first_signal():
    """torchrun sends the other ranks SIGTERM 0.1 s after one ended: taken for a second signal
    (the stop was asked already), it killed rank 0 in the middle of its save."""
    stop = StopFlag(10)
    with stop.installed():
        stop.lose_peer("rank 1")
        os.kill(os.getpid(), signal.SIGTERM)   # (the handler runs at once, in this thread)
        assert stop.signum == PEER_LOSS and stop.exit_code == 1
        assert stop.name == "the loss of rank 1"
