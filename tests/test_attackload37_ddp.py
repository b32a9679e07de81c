"""attackload37: under torchrun, only one rank fails to load the checkpoint rank 0 chose
(that rank's own memory, its own device): loadfail37's stop is decided by rank 0 only, and
each rank's own load (:func:`trainer.restore.restore`) tells the others nothing. What
happens, on gloo: no hang and no mismatch. Rank 1 ends with the stop's line; rank 0 meets
its loss in training's first collective and ends with the peer-loss line ("nothing was
trained since"), both exit 1 within seconds; nothing in the run folder is replaced.

The load fails in torch itself (``TRAINER_TEST_LOAD_ON``, set in rank 1's process only:
the checkpoints loaded onto a device that machine lacks)."""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
import torch
from _gloo import LOST_PEER

from test_loadfail37_resume import _config, _line, trained  # noqa: F401  (module fixture)
from test_trainer22_hostile import _md5s

#: Longer than both ranks need (a few seconds); a hang is killed here and fails the test.
BOUND_S = 90


def _rank(rank: int, port: int, config: str, out: str) -> None:
    from trainer.config import load_config
    from trainer.engine import fit

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if rank == 1:
        os.environ["TRAINER_TEST_LOAD_ON"] = "*.pt=cuda:100"
    torch.set_num_threads(1)
    try:
        fit(load_config(config), resume="auto")
        said = "trained"
    except BaseException as exc:
        said = f"{type(exc).__name__} {getattr(exc, 'exit_code', '-')} {exc}"
    Path(out, f"rank{rank}.txt").write_text(said)


@pytest.mark.slow
def test_one_rank_that_cannot_load_ends_both_ranks_and_replaces_nothing(
        trained, synth_voc, tmp_path, monkeypatch):
    import torch.multiprocessing as mp

    from _ports import free_port

    monkeypatch.delenv("TRAINER_TEST_LOAD_ON", raising=False)
    logs = tmp_path / "logs"
    shutil.copytree(trained, logs)
    before, names = _md5s(logs), sorted(os.listdir(logs))
    config = _config(tmp_path, synth_voc, **{"train.epochs": 3})
    ctx = mp.start_processes(_rank, args=(free_port(), config, str(tmp_path)), nprocs=2,
                             join=False, start_method="fork")
    deadline, hung = time.monotonic() + BOUND_S, False
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            hung = True
            for p in ctx.processes:
                p.kill()
            break

    assert not hung, "a rank waited in a collective for its peer"
    said = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    # gloo words the peer's loss by which socket call meets it first: the same line either way.
    assert re.fullmatch(
        r"TrainingInterrupted 1 stopped by the loss of rank 1 before the first step since its "
        r"resume from epoch_002\.pt at epoch 2, iteration 4: nothing was trained since, and "
        rf"epoch_002\.pt holds the run's state still \(gloo: {LOST_PEER}: rank 1 ended or "
        r"stopped answering, its own lines say why; run the same torchrun command again\)",
        said[0]), said[0]
    assert said[1] == f"LoadFailedError 1 {_line(str(logs / 'epoch_002.pt'), logs / 'epoch_002.pt')}"
    assert _md5s(logs) == before
    assert sorted(os.listdir(logs)) == names
