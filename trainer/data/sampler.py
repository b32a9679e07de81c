"""Where a loader stands in its epoch: a sampler that can start in the middle of one.

The order of epoch ``e`` is a pure function of ``(seed, e)`` (torch's ``DistributedSampler``
shuffle, one replica when not distributed), and every sample's augmentation is a pure function
of ``(seed, e, index)`` (:mod:`trainer.data.dataset`). So resuming after ``k`` steps only has
to skip the first ``k * batch_size`` indices of this rank's share: the batches that follow are
the ones an uninterrupted run would have drawn, whatever the number of workers. On another
number of processes, each skips its share of the samples seen (rounded up:
:func:`trainer.data.dataset.set_loader_epoch`).
"""
from __future__ import annotations

import itertools
from typing import Iterator, Optional

from torch.utils.data import Dataset, DistributedSampler


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` whose epoch can start after a number of samples already seen."""

    def __init__(self, dataset: Dataset, *, num_replicas: Optional[int] = None,
                 rank: Optional[int] = None, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle,
                         seed=seed, drop_last=drop_last)
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Draw epoch ``epoch``'s order (0-based) and skip its first ``start`` samples."""
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        super().set_epoch(epoch)
        self.start = min(int(start), self.num_samples)

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return self.num_samples - self.start
