"""attacktr31b: a stop asked for (SIGTERM) whose save was done and said when the other rank
was lost at the save's last collective (its barrier: torchrun's or Slurm's SIGKILL of a rank
that waited there past their 30 s, a second ``pkill``): rank 0 took the loss for one met in
training and saved the same iteration a second time, and its line blamed the loss."""
from __future__ import annotations

import gc
import os
import re
import signal
import sys
from types import SimpleNamespace

import pytest

from trainer import checkpoint as ckpt
from trainer.state import Position
from trainer.stop_lines import stop_message
from trainer.stopping import WORKER_DEATH, StopFlag


def _rank(rank: int, port: int, config: str, out: str, stop: bool) -> None:
    """One of two gloo ranks; rank 0 is asked to stop (SIGTERM) in iteration 3 (``stop``),
    rank 1 is killed at the first barrier it waits at: the stop's save's, else the epoch's
    end, once rank 0 queued the epoch's files."""
    import torch

    from trainer import distributed, saving
    from trainer.callbacks import Callback
    from trainer.config import load_config
    from trainer.engine import fit
    from trainer.errors import TrainingInterrupted

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    if rank == 1:
        def killed() -> None:
            os.kill(os.getpid(), signal.SIGKILL)

        distributed.barrier = killed   # type: ignore[assignment]
    saves = []
    snapshot = saving.snapshot

    def counted(run):
        saves.append(run.state.pos.iteration)
        return snapshot(run)

    saving.snapshot = counted   # type: ignore[assignment]

    class _Stop(Callback):
        def on_train_batch_start(self, run, pos):
            if stop and rank == 0 and pos.iteration == 2:
                run.stop.request(signal.SIGTERM)

    try:
        fit(load_config(config), resume="none", callbacks=[_Stop()])
    except TrainingInterrupted as exc:
        with open(os.path.join(out, f"line{rank}.txt"), "w") as f:
            f.write(f"{exc}\n{saves}")
        sys.exit(exc.exit_code)


def _two_ranks(tiny_config, tmp_path, stop: bool) -> tuple[list, str, str]:
    """The exit codes, rank 0's line and the iterations whose state it took to save."""
    import multiprocessing

    from _ports import free_port   # (not an ephemeral port: see there)

    port = free_port()
    config = tiny_config(**{"train.batch_size": 4, "train.freeze_epochs": 0, "train.epochs": 1,
                            "train.save_minutes": 0})
    # (Imported here, once, not in each forked rank as it builds its optimizer: torch imports
    # torch._dynamo then (Optimizer.__init__ is wrapped by torch._disable_dynamo), 1.1 s of
    # CPU per rank at idle, both ranks at once; a no-op where this process has it already.)
    import torch._dynamo  # noqa: F401
    fork = multiprocessing.get_context("fork")
    gc.collect()
    ranks = [fork.Process(target=_rank, args=(r, port, config, str(tmp_path), stop))
             for r in (0, 1)]
    for p in ranks:
        p.start()
    for p in ranks:
        p.join(120)
        if p.is_alive():
            p.kill()
    line, saves = (tmp_path / "line0.txt").read_text().rsplit("\n", 1)
    return [p.exitcode for p in ranks], line, saves


def test_a_rank_lost_at_the_stops_barrier_leaves_one_save_and_the_stops_line(tiny_config, tmp_path):
    codes, line, saves = _two_ranks(tiny_config, tmp_path, stop=True)
    out = tmp_path / "logs"

    assert codes == [143, -signal.SIGKILL], line
    assert saves == "[3]", line          # one save of the stop's iteration, not two
    assert re.fullmatch(rf"stopped by SIGTERM at epoch 1, iteration 3: autosave_00000003\.pt is "
                        rf"saved in {re.escape(str(out))}; resume with --resume auto", line), line
    assert ckpt.position_of(ckpt.load_checkpoint(str(out / "autosave_00000003.pt"))) == (0, 3, 3)


def test_a_rank_lost_at_the_epochs_end_is_not_saved_again(tiny_config, tmp_path):
    """Rank 1 killed at the epoch's end, as rank 0 wrote last.pt and epoch_001.pt: rank 0 saved
    the same state again as autosave_00000004.pt (an upload more in the grace)."""
    codes, line, saves = _two_ranks(tiny_config, tmp_path, stop=False)
    out = tmp_path / "logs"

    assert codes == [1, -signal.SIGKILL], line
    assert saves == "[4]", line          # the epoch's save, not a second one
    assert re.fullmatch(rf"stopped by the loss of rank 1 at epoch 1, iteration 4: last\.pt is "
                        rf"saved in {re.escape(str(out))}; resume with --resume auto \(gloo: "
                        rf"[^()]*: rank 1 ended or stopped answering, its own lines say why; "
                        rf"run the same torchrun command again\)", line), line
    assert not list(out.glob("autosave_*"))
    assert ckpt.position_of(ckpt.load_checkpoint(str(out / "last.pt")))[1] == 4


@pytest.mark.parametrize("first, since", [(signal.SIGTERM, "the signal"),
                                          (WORKER_DEATH, "the worker's death")])
def test_a_loss_after_another_stop_counts_its_seconds_from_that_stop(first, since):
    """A SIGTERM (or a worker's death), then the loss of rank 1 before the save: the loss is
    named, but the grace's clock (and the line's seconds) stays the first stop's; the line
    said "(3.0 s after the loss of rank 1)", counted from the signal."""
    writer = SimpleNamespace(not_on_drive=lambda: [], other_run=[], verified=lambda n: True,
                             last_error=None)
    stop = StopFlag(10)
    stop.request(first)
    at = stop.at
    stop.lose_peer("rank 1")
    saver = SimpleNamespace(stop=stop, drive_spec="drive:runs/x", out_dir="/logs",
                            writer=writer, final_wait=SimpleNamespace(dest=lambda spec: spec))
    job = SimpleNamespace(written=True, name="autosave_00000002.pt", error=None)

    text = stop_message(saver, job, Position(0, 2, 2))

    assert stop.at == at and stop.exit_code == 1
    assert text.startswith("stopped by the loss of rank 1 at epoch 1, iteration 2: "
                           "autosave_00000002.pt is saved and verified on drive:runs/x ("), text
    assert text.endswith(f" s after {since}); resume with --resume auto"), text
    fresh = StopFlag(10)
    fresh.lose_peer("rank 1")
    assert fresh.since == "the loss of rank 1"


def test_a_loss_after_this_ranks_worker_died_keeps_the_deaths_advice():
    """Rank 0's worker killed by the OOM killer, and rank 1 with it (the same shortage):
    rank 0 met the loss in the stop's collective and its line named the loss alone, the
    death's words and memory advice gone (rank 1, SIGKILLed, said nothing)."""
    from trainer import worker_deaths

    words = "DataLoader worker (pid 7) is killed by signal: Killed."
    alone = StopFlag(10)
    alone.request(WORKER_DEATH, words)
    stop = StopFlag(10)
    stop.request(WORKER_DEATH, words)
    stop.lose_peer("rank 1")

    said = worker_deaths.advice(stop)
    assert said == worker_deaths.advice(alone) and said.startswith(f" ({words.rstrip('.')}: "), said
    assert stop.name == "the loss of rank 1" and stop.worker_died
