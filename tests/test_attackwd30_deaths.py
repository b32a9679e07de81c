"""attackwd30: a DataLoader worker's death (SIGKILL, the OOM killer) where the lead's guard
(trainer/worker_deaths.py) did not reach."""
from __future__ import annotations

import os
import re
import signal
import time
from types import SimpleNamespace

import pytest
import torch
from _gloo import LOST_PEER
from torch.utils.data import DataLoader, Dataset

from trainer import checkpoint as ckpt
from trainer.config import load_config
from trainer.data.dataset import YoloDataset
from trainer.engine import fit
from trainer.errors import TrainingInterrupted
from trainer.state import Position


def _val_item_kills_its_worker(monkeypatch) -> None:
    """The validation set's first item ends its worker process as the OOM killer would (the
    training set's items are read as before)."""
    read = YoloDataset.sample

    def getitem(self, index):
        if not self.train and index == 0 and os.getpid() != _MAIN:
            os.kill(os.getpid(), signal.SIGKILL)
        return read(self, index)

    monkeypatch.setattr(YoloDataset, "sample", getitem)


_MAIN = os.getpid()


def test_a_worker_killed_during_evaluation_saves_the_trained_epoch(
        tiny_config, one_torch_thread, monkeypatch):
    """The validation loader was not guarded: torch's `DataLoader worker (pid(s) N) exited
    unexpectedly` ended the run with a traceback, and the epoch it had trained was in no file
    (no save comes before the evaluation's end). Now it stops as a SIGTERM during the
    evaluation does: the trained epoch saved, one line, exit 1; the resume evaluates it."""
    cfg = load_config(tiny_config(**{"data.workers": 1, "train.batch_size": 4,
                                     "train.freeze_epochs": 0, "train.epochs": 1,
                                     "data.max_val_images": 2}))
    _val_item_kills_its_worker(monkeypatch)

    with pytest.raises(TrainingInterrupted) as caught:
        fit(cfg, resume="none")

    assert caught.value.exit_code == 1
    text = str(caught.value)
    assert text.startswith("stopped by a DataLoader worker's death at epoch 1, iteration "), text
    assert "out of memory? lower data.workers" in text
    assert text.startswith("stopped by a DataLoader worker's death at epoch 1, iteration 4: "
                           "autosave_00000004.pt is saved in "), text
    assert re.search(r"; resume with --resume auto \(DataLoader worker \(pid(\(s\))? \d+\) "
                     r"(exited unexpectedly|is killed by signal: Killed): out of memory\? lower "
                     r"data\.workers, train\.batch_size or data\.cache before you resume\)$",
                     text), text
    assert ckpt.load_checkpoint(os.path.join(cfg.train.out_dir, "autosave_00000004.pt"))[
        "iteration"] == 4   # (the epoch's 4 steps, trained)
    monkeypatch.undo()
    result = fit(cfg, resume="auto")
    assert os.path.basename(result.resumed_from) == "autosave_00000004.pt"
    assert result.final["map50"] is not None   # (only the evaluation was left to do)



def _rank(rank: int, port: int, config: str, out: str, fetching: bool = False) -> None:
    """One of two gloo ranks; rank 1's loader worker is SIGKILLed after iteration 1 (the user's
    callbacks run on rank 0 alone: a log handler of rank 1 does it, as in tests/test_ddp.py)."""
    import logging
    import multiprocessing

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    if rank == 1 and fetching:   # (its first batch of epoch 2: rank 0 is in its step then)
        read = YoloDataset.sample

        def sample(self, index, *args, **kwargs):
            if self.train and self.epoch == 1 and os.getpid() != _MAIN:
                os.kill(os.getpid(), signal.SIGKILL)
            return read(self, index, *args, **kwargs)

        YoloDataset.sample = sample
    elif rank == 1:
        class _Kill(logging.Handler):
            def emit(self, record):
                if "(iteration 1)" in record.getMessage():
                    os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)
                    from trainer import worker_deaths   # (until its SIGCHLD is taken)
                    flag = worker_deaths._mine().flag
                    while flag is not None and not flag.is_set():
                        time.sleep(0.005)

        log = logging.getLogger("trainer.engine")
        log.setLevel(logging.DEBUG)
        log.addHandler(_Kill())
    try:
        fit(load_config(config), resume="none")
    except TrainingInterrupted as exc:
        with open(os.path.join(out, f"stop{rank}.txt"), "w") as f:
            f.write(f"{exc.exit_code} {exc}")
    except RuntimeError as exc:   # (rank 0, when rank 1 ends: gloo's "closed by peer")
        with open(os.path.join(out, f"error{rank}.txt"), "w") as f:
            f.write(str(exc))


def test_ddp_a_worker_of_rank_1_killed_is_named_in_rank_0s_line(tiny_config, tmp_path):
    """Both ranks stop at the step's end and rank 0 saves, as for a SIGTERM to one rank; rank
    0's line (the one the user reads) said `(: out of memory? …)`: torch's words were rank
    1's alone."""
    import torch.multiprocessing as mp

    from _ports import free_port   # (not an ephemeral port: see there)

    port = free_port()
    config = tiny_config(**{"data.workers": 1, "train.batch_size": 8, "train.freeze_epochs": 0,
                            "train.epochs": 1, "train.save_minutes": 0})
    mp.start_processes(_rank, args=(port, config, str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")

    line = (tmp_path / "stop0.txt").read_text()
    assert line.startswith("1 stopped by a DataLoader worker's death at epoch 1, iteration 1: "
                           "autosave_00000001.pt is saved in "), line
    assert re.search(r"; resume with --resume auto \(DataLoader worker \(pid \d+\) is killed by "
                     r"signal: Killed: out of memory\? lower data\.workers, train\.batch_size or "
                     r"data\.cache before you resume\)$", line), line
    assert (tmp_path / "stop1.txt").read_text().startswith(
        "1 stopped by a DataLoader worker's death at epoch 1, iteration 1 (DataLoader worker")


def test_a_worker_killed_before_the_first_step_saves_no_untrained_state(
        tiny_config, one_torch_thread, monkeypatch):
    """The first batch's worker killed: the run saved `autosave_00000000.pt` (the untrained
    network, pushed to Drive too) and said `stopped by a DataLoader worker's death at epoch 0,
    iteration 0: … resume with --resume auto`."""
    cfg = load_config(tiny_config(**{"data.workers": 1, "train.batch_size": 4,
                                     "train.freeze_epochs": 0, "train.epochs": 1}))
    read = YoloDataset.sample

    def sample(self, index, *args, **kwargs):
        if self.train and os.getpid() != _MAIN:
            os.kill(os.getpid(), signal.SIGKILL)
        return read(self, index, *args, **kwargs)

    monkeypatch.setattr(YoloDataset, "sample", sample)

    with pytest.raises(TrainingInterrupted) as caught:
        fit(cfg, resume="none")

    assert caught.value.exit_code == 1
    assert re.fullmatch(r"stopped by a DataLoader worker's death before the first step: nothing "
                        r"was trained, nothing is saved \(DataLoader worker \(pid(\(s\))? \d+\) "
                        r"(exited unexpectedly|is killed by signal: Killed): out of memory\? "
                        r"lower data\.workers, train\.batch_size or data\.cache before you "
                        r"resume\)", str(caught.value)), str(caught.value)
    assert not [n for n in os.listdir(cfg.train.out_dir) if n.endswith(".pt")]


def test_ddp_a_worker_of_rank_1_dead_while_its_batch_is_awaited_ends_it_in_one_line(
        tiny_config, tmp_path):
    """Rank 1 waits for its batch while rank 0 is in the step's collectives: no stop can be
    agreed. Rank 1 ended with torch's traceback; now with one line that says what was lost and
    what to change, and rank 0 ends too (gloo: the peer closed), within the test's time."""
    import torch.multiprocessing as mp

    from _ports import free_port   # (not an ephemeral port: see there)

    port = free_port()
    config = tiny_config(**{"data.workers": 1, "train.batch_size": 8, "train.freeze_epochs": 0,
                            "train.epochs": 2, "train.save_minutes": 0, "data.max_val_images": 1})
    mp.start_processes(_rank, args=(port, config, str(tmp_path), True), nprocs=2, join=True,
                       start_method="fork")

    line = (tmp_path / "stop1.txt").read_text()
    assert re.fullmatch(r"1 stopped by a DataLoader worker's death at epoch 1, iteration 2 on rank "
                        r"1, while it waited for its batch: the other ranks were in the step "
                        r"already, so rank 0 saves alone what it can, its line says what; "
                        r"--resume auto goes on from the newest checkpoint \(DataLoader worker \(pid(\(s\))? \d+\) (exited "
                        r"unexpectedly|is killed by signal: Killed): out of memory\? lower "
                        r"data\.workers, train\.batch_size or data\.cache before you resume\)",
                        line), line
    # Rank 0 ended with gloo's "Connection closed by peer" traceback, nothing saved (ddp31):
    # now it stops with the state epoch 1 ended with (its BatchNorm statistics as they were
    # before that step's forward), which last.pt holds: not saved again as an autosave of the
    # same state (attacktr31b).
    out = tmp_path / "logs"
    assert re.fullmatch(rf"1 stopped by the loss of rank 1 at epoch 1, iteration 2: "
                        rf"last\.pt is saved in {re.escape(str(out))}; resume with "
                        rf"--resume auto \(gloo: {LOST_PEER}: rank 1 ended or stopped "
                        rf"answering, its own lines say why; run the same torchrun command "
                        rf"again\)", (tmp_path / "stop0.txt").read_text())
    assert not list(out.glob("autosave_*"))
    assert ckpt.position_of(ckpt.load_checkpoint(str(out / "last.pt"))) == (1, 2, 0)



class _DiesWhenLet(Dataset):
    """Item 1 ends its worker as the OOM killer would, once ``let`` is set."""

    def __init__(self, let) -> None:
        self.let = let

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> torch.Tensor:
        if index == 1:
            self.let.wait()
            os.kill(os.getpid(), signal.SIGKILL)
        return torch.zeros(1)


def test_a_run_trained_in_a_thread_takes_its_workers_death_in_that_thread():
    """A notebook's background fit (`threading.Thread(target=fit)`), once a fit of the main
    thread had wrapped torch's SIGCHLD handler: a worker's death while the run waited for its
    batch raised torch's error from the handler, which runs in the main thread (the notebook
    kernel's; here the caller's `join`), not in the run's."""
    import multiprocessing
    import threading

    from trainer.stopping import StopFlag
    from trainer.worker_deaths import guarded

    idle = SimpleNamespace(stop=StopFlag(10), info=SimpleNamespace(world_size=1))
    for _ in guarded(DataLoader([torch.zeros(1)], num_workers=1), idle):   # (the first fit's)
        pass
    let, got = multiprocessing.get_context("fork").Event(), threading.Event()
    saved: list = []
    run = SimpleNamespace(stop=StopFlag(10), info=SimpleNamespace(world_size=1),
                          state=SimpleNamespace(pos=Position(0, 1, 1)),
                          checkpointer=SimpleNamespace(stop_at=lambda r, pos: saved.append(pos)))
    # (timeout: the loader's own look at its workers comes within a second, not five)
    loader = DataLoader(_DiesWhenLet(let), batch_size=1, num_workers=1, timeout=1,
                        multiprocessing_context="fork")
    ended: list = []

    def background() -> None:
        try:
            for _ in guarded(loader, run):
                got.set()   # (batch 0; the run waits for batch 1 next)
        except RuntimeError as exc:
            ended.append(exc)

    thread = threading.Thread(target=background)
    thread.start()
    got.wait(30)
    let.set()
    while thread.is_alive():   # (the main thread runs on, as a notebook kernel's loop does;
        thread.join(0.01)      # torch's error came here)

    assert [p.label for p in saved] == ["epoch 1, iteration 1"]
    assert "exited unexpectedly" in str(ended[0]) and run.stop.exit_code == 1
