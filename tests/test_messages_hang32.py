"""hang32: a rank of a torchrun/DDP run alive but silent (SIGSTOPped here; hung, or its
machine frozen or cut off) held the other ranks in their collective for the process group's
whole timeout (30 minutes of idle GPUs), then ended them in gloo's traceback with nothing
saved. Now each rank's heartbeat thread finds it silent after ``train.silent_rank_minutes``:
rank 0 saves, every live rank ends in one line naming the silent rank and how long it was
silent, exit 1; a rank merely slow (a long evaluation on rank 0) is not taken for silent. And
a rank lost before training (staging, choosing the checkpoint, the room check) ended the
others in gloo's traceback: now in one line naming the rank and the phase."""
from __future__ import annotations

import datetime
import gc
import os
import re
import signal
import sys
import threading
import time
from typing import Any

import pytest
from _gloo import LOST_PEER
from _messages import renders, shown

from trainer import checkpoint as ckpt

#: Every live rank's line when another rank is silent (rank 0's: after its save).
SILENT = ("stopped by the loss of … (rank … was silent for … (train.silent_rank_minutes): stopped, "
          "hung, or its machine frozen or cut off; end it if it is still there; run the same "
          "torchrun command again)")
#: A rank lost (or silent) before training.
BEFORE = ("… was lost while …, before training: nothing was trained, nothing is saved (…; run the "
          "same torchrun command again)")

#: The silence bound of these runs, in seconds (the default is 5 minutes).
BOUND_S = 2.5


def _port() -> int:
    from _ports import free_port   # (not an ephemeral port: see there)

    return free_port()


def _run_ranks(target, *args) -> list:
    """Fork two gloo ranks running ``target(rank, *args)`` (:func:`_end` ends them: a stopped
    one never ends by itself)."""
    import multiprocessing

    import torch

    # torch imports torch._dynamo at a process's first optimizer (seconds): once, here, not in
    # each rank of each test (an earlier trainer test of the worker paid it already, mostly).
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    fork = multiprocessing.get_context("fork")
    gc.collect()   # (an earlier test's gloo groups end here, not in the ranks: test_messages_ddp31)
    ranks = [fork.Process(target=target, args=(r, *args)) for r in (0, 1)]
    for p in ranks:
        p.start()
    return ranks


def _end(ranks: list, live: int) -> list:
    """Wait for the live rank to end (60 s at most: a hang fails the test, not the suite);
    then SIGKILL the silent one. The exit codes."""
    ranks[live].join(60)
    for p in ranks:
        if p.is_alive():
            p.kill()
            p.join()
    return [p.exitcode for p in ranks]


def _fit(rank: int, port: int, config: str, out: str, callbacks=()) -> None:
    import torch

    from trainer.config import load_config
    from trainer.engine import fit
    from trainer.errors import TrainingInterrupted

    # One compute thread, as each forked rank of the other DDP tests: a test process that
    # computed on two OpenMP threads before the fork (`-n 0`, after test_messages_ddp31's
    # comparisons) left the rank a thread team it does not have, and its first parallel
    # fill (the model's first tensor) waited for it for good (gomp_team_barrier_wait_end).
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    try:
        fit(load_config(config), resume="none", callbacks=callbacks)
    except TrainingInterrupted as exc:
        with open(os.path.join(out, f"line{rank}.txt"), "w") as f:
            f.write(str(exc))
        sys.exit(exc.exit_code)


def _slow_then_silent(rank: int, port: int, config: str, out: str, stop_at: int,
                      trained: Any) -> None:
    """Rank 0 sets ``trained`` after its 2nd step (the test then pauses both ranks: a machine
    paused), and evaluates epoch 1 for 1.4 bounds (rank 1 waits in a collective meanwhile:
    slow, not silent); rank 1 stops itself (SIGSTOP) in its ``stop_at``-th loss, after its
    forward."""
    import torch

    from trainer import engine
    from trainer.callbacks import Callback
    from trainer.loss import YoloLoss

    class _Two(Callback):
        def on_train_batch_end(self, run, pos, logs):
            if pos.iteration == 2:
                trained.set()

    torch.set_num_threads(1)
    if rank == 0:
        validation_loss = engine.validation_loss

        def slow(*args, **kwargs):
            began = time.monotonic()
            # (The slowness itself: a long evaluation, which runs Python between its batches;
            # one call blocked that long outside a collective is stuck: attacktrain35.)
            while time.monotonic() - began < 1.4 * BOUND_S:
                threading.Event().wait(0.05)
            with open(os.path.join(out, "slow.txt"), "a") as f:
                f.write(f"{time.monotonic() - began}\n")
            return validation_loss(*args, **kwargs)

        engine.validation_loss = slow
    else:
        forward, calls = YoloLoss.forward, []

        def stops(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == stop_at:
                os.kill(os.getpid(), signal.SIGSTOP)
            return forward(self, *args, **kwargs)

        YoloLoss.forward = stops   # type: ignore[method-assign]
    _fit(rank, port, config, out, callbacks=[_Two()])


@renders(SILENT)
def test_ddp_rank_1_silent_rank_0_saves_and_names_it_a_slow_evaluation_is_not_silence(
        tiny_config, synth_voc, tmp_path):
    per_epoch = len(synth_voc.train_lines_file.read_text().splitlines()) // 4
    config = tiny_config(**{"train.batch_size": 4, "train.freeze_epochs": 0, "train.epochs": 2,
                            "train.save_minutes": 0, "train.silent_rank_minutes": BOUND_S / 60,
                            "train.eval_period": 10, "train.mosaic": False, "train.mixup": False})
    import multiprocessing

    trained = multiprocessing.get_context("fork").Event()
    ranks = _run_ranks(_slow_then_silent, _port(), config, str(tmp_path), per_epoch + 2, trained)
    # The whole machine paused (a VM suspended, both ranks stopped) for longer than the bound:
    # on going on, neither rank takes the other for silent (each was stopped itself).
    assert trained.wait(60)
    for p in ranks:
        os.kill(p.pid, signal.SIGSTOP)
    threading.Event().wait(1.4 * BOUND_S)   # (the pause itself)
    for p in ranks:
        os.kill(p.pid, signal.SIGCONT)
    ranks[0].join(60)
    os.kill(ranks[1].pid, signal.SIGCONT)   # (the silent rank let go on: it ends by itself)
    codes = _end(ranks, live=1)
    out = tmp_path / "logs"

    assert codes == [1, 1]
    # Epoch 1's evaluation took longer than the bound and the run went on: not silence.
    assert [float(t) > BOUND_S for t in (tmp_path / "slow.txt").read_text().split()] == [True]
    assert (out / "epoch_001.pt").is_file()
    line = (tmp_path / "line0.txt").read_text()
    at = per_epoch + 1
    m = re.fullmatch(
        rf"stopped by the loss of rank 1 at epoch 2, iteration {at}: autosave_{at:08d}\.pt is "
        rf"saved in {re.escape(str(out))}; resume with --resume auto \(rank 1 was silent for "
        rf"(\d+\.\d) s \(train\.silent_rank_minutes\): stopped, hung, or its machine frozen or "
        rf"cut off; end it if it is still there; run the same torchrun command again\)", line)
    assert m, line
    assert BOUND_S <= float(m[1]) < BOUND_S + 10
    shown(SILENT, f"Error: {line}")
    state = ckpt.load_checkpoint(str(out / f"autosave_{at:08d}.pt"))
    assert ckpt.position_of(state) == (1, at, 1)
    # The silent rank's own line: it was the one stopped, and rank 0 saved (it said "nothing
    # is saved", rank 0 "ended or stopped answering": attacktr32).
    line = (tmp_path / "line1.txt").read_text()
    m = re.fullmatch(
        rf"stopped by the loss of rank 0 at epoch 2, iteration {at} on rank 1: rank 0 saves what "
        rf"it can, its line says what; --resume auto goes on from the newest checkpoint \(gloo: "
        rf"[^()]*: this rank was itself stopped for (\d+\.\d) s, longer than "
        rf"train\.silent_rank_minutes: the others took it for silent and ended, their lines say "
        rf"what was saved; run the same torchrun command again\)", line)
    assert m, line


def _silent_in_choose(rank: int, port: int, config: str, out: str) -> None:
    """Rank 0 stops itself (SIGSTOP) as it chooses the checkpoint to resume, once rank 1 has
    heard its heartbeat (a rank silent before its first beat is another test's matter)."""
    import torch.distributed as dist

    from trainer import resume, silence

    choose = resume.choose

    def stops(*args, **kwargs):
        store = dist.TCPStore("127.0.0.1", port, is_master=False, wait_for_workers=False,
                              timeout=datetime.timedelta(seconds=30))
        keys = f"trainer/alive//0/{silence._fits}/beat/"   # (this fit's: Watcher._prefix)
        mine, theirs = f"{keys}0", f"{keys}1"
        heard = threading.Event()
        while not heard.wait(0.05):   # (rank 1 beat twice since rank 0's first beat)
            if store.add(mine, 0) >= 1:
                since = store.add(theirs, 0)
                while not heard.wait(0.05):
                    if store.add(theirs, 0) >= since + 2:
                        heard.set()
        os.kill(os.getpid(), signal.SIGSTOP)
        return choose(*args, **kwargs)

    if rank == 0:
        resume.choose = stops
    _fit(rank, port, config, out)


@renders(BEFORE)
def test_ddp_rank_0_silent_before_training_rank_1_names_it_and_the_phase(tiny_config, tmp_path,
                                                                        capfd):
    config = tiny_config(**{"train.batch_size": 4, "train.freeze_epochs": 0, "train.epochs": 1,
                            "train.silent_rank_minutes": BOUND_S / 60})
    began = time.monotonic()
    codes = _end(_run_ranks(_silent_in_choose, _port(), config, str(tmp_path)), live=1)

    assert codes == [-signal.SIGKILL, 1]
    line = (tmp_path / "line1.txt").read_text()
    m = re.fullmatch(
        r"rank 0 was lost while the checkpoint to resume was chosen, before training: nothing "
        r"was trained, nothing is saved \(rank 0 was silent for (\d+\.\d) s "
        r"\(train\.silent_rank_minutes\): stopped, hung, or its machine frozen or cut off; end it "
        r"if it is still there; run the same torchrun command again\)", line)
    assert m, line
    assert BOUND_S <= float(m[1]) < time.monotonic() - began
    shown(BEFORE, f"Error: {line}")
    assert not (tmp_path / "logs" / "last.pt").exists()
    # The store's connections (rank 0 hosts it under env://) are not rank 0's to shut: shut,
    # each later call of the heartbeat printed torch's warning and C++ frames (attacktr32).
    err = capfd.readouterr().err
    assert "TCPStore" not in err and "frame #" not in err, err[:2000]


def _killed_in(rank: int, port: int, config: str, out: str, phase: str) -> None:
    """Rank 1 is SIGKILLed as it enters ``phase`` (a function of trainer.engine's)."""
    from trainer import engine

    if rank == 1:
        setattr(engine, phase, lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL))
    _fit(rank, port, config, out)


@renders(BEFORE)
@pytest.mark.parametrize("phase, named", [("stage_data", "the data was staged"),
                                          ("_check_room", "the run folder's room was checked")])
def test_ddp_rank_1_killed_before_training_rank_0_names_it_and_the_phase(tiny_config, tmp_path,
                                                                       phase, named):
    config = tiny_config(**{"train.batch_size": 4, "train.freeze_epochs": 0, "train.epochs": 1})
    codes = _end(_run_ranks(_killed_in, _port(), config, str(tmp_path), phase), live=0)

    assert codes == [1, -signal.SIGKILL]
    line = (tmp_path / "line0.txt").read_text()
    assert re.fullmatch(
        rf"rank 1 was lost while {named}, before training: nothing was trained, nothing is saved "
        rf"\(gloo: {LOST_PEER}: rank 1 ended or stopped answering, its own lines say why; run "
        r"the same torchrun command again\)",
        line), line
    shown(BEFORE, f"Error: {line}")


def test_silent_rank_minutes_below_zero_is_refused(tiny_config):
    from trainer.config import load_config
    from trainer.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^train\.silent_rank_minutes must be >= 0 \(0 = off\), "
                                          r"got -1\.0$"):
        load_config(tiny_config(**{"train.silent_rank_minutes": -1.0}))
