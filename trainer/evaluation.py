"""Evaluation: the validation loss and mAP (VOC mAP@0.5, COCO mAP@0.5:0.95) of a model.

Both loops check a stop request (:class:`trainer.stopping.StopFlag`) after every batch, so a
SIGTERM during evaluation is answered within one batch.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from trainer import distributed, unreadable
from trainer.data.batches import to_model_input
from trainer.stopping import StopFlag
from trainer.worker_deaths import shut_down, watched


@torch.no_grad()
def validation_loss(model: nn.Module, criterion: nn.Module, loader: Iterable, device: torch.device,
                    *, stop: Optional[StopFlag] = None) -> float:
    """Mean loss over the (letterboxed, unaugmented) validation set; a stop request ends it
    early (:class:`~trainer.stopping.StopRequested`)."""
    model.eval()
    total, n = 0.0, 0
    for images, targets in (watched(loader, stop) if stop is not None else loader):
        if stop is not None:
            stop.check()
        loss, _ = criterion(model(to_model_input(images, device)), targets.to(device))
        total += float(loss)
        n += 1
    return total / max(n, 1)


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Any, class_names: Sequence[str], device: torch.device, *,
             conf_thresh: float = 0.001, nms_thresh: float = 0.5, batch_size: int = 8,
             workers: int = 0, coco: bool = True, stop: Optional[StopFlag] = None) -> dict:
    """Detect on an :class:`EvalDataset` and score: VOC mAP@0.5 and COCO mAP@0.5:0.95.

    Returns ``{"map50", "map", "per_class": {name: AP@0.5}, "images"}``. A stop request ends
    it early (:class:`~trainer.stopping.StopRequested`).
    """
    from torch.utils.data import DataLoader

    from trainer.metrics import coco_map, voc_map
    from trainer.model.decode import decode, postprocess

    base = distributed.unwrap(model)
    model.eval()
    from trainer.data import worker_signals

    # (A SIGTERM to every process of the run: the stop saves; worker_signals.)
    context = worker_signals.prepare() if workers > 0 else None
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=dataset.collate, worker_init_fn=worker_signals.init,
                        multiprocessing_context=context)
    size = dataset.input_size
    detections: dict[int, np.ndarray] = {}
    batches = iter(loader)
    try:
        for images, indices, sizes in (watched(batches, stop) if stop is not None else batches):
            if stop is not None:
                stop.check()
            outputs = model(images.to(device))
            decoded = decode(outputs, base.anchors, base.anchors_mask, size)
            results = postprocess(decoded, conf_thres=conf_thresh, nms_thres=nms_thresh,
                                  image_sizes=sizes, input_size=size, letterbox=True)
            for det, idx in zip(results, indices.tolist()):
                detections[idx] = det.detach().float().cpu().numpy().reshape(-1, 6)
    finally:
        # The workers end with the loop, however it ends: an error (a worker's MemoryError)
        # kept the loader alive by its traceback (a notebook keeps the last error), its
        # workers holding their memory until a garbage collection found it, at any later
        # call, which then waited up to 5 s for each of them (evalworkers38).
        shut_down(batches)
    gt = unreadable.ground_truth(dataset, stop)   # (a damaged XML: the epoch saved)
    map50, ap = voc_map(detections, gt, len(class_names), iou_thresh=0.5)
    per_class = {name: (None if math.isnan(v) else float(v)) for name, v in zip(class_names, ap)}
    out = {"map50": float(map50), "per_class": per_class, "images": len(dataset), "map": None}
    if coco:
        value = float(coco_map(detections, gt, len(class_names))["map50_95"])
        out["map"] = None if math.isnan(value) else value  # nan: nothing to score (no detections)
    return out
