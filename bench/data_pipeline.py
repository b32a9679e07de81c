"""Benchmark: can the data pipeline outrun the training step?

Generates a synthetic VOC set, then measures the images/s of ``build_loader`` at 416 with
mosaic + mixup (always on: the worst case, and the port's default 0.5/0.5), for 0 and 2
workers, against the ~6-8 img/s a YOLOv4-tiny training step reaches on a 2-core CPU
(DESIGN.md). Prints a table to stderr and one JSON object to stdout.

    python bench/data_pipeline.py [--images 200] [--size 416] [--batch 8] [--batches 30]
                                  [--workers 0 2] [--image-size 375 500]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

from trainer.data.dataset import YoloDataset, build_loader, set_loader_epoch
from trainer.data.synth import make_synthetic_voc
from trainer.data.voc import read_annotation_file

TRAIN_STEP_IMG_S = (6.0, 8.0)  # DESIGN.md: the port's step at 416, batch 8, 2-core CPU


def _loader_rate(lines, args, workers: int, mosaic_prob: float, mixup_prob: float) -> float:
    ds = YoloDataset(lines, args.size, args.classes, train=True, mosaic_prob=mosaic_prob, mixup_prob=mixup_prob,
                     epochs=100, seed=0)
    loader = build_loader(ds, args.batch, shuffle=True, workers=workers, seed=0, drop_last=True)
    seen, epoch = 0, 0
    it = None
    # Warm-up: the first batches include worker start-up, which an epoch pays once.
    set_loader_epoch(loader, epoch)
    it = iter(loader)
    for _ in range(2):
        next(it)
    start = time.perf_counter()
    batches = 0
    while batches < args.batches:
        try:
            images, _ = next(it)
        except StopIteration:
            epoch += 1
            set_loader_epoch(loader, epoch)
            it = iter(loader)
            continue
        seen += images.shape[0]
        batches += 1
    return seen / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--image-size", type=int, nargs=2, default=[375, 500], metavar=("MIN", "MAX"),
                        help="side lengths of the generated images (VOC's are mostly 500x375)")
    args = parser.parse_args(argv)

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        synth = make_synthetic_voc(tmp, images=args.images, classes=args.classes, seed=0,
                                   image_size=tuple(args.image_size))
        results["synth_images_per_s"] = args.images / (time.perf_counter() - start)
        lines = read_annotation_file(synth.train_lines_file)
        for workers in args.workers:
            for label, mosaic_prob, mixup_prob in (("mosaic+mixup always", 1.0, 1.0), ("port default 0.5/0.5", 0.5, 0.5)):
                key = f"loader_{args.size}_w{workers}_{'always' if mosaic_prob == 1.0 else 'default'}_img_per_s"
                results[key] = _loader_rate(lines, args, workers, mosaic_prob, mixup_prob)
                print(f"loader {args.size}px, {workers} workers, {label:<22}: {results[key]:7.1f} img/s",
                      file=sys.stderr)
    print(f"synthetic data generation: {results['synth_images_per_s']:.0f} images/s", file=sys.stderr)
    worst = min(v for k, v in results.items() if k.startswith("loader") and "_w2_" in k) if 2 in args.workers else None
    if worst is not None:
        print(f"2 workers, worst case {worst:.1f} img/s vs the training step's {TRAIN_STEP_IMG_S[0]:.0f}-"
              f"{TRAIN_STEP_IMG_S[1]:.0f} img/s: {worst / TRAIN_STEP_IMG_S[1]:.1f}x the faster step", file=sys.stderr)
    print(json.dumps({k: round(v, 1) for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
