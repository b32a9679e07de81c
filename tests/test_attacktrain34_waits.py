"""attacktrain34: a stop that no signal during a batch's wait could break.

attacktrain33 made a signal that comes while the training thread waits for a batch end that
wait (a hung DataLoader worker never sends it), in a process training alone. Two waits were
left as they were:

* a stop asked just before the wait began (a SIGTERM during the epoch's save, its
  evaluation, between two steps): its handler had run already, so nothing broke the wait,
  and the flag alone waited for the end of a step the hung batch never let come;
* every wait under torchrun: a rank's stop must be agreed at the step's end, so a signal
  only set its flag, and a rank whose worker hung held the others in the step's collectives
  until torchrun's SIGKILL, 30 s on, with nothing saved.

Now a stop that finds the training thread waiting for a batch gives the batch
``worker_deaths.break_after`` (5 s at most) to come, then breaks the wait: alone, the state
of the last step is saved; under torchrun rank 0 saves that state alone (another rank ends
in one line, and rank 0 finds it lost in the step's collective: trainer.peer_loss).

Real forked workers of the trainer's loader, a real fit (tiny_config); the worker hangs on a
pipe the test holds, and the test lets it go only after the fit has ended (or after 60 s:
before the fix it never ended by itself)."""
from __future__ import annotations

import os
import re
import select
import signal
import threading

import pytest

from trainer import checkpoint as ckpt
from trainer import worker_deaths
from trainer.callbacks import Callback
from trainer.config import load_config
from trainer.data.dataset import YoloDataset
from trainer.engine import fit
from trainer.errors import TrainingInterrupted

_MAIN = os.getpid()


def _epoch_2_hangs(release_r: int):
    """``YoloDataset.sample`` whose first training item of the second epoch, in a loader
    worker, waits on ``release_r`` (the test's) for good."""
    read = YoloDataset.sample

    def sample(self, index, *args, **kwargs):
        if self.train and self.epoch == 1 and os.getpid() != _MAIN:
            os.read(release_r, 1)
        return read(self, index, *args, **kwargs)

    return sample


class _SignalAtEpochEnd(Callback):
    """SIGTERM as the first epoch ends (before its save): the stop is asked before the second
    epoch's first wait begins."""

    def on_fit_epoch_end(self, run, pos, row):
        if pos.epoch == 1:
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
            assert run.stop.is_set()


def test_a_sigterm_just_before_a_hung_batch_is_awaited_saves_and_stops(
        tiny_config, one_torch_thread, monkeypatch):
    """SIGTERM as epoch 1 ends, then epoch 2's first batch hangs: the run waited for it for
    good (the handler had run before the wait, nothing broke it). Now it waits
    ``break_after`` at most: the state of epoch 1's end (last.pt holds it: not saved again),
    the line, exit 143."""
    cfg = load_config(tiny_config(**{"data.workers": 1, "train.batch_size": 8,
                                     "train.freeze_epochs": 0, "train.epochs": 2,
                                     "train.grace_seconds": 30, "train.mosaic": False,
                                     "data.max_val_images": 1}))
    monkeypatch.setattr(worker_deaths, "break_after", lambda stop: 0.2, raising=False)
    release_r, release_w = os.pipe()
    monkeypatch.setattr(YoloDataset, "sample", _epoch_2_hangs(release_r))
    ended, released = threading.Event(), threading.Event()

    def release_late() -> None:
        if not ended.wait(60):   # (before the fix: the wait went on for good)
            released.set()
            os.write(release_w, b"gggggggg")

    watcher = threading.Thread(target=release_late, daemon=True)
    watcher.start()
    try:
        with pytest.raises(TrainingInterrupted) as caught:
            fit(cfg, resume="none", callbacks=[_SignalAtEpochEnd()])
    finally:
        ended.set()
        watcher.join(70)
        os.write(release_w, b"gggggggg")   # (a worker still there ends; one killed reads none)
        for fd in (release_r, release_w):
            os.close(fd)
    assert not released.is_set(), "the stop waited for the hung worker's batch"
    out = cfg.train.out_dir
    assert caught.value.exit_code == 143
    assert re.fullmatch(rf"stopped by SIGTERM at epoch 1, iteration 2: last\.pt is saved in "
                        rf"{re.escape(out)}; resume with --resume auto", str(caught.value)), \
        str(caught.value)
    assert not [n for n in os.listdir(out) if n.startswith("autosave_")]
    assert ckpt.position_of(ckpt.load_checkpoint(os.path.join(out, "last.pt"))) == (1, 2, 0)


def _rank(rank: int, port: int, config: str, out: str, hung: int, fds: tuple,
          val: bool = False) -> None:
    """One of two gloo ranks. Rank ``hung``'s read of its fifth training item (or with
    ``val``, its first validation item) hangs (a read of ``fds[1]``, the test's pipe;
    ``data.workers`` 0: in the training thread's wait for the batch itself), said on
    ``fds[0]`` first. The other rank waits in that step's collective (or the evaluation's
    end)."""
    import sys

    import torch

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    worker_deaths.BREAK_AFTER_S = 0.3
    calls, read = [0], YoloDataset.sample

    def sample(self, index, *args, **kwargs):
        if self.train != val:
            calls[0] += 1
            if calls[0] == (1 if val else 5):
                os.write(fds[0], b"h")
                os.read(fds[1], 1)
        return read(self, index, *args, **kwargs)

    if rank == hung:
        YoloDataset.sample = sample   # type: ignore[method-assign]
    try:
        fit(load_config(config), resume="none")
    except TrainingInterrupted as exc:
        with open(os.path.join(out, f"line{rank}.txt"), "w") as f:
            f.write(str(exc))
        sys.exit(exc.exit_code)


_SAVED = r"autosave_0000000{n}\.pt is saved in {out}; resume with --resume auto"
_GLOO = (r" \(gloo: [^()]*(by peer|Broken pipe)[^()]*: rank {who} ended or stopped answering, "
         r"its own lines say why; run the same torchrun command again\)")


@pytest.mark.parametrize("hung", [1, 0])
def test_ddp_a_sigterm_while_a_ranks_batch_hangs_saves_the_last_step(tiny_config, tmp_path,
                                                                    hung):
    """torchrun's SIGTERM to both ranks while rank ``hung`` waits for a batch whose read hangs
    (a DataLoader worker's, or its own: an image on a mount that stopped answering) and the
    other rank waits in that step's collective: the waiting rank's stop is agreed
    only at the step's end, which never came, and both outlived the grace until torchrun's
    SIGKILL, nothing saved. Now the batch gets ``break_after`` (0.3 s here); then the hung
    rank 1 ends in one line and rank 0 saves iteration 2 alone (as for a lost rank), or the
    hung rank 0 saves it alone and says so with the signal's exit code."""
    import gc
    import multiprocessing

    from _ports import free_port   # (not an ephemeral port: see there)

    config = tiny_config(**{"data.workers": 0, "train.batch_size": 2, "train.freeze_epochs": 0,
                            "train.epochs": 1, "train.save_minutes": 0, "train.mosaic": False,
                            "train.grace_seconds": 30})
    hung_r, hung_w = os.pipe()
    release_r, release_w = os.pipe()
    fork = multiprocessing.get_context("fork")
    gc.collect()   # (as tests/test_messages_ddp31.py: nothing of an earlier test's in the ranks)
    port = free_port()
    ranks = [fork.Process(target=_rank, args=(r, port, config, str(tmp_path), hung,
                                              (hung_w, release_r))) for r in (0, 1)]
    released = False
    try:
        for p in ranks:
            p.start()
        ready, _, _ = select.select([hung_r], [], [], 60)
        assert ready, "the read never hung"
        for p in ranks:   # (as torchrun passes its SIGTERM on)
            os.kill(p.pid, signal.SIGTERM)
        for p in ranks:
            p.join(30)
        if any(p.is_alive() for p in ranks):   # (before the fix: both waited for good)
            released = True
            os.write(release_w, b"g")
            for p in ranks:
                p.join(60)
    finally:
        for p in ranks:
            if p.is_alive():
                p.kill()
        os.write(release_w, b"g")
        for fd in (hung_r, hung_w, release_r, release_w):
            os.close(fd)
    assert not released, "the stop waited for the hung worker's batch"
    out = re.escape(str(tmp_path / "logs"))
    lines = [(tmp_path / f"line{r}.txt").read_text() for r in (0, 1)]
    n = re.search(r"iteration (\d)", lines[hung]).group(1)   # (the last step before the hang)
    if hung == 1:
        assert [p.exitcode for p in ranks] == [1, 143]
        assert re.fullmatch(rf"stopped by SIGTERM at epoch 1, iteration {n} on rank 1: its batch "
                            r"did not come within 0\.3 s of the stop \(a DataLoader worker "
                            r"hung\? an image read from a mount that stopped answering\), and "
                            r"no stop can be agreed without it: this rank ends, and rank 0 "
                            r"saves alone the state of the last step, its line says what; "
                            r"--resume auto goes on from the newest checkpoint", lines[1]), \
            lines[1]
        assert re.fullmatch(rf"stopped by the loss of rank 1 at epoch 1, iteration {n}: "
                            + _SAVED.format(n=n, out=out) + _GLOO.format(who=1), lines[0]), \
            lines[0]
    else:
        assert [p.exitcode for p in ranks] == [143, 1]
        assert re.fullmatch(rf"stopped by SIGTERM at epoch 1, iteration {n}: "
                            + _SAVED.format(n=n, out=out), lines[0]), lines[0]
        assert re.fullmatch(rf"stopped by the loss of rank 0 at epoch 1, iteration {n} on rank "
                            r"1: rank 0 saves what it can, its line says what; --resume auto "
                            r"goes on from the newest checkpoint" + _GLOO.format(who=0),
                            lines[1]), lines[1]
    state = ckpt.load_checkpoint(str(tmp_path / "logs" / f"autosave_0000000{n}.pt"))
    assert ckpt.position_of(state) == (0, int(n), int(n))


def test_ddp_a_sigterm_while_rank_0s_evaluation_hangs_saves_the_epoch(tiny_config, tmp_path):
    """Rank 0 alone evaluates; the others wait at the evaluation's end, where the stop is
    agreed. A SIGTERM while rank 0's validation batch hung was left to the watch's
    ``break_after`` under torchrun (before: for good); it ends that wait at once, as in a
    process training alone: the trained epoch saved, every rank stopped together, 143."""
    import gc
    import multiprocessing

    from _ports import free_port   # (not an ephemeral port: see there)

    config = tiny_config(**{"data.workers": 0, "train.batch_size": 4, "train.freeze_epochs": 0,
                            "train.epochs": 1, "train.save_minutes": 0, "train.mosaic": False,
                            "train.grace_seconds": 30})
    hung_r, hung_w = os.pipe()
    release_r, release_w = os.pipe()
    fork = multiprocessing.get_context("fork")
    gc.collect()
    port = free_port()
    ranks = [fork.Process(target=_rank, args=(r, port, config, str(tmp_path), 0,
                                              (hung_w, release_r), True)) for r in (0, 1)]
    released = False
    try:
        for p in ranks:
            p.start()
        ready, _, _ = select.select([hung_r], [], [], 60)
        assert ready, "the read never hung"
        for p in ranks:
            os.kill(p.pid, signal.SIGTERM)
        for p in ranks:
            p.join(30)
        if any(p.is_alive() for p in ranks):
            released = True
            os.write(release_w, b"g")
            for p in ranks:
                p.join(60)
    finally:
        for p in ranks:
            if p.is_alive():
                p.kill()
        os.write(release_w, b"g")
        for fd in (hung_r, hung_w, release_r, release_w):
            os.close(fd)
    assert not released, "the stop waited for the hung validation batch"
    assert [p.exitcode for p in ranks] == [143, 143]
    out = tmp_path / "logs"
    lines = [(tmp_path / f"line{r}.txt").read_text() for r in (0, 1)]
    n = re.search(r"iteration (\d)", lines[0]).group(1)
    assert re.fullmatch(rf"stopped by SIGTERM at epoch 1, iteration {n}: "
                        + _SAVED.format(n=n, out=re.escape(str(out))), lines[0]), lines[0]
    assert lines[1] == f"stopped by SIGTERM at epoch 1, iteration {n}"
    assert ckpt.position_of(ckpt.load_checkpoint(str(out / f"autosave_0000000{n}.pt"))) == \
        (0, int(n), int(n))


def _filling_rank(rank: int, port: int, config: str, out: str, fds: tuple) -> None:
    """One of two gloo ranks whose ``data.cache=ram`` fill hangs (each image's decode reads
    ``fds[1]``, the test's pipe), said on ``fds[0]`` with the rank's number."""
    import sys

    import torch

    from trainer.data import cache

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    real = cache.decode_fitted

    def decode(data, size, path):
        os.write(fds[0], str(rank).encode())
        os.read(fds[1], 1)   # (a mount that stopped answering; let go by the test)
        return real(data, size, path)

    cache.decode_fitted = decode
    try:
        fit(load_config(config), resume="none")
    except TrainingInterrupted as exc:
        with open(os.path.join(out, f"line{rank}.txt"), "w") as f:
            f.write(str(exc))
        sys.exit(exc.exit_code)


def test_ddp_a_sigterm_during_the_image_cache_fill_ends_it_on_every_rank(tiny_config, tmp_path):
    """Under torchrun the fill went on after the SIGTERM (a rank's stop is agreed at a step's
    end): minutes, or for good on a hung mount, then a step, and torchrun's SIGKILL before its
    save. Nothing is trained yet there, so nothing needs agreeing: each rank ends its fill at
    the signal, in one line, exit 143, as a process training alone does."""
    import gc
    import multiprocessing

    from _ports import free_port   # (not an ephemeral port: see there)

    config = tiny_config(**{"data.cache": "ram", "train.epochs": 1, "train.grace_seconds": 30})
    hung_r, hung_w = os.pipe()
    release_r, release_w = os.pipe()
    fork = multiprocessing.get_context("fork")
    gc.collect()
    port = free_port()
    ranks = [fork.Process(target=_filling_rank, args=(r, port, config, str(tmp_path),
                                                      (hung_w, release_r))) for r in (0, 1)]
    lines = [tmp_path / f"line{r}.txt" for r in (0, 1)]
    try:
        for p in ranks:
            p.start()
        seen = b""
        while not {b"0", b"1"} <= set(seen[i:i + 1] for i in range(len(seen))):
            ready, _, _ = select.select([hung_r], [], [], 60)
            assert ready, "a rank's fill never began"
            seen += os.read(hung_r, 64)
        for p in ranks:
            os.kill(p.pid, signal.SIGTERM)
        # (Its fill's threads, hung in their reads, hold the process's exit until let go, as
        # they would a real one's: the lines come first, and are what is asserted.)
        for _ in range(3000):
            if all(f.exists() for f in lines):
                break
            threading.Event().wait(0.01)
        said = [f.exists() for f in lines]
    finally:
        os.write(release_w, b"g" * 64)
        for p in ranks:
            p.join(60)
            if p.is_alive():
                p.kill()
        for fd in (hung_r, hung_w, release_r, release_w):
            os.close(fd)
    assert said == [True, True], "the stop waited for the fill"
    assert [p.exitcode for p in ranks] == [143, 143]
    for f in lines:
        assert f.read_text() == ("stopped by SIGTERM while the datasets were prepared, before "
                                 "the first step: nothing was trained, nothing is saved")
