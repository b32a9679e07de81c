"""Datasets and loaders for training (augmented) and evaluation (letterboxed).

Decisions the training loop relies on:

* Randomness: every sample draws from its own ``numpy.random.Generator`` seeded with
  ``(seed, epoch, index)``. A sample is therefore the same whatever the number of workers,
  the worker that happens to load it, or a resume in the middle of training; and two workers
  (or two ranks, which see different indices) never share a random stream.
* ``set_epoch(epoch)`` writes a shared-memory integer that worker processes read at every
  ``__getitem__``, so it reaches workers whether they are persistent or not. ``build_loader``
  uses non-persistent workers; call ``set_loader_epoch(loader, epoch, start=k)`` before
  iterating an epoch: it sets the dataset's epoch, the sampler's (the shuffling order) and,
  to resume in the middle of the epoch, skips its first ``k`` batches.
* Shuffling uses a ``ResumableSampler`` (torch's ``DistributedSampler``, one replica when
  not distributed, :mod:`trainer.data.sampler`), so the order of epoch ``e`` depends only on
  ``(seed, e)``, and the loader's own generator is reseeded from ``(seed, rank, e)``.
* ``worker_init_fn`` seeds Python's ``random``, numpy's global state and torch in each worker
  from ``(seed, epoch, rank, worker_id)`` for any code that uses global RNGs.
* OpenCV runs single-threaded (set when ``trainer.data`` is imported): the workers are the
  parallelism, and a forked worker calling into an OpenCV thread pool that the parent had
  started deadlocks (seen here: ``cv2.setNumThreads`` inside a worker hung forever).
* Mosaic and mixup are on while ``epoch < epochs * special_aug_ratio`` (epochs counted from 0);
  mixup is only ever applied on top of a mosaic, as in the port.
* Images are decoded into their fitted form (``images.decode_fitted``: no larger than the
  input), from the ``data.cache`` when there is one (``cache.py``): the same pixels either
  way, so samples do not depend on the cache mode. Boxes are scaled with the image.
* A DataLoader fetches a batch through ``__getitems__`` and gets uint8 images
  (``batches.py``); ``to_model_input`` makes the float32 model input on the device.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import random
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from trainer.data import augment, worker_signals
from trainer.data.batches import image_to_tensor, tune_worker_heap, to_model_input, yolo_collate
from trainer.data.cache import open_cache
from trainer.data.devkit import empty_box, parse_voc_xml
from trainer.data.images import decode_fitted, read_bytes, read_image
from trainer.data.sampler import ResumableSampler
from trainer.data.voc import parse_annotation_line
from trainer.errors import DataError

log = logging.getLogger(__name__)


__all__ = [
    "read_image",
    "YoloDataset",
    "EvalDataset",
    "yolo_collate",
    "to_model_input",
    "eval_collate",
    "build_loader",
    "set_loader_epoch",
    "worker_init_fn",
]


def _parse_all(lines: Sequence[str], num_classes: Optional[int]) -> tuple[list[str], list[np.ndarray]]:
    if not lines:
        raise DataError("the dataset has no annotation lines; check the annotation file")
    paths, boxes = [], []
    for line in lines:
        path, b = parse_annotation_line(line)
        if num_classes is not None and len(b) and (b[:, 4].max() >= num_classes):
            raise DataError(
                f"annotation line for {path} uses class {int(b[:, 4].max())} but the model has "
                f"{num_classes} classes; check the classes file"
            )
        paths.append(path)
        boxes.append(b)
    return paths, boxes


class YoloDataset(Dataset):
    """Training samples: ``(image float32 [3, S, S] in [0, 1], boxes float32 [n, 5])``.

    Boxes are ``(cls, cx, cy, w, h)`` normalised to the network input. With ``train=False``
    the image is only letterboxed (the validation-loss path).
    """

    def __init__(
        self,
        lines: Sequence[str],
        input_size: int,
        num_classes: int,
        *,
        train: bool,
        mosaic: bool = True,
        mixup: bool = True,
        mosaic_prob: float = 0.5,
        mixup_prob: float = 0.5,
        special_aug_ratio: float = 0.7,
        epochs: int = 100,
        seed: int = 0,
        jitter: float = 0.3,
        scale: tuple[float, float] = (0.25, 2.0),
        flip_prob: float = 0.5,
        hsv: tuple[float, float, float] = (0.1, 0.7, 0.4),
        min_box: float = 1.0,
        cache: str = "none",
        cache_dir: Optional[str] = None,
        cache_budget: Optional[int] = None,
    ) -> None:
        if input_size % 32:
            raise DataError(f"input_size must be a multiple of 32, got {input_size}")
        self.paths, self.boxes = _parse_all(lines, num_classes)
        self.input_size = int(input_size)
        self.num_classes = int(num_classes)
        self.train = train
        self.mosaic = mosaic
        self.mixup = mixup
        self.mosaic_prob = mosaic_prob
        self.mixup_prob = mixup_prob
        self.special_aug_ratio = special_aug_ratio
        self.epochs = epochs
        self.seed = int(seed)
        self.jitter = jitter
        self.scale = scale
        self.flip_prob = flip_prob
        self.hsv = hsv
        self.min_box = min_box
        # Shared memory, inherited by worker processes: set_epoch reaches persistent workers too.
        self._epoch = multiprocessing.RawValue("i", 0)
        if cache == "disk" and cache_dir is None:
            cache_dir = os.path.join(os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in self.paths]),
                                     "image-cache")
        # Filled here, in the main process, so that forked workers share it.
        self._cache = open_cache(cache, self.paths, self.input_size, cache_dir, budget=cache_budget)

    # -- epoch ---------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Tell the dataset (and its workers) which epoch is being loaded (0-based)."""
        self._epoch.value = int(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch.value)

    def special_aug_active(self, epoch: Optional[int] = None) -> bool:
        """Whether mosaic/mixup may be used in ``epoch`` (the current one by default)."""
        epoch = self.epoch if epoch is None else epoch
        return self.train and epoch < self.epochs * self.special_aug_ratio

    def __len__(self) -> int:
        return len(self.paths)

    def __getstate__(self):
        # RawValue pickles only while spawning workers; elsewhere (deepcopy, torch.save) carry an int.
        state = self.__dict__.copy()
        try:
            multiprocessing.context.assert_spawning(self)
        except RuntimeError:
            state["_epoch"] = int(self._epoch.value)
        return state

    def __setstate__(self, state):
        epoch = state["_epoch"]
        if isinstance(epoch, int):
            state["_epoch"] = multiprocessing.RawValue("i", epoch)
        self.__dict__.update(state)

    # -- samples ---------------------------------------------------------------
    def rng_for(self, index: int, epoch: Optional[int] = None) -> np.random.Generator:
        """The generator of one sample: a pure function of ``(seed, epoch, index)``."""
        epoch = self.epoch if epoch is None else epoch
        return np.random.default_rng([self.seed, epoch, index])

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The image fitted to the input size and its ``[n, 5]`` pixel boxes (x1, y1, x2, y2, cls), unaugmented.

        The image (possibly a read-only view into the cache) is what
        ``images.decode_fitted`` gives, whether it comes from the cache or a fresh decode.
        """
        if self._cache is not None:
            image, (orig_h, orig_w) = self._cache.get(index)
        else:
            path = self.paths[index]
            image, (orig_h, orig_w) = decode_fitted(read_bytes(path), self.input_size, path)
        boxes = self.boxes[index].copy()
        h, w = image.shape[:2]
        if (h, w) != (orig_h, orig_w) and len(boxes):
            boxes[:, [0, 2]] *= w / orig_w
            boxes[:, [1, 3]] *= h / orig_h
        return image, boxes

    def _single(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        image, boxes = self.load(index)
        return augment.random_scale_jitter(image, boxes, self.input_size, rng, jitter=self.jitter, scale=self.scale,
                                           min_box=self.min_box, flip_prob=self.flip_prob)

    def sample(self, index: int, epoch: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        """One sample as ``(uint8 [S, S, 3] RGB, [n, 5] pixel boxes x1, y1, x2, y2, cls)``."""
        size = self.input_size
        if not self.train:
            image, boxes = self.load(index)
            padded, scale, pad = augment.letterbox(image, size)
            boxes = augment.filter_boxes(augment.clip_boxes(augment.letterbox_boxes(boxes, scale, pad), 0, 0, size, size))
            return padded, boxes
        rng = self.rng_for(index, epoch)
        n = len(self)
        if self.mosaic and self.special_aug_active(epoch) and rng.random() < self.mosaic_prob:
            others = rng.integers(0, n, 3)
            order = [index, *others.tolist()]
            rng.shuffle(order)
            samples = [self.load(i) for i in order]
            image, boxes = augment.mosaic(samples, size, rng, jitter=self.jitter, flip_prob=self.flip_prob,
                                          min_box=self.min_box)
            if self.mixup and rng.random() < self.mixup_prob:
                other, other_boxes = self._single(int(rng.integers(0, n)), rng)
                image, boxes = augment.mixup(image, boxes, other, other_boxes, inplace=True)
        else:
            image, boxes = self._single(index, rng)
        image = augment.hsv_jitter(image, rng, *self.hsv)
        return image, boxes

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, boxes = self.sample(index)
        return image_to_tensor(image), _boxes_to_targets(boxes, self.input_size)

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[np.ndarray, torch.Tensor]]:
        """A batch for the DataLoader: images stay ``uint8 [S, S, 3]``, and ``yolo_collate`` makes a
        uint8 batch of them (see :func:`to_model_input`): float32 batches are four times the
        bytes, and fresh shared memory for them costs workers more than the augmentation."""
        tune_worker_heap()
        out = []
        for index in indices:
            image, boxes = self.sample(index)
            out.append((image, _boxes_to_targets(boxes, self.input_size)))
        return out

    @staticmethod
    def collate(batch):
        return yolo_collate(batch)


def _boxes_to_targets(boxes: np.ndarray, size: int) -> torch.Tensor:
    """Pixel ``x1, y1, x2, y2, cls`` → normalised ``cls, cx, cy, w, h``."""
    out = np.zeros((len(boxes), 5), dtype=np.float32)
    if len(boxes):
        out[:, 0] = boxes[:, 4]
        out[:, 1] = (boxes[:, 0] + boxes[:, 2]) / (2 * size)
        out[:, 2] = (boxes[:, 1] + boxes[:, 3]) / (2 * size)
        out[:, 3] = (boxes[:, 2] - boxes[:, 0]) / size
        out[:, 4] = (boxes[:, 3] - boxes[:, 1]) / size
    return torch.from_numpy(out)


class EvalDataset(Dataset):
    """Letterboxed images for evaluation: ``(image [3, S, S], index, (orig_h, orig_w))``.

    ``ground_truth()`` gives what ``metrics.voc_map`` wants, keyed by index. Annotation lines
    carry no difficult flags (the port leaves difficult objects out of them). To evaluate the
    VOC way, with difficult objects ignored, give ``classes``: for every image that sits in a
    VOCdevkit (``.../JPEGImages/ID.jpg`` with ``.../Annotations/ID.xml`` beside it) the ground
    truth then comes from the XML, difficult objects included and flagged. Or pass
    ``ground_truth`` outright. Map detections back to original pixels with
    ``augment.unletterbox_boxes(dets, input_size, (orig_h, orig_w))``.
    """

    def __init__(self, lines: Sequence[str], input_size: int, *, classes: Optional[Sequence[str]] = None,
                 ground_truth: Optional[dict] = None) -> None:
        if input_size % 32:
            raise DataError(f"input_size must be a multiple of 32, got {input_size}")
        self.paths, self.boxes = _parse_all(lines, None)
        self.input_size = int(input_size)
        self.classes = list(classes) if classes is not None else None
        self._ground_truth = ground_truth

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        image = read_image(self.paths[index])
        padded, _, _ = augment.letterbox(image, self.input_size)
        return image_to_tensor(padded), index, (image.shape[0], image.shape[1])

    def ground_truth(self) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``{index: (boxes [m, 4], labels [m], difficult [m])}`` in original pixels."""
        if self._ground_truth is not None:
            return self._ground_truth
        truth = {}
        for i, (path, b) in enumerate(zip(self.paths, self.boxes)):
            xml = self._voc_xml(path)
            if xml is not None:
                _, objects = parse_voc_xml(xml)
                # An empty or inverted box is left out, as prepare-voc leaves it out of the
                # lines training learns from: kept, it counted as an object never found.
                known = [o for o in objects if o.name in self._class_index and not empty_box(o.box)]
                truth[i] = (
                    np.array([o.box for o in known], dtype=np.float32).reshape(-1, 4),
                    np.array([self._class_index[o.name] for o in known], dtype=np.int64),
                    np.array([o.difficult for o in known], dtype=bool),
                )
            else:
                truth[i] = (b[:, :4].copy(), b[:, 4].astype(np.int64), np.zeros(len(b), dtype=bool))
        self._ground_truth = truth
        return truth

    def _voc_xml(self, image_path: str):
        if self.classes is None:
            return None
        if not hasattr(self, "_class_index"):
            self._class_index = {n: i for i, n in enumerate(self.classes)}
        image = Path(image_path)
        if image.parent.name != "JPEGImages":
            return None
        xml = image.parent.parent / "Annotations" / f"{image.stem}.xml"
        return xml if xml.is_file() else None

    @staticmethod
    def collate(batch):
        return eval_collate(batch)


def eval_collate(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """→ ``(images [B, 3, S, S], indices [B] int64, sizes [B, 2] int64 as (orig_h, orig_w))``."""
    images = torch.stack([item[0] for item in batch])
    indices = torch.tensor([item[1] for item in batch], dtype=torch.int64)
    sizes = torch.tensor([item[2] for item in batch], dtype=torch.int64)
    return images, indices, sizes


# --------------------------------------------------------------------------- loaders

def _seed_from(*parts: int) -> int:
    return int(np.random.SeedSequence([p & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


class _WorkerInit:
    """Picklable worker initialiser that knows the loader's seed and rank."""

    def __init__(self, seed: int, rank: int) -> None:
        self.seed = seed
        self.rank = rank
        self.epoch = 0  # set by set_loader_epoch; non-persistent workers get a fresh copy each epoch

    def __call__(self, worker_id: int) -> None:
        info = torch.utils.data.get_worker_info()
        epoch = getattr(info.dataset, "epoch", self.epoch) if info is not None else self.epoch
        s = _seed_from(self.seed, epoch, self.rank, worker_id)
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)
        worker_signals.shield()   # a SIGTERM to every process of the run: the stop saves


def worker_init_fn(worker_id: int, *, seed: int = 0, rank: int = 0) -> None:
    """Seed a worker's global RNGs from ``(seed, epoch, rank, worker_id)``."""
    _WorkerInit(seed, rank)(worker_id)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    workers: int,
    seed: int,
    drop_last: bool,
    distributed: bool = False,
    pin_memory: Optional[bool] = None,
    prefetch_factor: int = 2,
) -> DataLoader:
    """A ``DataLoader`` with the dataset's collate, a per-epoch seeded sampler and seeded workers.

    ``pin_memory`` defaults to whether CUDA is available. Call ``set_loader_epoch`` each epoch.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}")
    if len(dataset) == 0:
        raise DataError("the dataset is empty")
    rank = 0
    if distributed:
        sampler = ResumableSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
        rank = sampler.rank
    else:
        sampler = ResumableSampler(dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed)
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    generator = torch.Generator()
    generator.manual_seed(_seed_from(seed, rank))
    collate = getattr(dataset, "collate", None)
    kwargs = {}
    if workers > 0:
        kwargs["prefetch_factor"] = prefetch_factor
        kwargs["multiprocessing_context"] = worker_signals.prepare()
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        drop_last=drop_last,
        worker_init_fn=_WorkerInit(seed, rank),
        generator=generator,
        persistent_workers=False,
        **kwargs,
    )


def set_loader_epoch(loader: DataLoader, epoch: int, start: int = 0,
                     seen: Optional[int] = None) -> int:
    """Set the epoch (0-based) on the loader's sampler (order) and dataset (augmentation, mosaic
    cut-off); with ``start``, the epoch's first ``start`` steps are skipped (a resume): the
    first ``seen`` samples of the epoch's order (trained on by every process of the run that
    saved), each process skipping its share of them, rounded up; ``seen`` None (not counted):
    ``start`` of this loader's batches. Returns the samples of the order skipped, by every
    process.

    ``start * batch`` was exact only on the number of processes that saved: one process with
    batch 3 saw 9 samples in 3 steps, two processes (1 each) skipped 6 of them and trained on
    3 again (train27). Where the new number of processes does not divide ``seen``, at most
    that number less one of the epoch's samples are left out (as ``drop_last`` leaves some at
    every epoch's end), never one trained on twice: every process must take as many steps.

    The loader's generator is reseeded from ``(seed, rank, epoch)`` too: it draws the workers'
    base seed, which must not depend on how many epochs this process has iterated."""
    sampler = getattr(loader, "sampler", None)
    skipped = 0
    if isinstance(sampler, ResumableSampler):
        share = start * (loader.batch_size or 1) if seen is None or not start \
            else -(-seen // sampler.num_replicas)
        sampler.set_epoch(epoch, share)
        skipped = sampler.start * sampler.num_replicas
    elif start:
        raise ValueError("this loader's sampler cannot start in the middle of an epoch")
    elif hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)
    init = loader.worker_init_fn
    if isinstance(init, _WorkerInit):
        init.epoch = int(epoch)
        if loader.generator is not None:
            loader.generator.manual_seed(_seed_from(init.seed, init.rank, int(epoch)))
    return skipped
