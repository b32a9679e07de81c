"""A loader that starts in the middle of an epoch yields exactly the rest of that epoch."""
from __future__ import annotations

import pytest
import torch

from trainer.data.dataset import YoloDataset, build_loader, set_loader_epoch
from trainer.data.sampler import ResumableSampler


def _batches(loader):
    return [(images.clone(), targets.clone()) for images, targets in loader]


@pytest.mark.parametrize("workers", [0, 2])
def test_starting_after_k_batches_gives_the_remaining_batches_of_that_epoch(synth_voc, workers):
    lines = synth_voc.train_lines_file.read_text().splitlines()
    data = YoloDataset(lines, 64, 3, train=True, epochs=4, seed=5)
    loader = build_loader(data, 4, shuffle=True, workers=workers, seed=5, drop_last=True)
    set_loader_epoch(loader, 1)
    whole = _batches(loader)
    assert len(whole) == len(data) // 4
    set_loader_epoch(loader, 2)
    _batches(loader)                                   # another epoch in between changes nothing
    set_loader_epoch(loader, 1, start=3)
    rest = _batches(loader)
    assert len(rest) == len(whole) - 3
    for (a, ta), (b, tb) in zip(whole[3:], rest):
        assert torch.equal(a, b) and torch.equal(ta, tb)
    set_loader_epoch(loader, 1)                        # the next epoch starts at its beginning
    assert len(loader) == len(whole)


def test_each_rank_skips_its_own_share():
    data = list(range(10))
    orders = {}
    for rank in (0, 1):
        s = ResumableSampler(data, num_replicas=2, rank=rank, shuffle=True, seed=3)
        s.set_epoch(4)
        orders[rank] = list(s)
        s.set_epoch(4, start=2)
        assert list(s) == orders[rank][2:] and len(s) == len(orders[rank]) - 2
    assert sorted(orders[0] + orders[1]) == data
