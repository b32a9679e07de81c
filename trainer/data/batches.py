"""From samples to the model's input: collating batches, moving them, converting them.

Training batches cross two boundaries: from a DataLoader worker to the main process (through
shared memory), and from there to the device. Both carry uint8 images: a quarter of the
bytes of float32, and in a worker, fresh shared memory for a float32 batch costs more CPU
than augmenting it. ``to_model_input`` converts on the device (free on a GPU), giving
exactly the float32 images ``YoloDataset[i]`` gives.
"""
from __future__ import annotations

import ctypes
import sys
from typing import Union

import cv2
import numpy as np
import torch

__all__ = ["image_to_tensor", "yolo_collate", "to_model_input", "tune_worker_heap"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's <malloc.h>


def _to_chw(image: np.ndarray, out: np.ndarray) -> None:
    """uint8 HWC RGB → ``out``, float32 CHW in [0, 1].

    Plane by plane in numpy: 4x faster than a strided torch ``permute().float()``, and it
    stays off torch's intra-op thread pool when called in the main process.
    """
    for i, plane in enumerate(cv2.split(image)):
        np.multiply(plane, np.float32(1 / 255), out=out[i])


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HWC RGB → float32 CHW tensor in [0, 1]."""
    out = np.empty((3, *image.shape[:2]), dtype=np.float32)
    _to_chw(image, out)
    return torch.from_numpy(out)


def _batch_tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An empty tensor; in a DataLoader worker, in shared memory already (as torch's own
    ``default_collate`` does), so that sending it to the main process copies nothing."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    storage = torch.empty(0, dtype=dtype)._typed_storage()._new_shared(int(np.prod(shape)))
    return torch.empty(0, dtype=dtype).new(storage).view(shape)


def yolo_collate(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """``[(image, boxes [n, 5])]`` → ``(images [B, 3, S, S], targets [N, 6])``; column 0 is the image index.

    Images given as float32 ``[3, S, S]`` tensors (``YoloDataset[i]``) give a float32 batch;
    images given as uint8 ``[S, S, 3]`` arrays (``YoloDataset.__getitems__``, what a DataLoader
    calls) give a uint8 batch, which :func:`to_model_input` turns into the float32 one.
    """
    first = batch[0][0]
    if isinstance(first, np.ndarray):
        images = _batch_tensor((len(batch), 3, *first.shape[:2]), torch.uint8)
        planes = images.numpy()
        for i, (image, _) in enumerate(batch):
            cv2.split(image, list(planes[i]))
    else:
        images = torch.stack([item[0] for item in batch], out=_batch_tensor((len(batch), *first.shape), first.dtype))
    targets = []
    for i, (_, boxes) in enumerate(batch):
        if len(boxes):
            targets.append(torch.cat([torch.full((len(boxes), 1), float(i)), boxes], dim=1))
    return images, (torch.cat(targets) if targets else torch.zeros((0, 6), dtype=torch.float32))


def to_model_input(images: torch.Tensor, device: Union[str, torch.device], *, non_blocking: bool = False
                   ) -> torch.Tensor:
    """A loader batch on ``device``, as the model takes it: float32 in [0, 1].

    Training batches travel as uint8 (a quarter of the bytes through worker shared memory
    and to the GPU, where the conversion is free); float32 batches pass through unchanged.
    The result equals ``YoloDataset[i]``'s images bit for bit.
    """
    images = images.to(device, non_blocking=non_blocking)
    if images.dtype == torch.uint8:
        images = images.to(torch.float32).mul_(torch.tensor(1 / 255, dtype=torch.float32, device=images.device))
    return images


_heap_tuned = False


def tune_worker_heap() -> None:
    """In a DataLoader worker process (once): keep freed memory in glibc's heap for reuse.

    A sample allocates and frees the same few half-megabyte arrays every time; by default
    glibc maps each afresh and unmaps it when freed, and every page of a fresh mapping costs a
    page fault: about 260 per image, a quarter of a worker's CPU time here (on a VM, where page
    faults are dear). A worker holds a few MB, so keeping them costs nothing. A worker exists
    only to run the dataset, which makes this its entry point; the main process is left alone
    (``YoloDataset.__getitems__`` calls this, and it does nothing outside a worker).
    """
    global _heap_tuned
    if _heap_tuned or torch.utils.data.get_worker_info() is None:
        return
    _heap_tuned = True
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's maximum: blocks below it come from the heap
    mallopt(_M_TRIM_THRESHOLD, 64 << 20)  # and freed heap memory is kept up to this much
