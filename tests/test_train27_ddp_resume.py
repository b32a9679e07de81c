"""train27: a resume in the middle of an epoch on another number of processes (one process,
then torchrun's two, gloo on CPU) with a batch the new number does not divide goes on from
where the epoch's order stands: no sample of it is trained on twice.

The resume skipped ``k * batch // world`` samples of each process's share (``k``: the steps
done): ``k * 3`` samples were seen by one process with batch 3, but the two processes (1
each) skipped ``k * 2`` of the order, and trained on ``k`` samples of the epoch again. Now a
checkpoint counts the samples of the epoch's order trained on (``epoch_meter.samples``) and
each process skips its share of them, rounded up (:func:`trainer.data.dataset.set_loader_epoch`):
where the new number of processes does not divide that count, at most ``world - 1`` samples of
that epoch are not trained on (as ``drop_last`` leaves some at every epoch's end), never one
twice.

Real runs on the synthetic VOC set; which samples each process loads is read off the dataset."""
from __future__ import annotations

import json
import os

import pytest
import torch
import torch.multiprocessing as mp

from test_ddp import _free_port

#: 18 train images; batch 3: one process takes 6 steps an epoch, two take 9 (1 each).
RUN = {"train.epochs": 1, "train.freeze_epochs": 0, "train.batch_size": 3, "train.nbs": 4,
       "train.eval_period": 5, "train.save_minutes": 0, "train.mosaic": False, "train.mixup": False}


def _worker(rank: int, world: int, port: int, config: str, out: str, mode: str) -> None:
    """``stop``: a SIGTERM right after iteration 3; ``resume``: --resume auto. Writes the
    indices of the epoch's order this process loaded to ``<mode><rank>.json``."""
    import logging
    import signal

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from trainer.config import load_config
    from trainer.data.dataset import YoloDataset
    from trainer.engine import fit
    from trainer.errors import TrainingInterrupted

    loaded: list[int] = []
    items = YoloDataset.__getitems__

    def record(self, indices):   # (observes: the batch is the real one)
        if self.train:           # (not the validation loss's)
            loaded.extend(int(i) for i in indices)
        return items(self, indices)

    YoloDataset.__getitems__ = record
    said: list[str] = []

    class _Said(logging.Handler):
        def emit(self, record):
            said.append(record.getMessage())

    engine_log = logging.getLogger("trainer.engine")
    engine_log.setLevel(logging.DEBUG)
    engine_log.addHandler(_Said(logging.INFO))
    if mode == "stop":
        class _Signal(logging.Handler):
            def emit(self, record):
                if "(iteration 3)" in record.getMessage():
                    os.kill(os.getpid(), signal.SIGTERM)

        engine_log.addHandler(_Signal())
    try:
        fit(load_config(config), resume="auto" if mode == "resume" else "none")
    except TrainingInterrupted:
        pass
    with open(os.path.join(out, f"{mode}{rank}.json"), "w") as fh:
        json.dump(loaded, fh)
    with open(os.path.join(out, f"{mode}{rank}.said.json"), "w") as fh:
        json.dump(said, fh)


def _loaded(out, name: str) -> list[int]:
    return json.loads((out / name).read_text())


@pytest.mark.slow
def test_a_mid_epoch_resume_on_two_processes_trains_no_sample_of_the_epoch_twice(
        tiny_config, tmp_path):
    from trainer import checkpoint as ckpt

    config = tiny_config(**RUN, **{"train.out_dir": str(tmp_path / "run")})
    from _trainer_proc import PRELOAD   # (torch._dynamo: DDP and the optimizer import it)

    mp.set_forkserver_preload([*PRELOAD, "trainer.engine", "trainer.config"])
    mp.start_processes(_worker, args=(1, _free_port(), config, str(tmp_path), "stop"), nprocs=1,
                       join=True, start_method="forkserver")
    before = _loaded(tmp_path, "stop0.json")
    assert len(before) == 9                    # 3 steps of 3
    state = ckpt.load_checkpoint(str(tmp_path / "run" / "autosave_00000003.pt"))
    assert ckpt.position_of(state) == (0, 3, 3) and state["epoch_meter"]["samples"] == 9
    mp.start_processes(_worker, args=(2, _free_port(), config, str(tmp_path), "resume"),
                       nprocs=2, join=True, start_method="forkserver")
    after = _loaded(tmp_path, "resume0.json") + _loaded(tmp_path, "resume1.json")
    # The epoch's order is the same on one process and on two (DistributedSampler's shuffle).
    trained = before + after
    assert len(trained) == len(set(trained)), sorted(trained)      # none twice
    assert len(set(range(18)) - set(trained)) <= 1                 # world - 1 at most left out
    assert set(before).isdisjoint(after)
    # Batch 3 on two processes trains at 2 (1 each): said, and the learning rate scaled for 2,
    # not 3 (lefts45; train.nbs 4 keeps both inside the optimizer's clamp).
    from trainer.config import load_config
    from trainer.optim import LRSchedule

    said = _loaded(tmp_path, "resume0.said.json")
    assert ("train.batch_size 3 is not a multiple of the 2 processes: each takes 1 image a step, "
            "so the batch trained is 2, and the learning rate is scaled for 2. Set a multiple "
            "of 2 to train at the batch configured") in said
    schedule = LRSchedule(load_config(config))
    assert f"{schedule(0, 2):.3g}" != f"{schedule(0, 3):.3g}"
    assert f"unfreeze phase from epoch 1: batch 2 (1 per process), lr {schedule(0, 2):.3g}" in said
    for alone in ("resume1", "stop0"):   # (rank 0 alone says it; one process shares no batch)
        assert not any("not a multiple" in line for line in _loaded(tmp_path, f"{alone}.said.json"))


class _Order(torch.utils.data.Dataset):
    def __len__(self):
        return 18

    def __getitem__(self, index):
        return index


def _rest(world: int, batch: int, start: int, seen) -> tuple[list[int], int]:
    """What ``world`` processes (per-process ``batch``) load of epoch 0 after a resume."""
    from torch.utils.data import DataLoader

    from trainer.data.dataset import set_loader_epoch
    from trainer.data.sampler import ResumableSampler

    out, skipped = [], 0
    for rank in range(world):
        sampler = ResumableSampler(_Order(), num_replicas=world, rank=rank, seed=3,
                                   drop_last=True)
        loader = DataLoader(_Order(), batch_size=batch, sampler=sampler, drop_last=True)
        skipped = set_loader_epoch(loader, 0, start=start, seen=seen)
        out += [int(i) for b in loader for i in b]
    return out, skipped


def test_the_samples_skipped_are_those_seen_on_any_number_of_processes():
    """The order's first ``seen`` samples, whatever the world sizes; a checkpoint that did not
    count them (before train27) skips ``start`` of this loader's batches, as before."""
    from trainer.data.sampler import ResumableSampler

    sampler = ResumableSampler(_Order(), num_replicas=1, rank=0, seed=3)
    sampler.set_epoch(0)
    order = list(sampler)
    rest, skipped = _rest(1, 1, 2, seen=8)          # two processes (4 each), 2 steps: 8 seen
    assert sorted(rest) == sorted(order[8:]) and skipped == 8
    rest, skipped = _rest(3, 1, 3, seen=9)          # one process (batch 3): 9 seen; 3 now
    assert sorted(rest) == sorted(order[9:]) and skipped == 9
    rest, skipped = _rest(2, 1, 3, seen=9)          # two (1 each): one sample left out
    assert sorted(rest) == sorted(order[10:]) and skipped == 10
    rest, skipped = _rest(2, 1, 3, seen=None)       # not counted: 3 steps of 1 each
    assert sorted(rest) == sorted(order[6:]) and skipped == 6
