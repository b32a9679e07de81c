"""Whole training epochs, and where their time goes.

Trains real epochs with ``trainer.engine.fit`` (the real loop: loader, step, EMA, validation
loss, mAP, checkpoints through the background writer, results.csv / plots / TensorBoard, and
Drive through a local emulator as ``drive.logs``) on a generated VOC set
(``trainer.data.synth``), with configs/demo.yaml's augmentation, and reports per epoch its
wall time, images/s and the share of the wall time spent

* ``data``: waiting for the loader (the first batch includes starting the workers);
* ``step``: forward + loss + backward + optimizer step (and the loop's bookkeeping);
* ``ema``: the EMA update;
* ``val loss`` and ``mAP``: the validation loss (from the end of the last step, so stopping
  the training loader's workers is in it) and the evaluation;
* ``ckpt``: checkpoints, the training thread's part (the state copied to CPU, handed over);
* ``logs``: results.csv, plots and TensorBoard callbacks;
* ``drive``: Drive hooks on the training thread (the progress bar's "safe on Drive");
* ``other``: the rest (the shares add up to 1).

Beside them, ``write`` and ``push`` are the busy time of the background writer (serialising
checkpoints; pushing the run folder to Drive) as a share of the same wall time: they overlap
the training thread and take CPU from it. In the same run, after the epochs: the
**loader-only** rate (one pass of the training DataLoader, no model) and the **step-only**
rate (the same model, loss and optimizer on one fixed batch), to compare the whole epoch with
its parts.

Instrumented through the engine's callback events (``on_train_batch_start`` splits the wait
for data from the step) and timing wrappers on the run's own objects (its callbacks, the EMA,
the loss's forward hook, the writer's Drive folder); the loop itself is the trainer's. On
CUDA every boundary synchronises, so each phase is charged its own GPU work and the GPU idles
exactly while the training thread waits for data: ``data`` is then the GPU's idle share
waiting for data.

    python bench/epoch.py                              # CPU: 416 px, batch 8, 2 workers
    python bench/epoch.py --size 320 --epochs 3
    python bench/epoch.py --device cuda                # AMP, batch 64
    taskset -c 0,1 python bench/epoch.py --device cuda # a GPU fed by 2 cores, as on Colab
    python bench/epoch.py --cache ram --json epoch.json

Wall-clock numbers on a shared machine are noisy: compare the shares and ratios of one run.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from _epoch_profile import BACKGROUND, PHASES, EpochProfile  # noqa: E402
from _machine import cpu_summary  # noqa: E402


# --------------------------------------------------------------------------- the parts alone

def loader_only(loader: Any, epoch: int) -> tuple[dict, Any]:
    """One pass of the training DataLoader, no model: images/s with and without the first
    batch (which includes starting the workers); returns the rates and the first batch."""
    from trainer.data.dataset import set_loader_epoch

    set_loader_epoch(loader, epoch)
    start = time.perf_counter()
    first, first_at, images = None, None, 0
    for batch in loader:
        images += batch[0].shape[0]
        if first is None:
            first, first_at = batch, time.perf_counter()
    end = time.perf_counter()
    n0 = first[0].shape[0]
    return {"images": images, "seconds": end - start, "img_s": images / (end - start),
            "img_s_after_first": (images - n0) / max(end - first_at, 1e-9) if images > n0 else None}, first


def step_only(run: Any, batch: Any, iters: int, warmup: int, autocast: Optional[torch.dtype],
              sync: Callable[[], None]) -> dict:
    """The trained run's model, loss and optimizer on one fixed batch, through the engine's
    own step (``train_one_epoch`` over a loader that repeats the batch; no EMA)."""
    from trainer.one_epoch import train_one_epoch
    from trainer.state import EpochMeter, Position

    t = run.cfg.train
    began: list = []
    took: list = []

    def clock() -> float:
        sync()
        return time.perf_counter()

    def steps(n: int) -> None:
        train_one_epoch(run.model, run.criterion, run.optimizer, [batch] * n, run.device,
                        start=Position(), steps=n, lr_at=lambda _: 1e-4, scaler=run.scaler, ema=None,
                        meter=EpochMeter(), before_step=lambda pos: began.append(clock()),
                        after_step=lambda pos, logs: took.append(clock() - began[-1]),
                        autocast=autocast, grad_clip=t.grad_clip, channels_last=t.channels_last)

    steps(warmup)
    took.clear()
    steps(iters)
    n = batch[0].shape[0]
    return {"images": iters * n, "seconds": sum(took), "img_s": iters * n / sum(took),
            "median_step_s": _median(took), "median_img_s": n / _median(took)}


def _median(values: list) -> float:
    v = sorted(values)
    return v[len(v) // 2]


# --------------------------------------------------------------------------- the run

def _start_emulator(work: Path) -> tuple[subprocess.Popen, str]:
    """``drivestage emulator`` in its own process (its CPU is not this process's GIL)."""
    proc = subprocess.Popen([sys.executable, "-m", "drivestage", "emulator", "--data-dir",
                             str(work / "drive"), "--port", "0", "--token", "bench"],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    prefix = "Drive API emulator at "
    if not line.startswith(prefix):
        proc.kill()
        raise SystemExit(f"bench/epoch.py: the Drive emulator did not start (it said {line!r})")
    return proc, line[len(prefix):]


def _parse(argv: Optional[list[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N] (CUDA: AMP, batch 64)")
    ap.add_argument("--images", type=int, default=None,
                    help="generated images, 81%% of them for training (cpu 100, cuda 1600)")
    ap.add_argument("--image-size", type=int, nargs=2, default=[375, 500], metavar=("MIN", "MAX"),
                    help="side lengths of the generated images (VOC's are mostly 500x375)")
    ap.add_argument("--size", type=int, default=416, help="model.input_size")
    ap.add_argument("--batch", type=int, default=None, help="train.batch_size (cpu 8, cuda 64)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="data.workers")
    ap.add_argument("--cache", choices=("none", "ram", "disk"), default=None,
                    help="data.cache (default: the config's)")
    ap.add_argument("--no-drive", action="store_true", help="no drive.logs (no Drive emulator)")
    ap.add_argument("--step-iters", type=int, default=None, help="timed step-only steps (cpu 6, cuda 30)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="any other config override (repeatable)")
    ap.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--keep", help="keep the work folder here (default: a temporary one, removed)")
    ap.add_argument("-v", "--verbose", action="store_true", help="the trainer's INFO log on stderr")
    return ap.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = _parse(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: this machine has no usable CUDA GPU "
                         f"(torch {torch.__version__}); run with --device cpu")
    gpu = args.device.startswith("cuda")
    images = args.images or (1600 if gpu else 100)
    batch = args.batch or (64 if gpu else 8)
    if args.threads:
        torch.set_num_threads(args.threads)
    handler = logging.StreamHandler()
    handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
    logging.basicConfig(level=logging.INFO, handlers=[handler],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if gpu else (lambda: None)

    work = Path(args.keep or tempfile.mkdtemp(prefix="trainer-epoch-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _bench(args, work, images, batch, device, sync)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _bench(args: argparse.Namespace, work: Path, images: int, batch: int, device: torch.device,
           sync: Callable[[], None]) -> int:
    from trainer.config import load_config
    from trainer.data.synth import make_synthetic_voc
    from trainer.engine import fit

    gpu = device.type == "cuda"
    began = time.perf_counter()
    synth = make_synthetic_voc(work / "synth", images=images, classes=4, seed=0,
                               image_size=tuple(args.image_size))
    synth_s = time.perf_counter() - began
    overrides = [f"data.classes={synth.classes_file}", f"data.train={synth.train_lines_file}",
                 f"data.val={synth.val_lines_file}", f"data.root={work / 'data'}",
                 f"data.workers={args.workers}", f"model.input_size={args.size}",
                 f"train.batch_size={batch}", f"train.freeze_batch_size={batch}",
                 f"train.epochs={args.epochs}", "train.eval_period=1",
                 f"train.out_dir={work / 'logs'}", f"train.device={args.device}"]
    if args.cache:
        overrides.append(f"data.cache={args.cache}")
    emulator = None
    if not args.no_drive:
        emulator, url = _start_emulator(work)
        os.environ.update({"DRIVESTAGE_API_ROOT": url, "DRIVESTAGE_TOKEN": "bench",
                           "DRIVESTAGE_STATE_DIR": str(work / "state")})
        overrides.append("drive.logs=drive:bench/logs")
    try:
        cfg = load_config(args.config, overrides + list(args.set))
        profile = EpochProfile(sync)
        print(f"# {cpu_summary()}" + (f"; GPU: {torch.cuda.get_device_name(device)}" if gpu else
                                       f"; {torch.get_num_threads()} torch threads"), flush=True)
        d, m, t = cfg.data, cfg.model, cfg.train
        aug = "mosaic " + (f"{t.mosaic_prob:g}" if t.mosaic else "off") + ", mixup " + \
            (f"{t.mixup_prob:g}" if t.mosaic and t.mixup else "off")
        print(f"# {Path(args.config).name} ({aug}), {m.input_size} px, batch {t.batch_size}, "
              f"{d.workers} workers, data.cache {d.cache}, "
              f"{'AMP ' if gpu and t.amp else ''}{device}; {images} generated images "
              f"({args.image_size[0]}-{args.image_size[1]} px, {synth_s:.0f} s to make): "
              f"{_count(synth.train_lines_file)} train, {_count(synth.val_lines_file)} val; mAP every "
              f"epoch; Drive: {'the emulator (its own process)' if emulator else 'off'}", flush=True)
        began = time.perf_counter()
        fit(cfg, resume="none", callbacks=[profile])
        fit_s = time.perf_counter() - began
        run = profile.run
        last_end = profile.epochs[-1]["end"]
        flush_s = sum(v for k, v in profile.outside.items() if k.endswith(":on_fit_end"))
        tail = profile.background_in(last_end, float("inf"))
        loader, fixed = loader_only(run.train_loader, t.epochs)
        iters = args.step_iters or (30 if gpu else 6)
        step = step_only(run, fixed, iters, 5 if gpu else 1, profile.autocast or None, sync)
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait(10)
    results = _report(profile, loader, step, flush_s, tail, fit_s, gpu)
    results["machine"] = cpu_summary()
    results["config"] = {"size": m.input_size, "batch": t.batch_size, "workers": d.workers,
                         "cache": d.cache, "device": str(device),
                         "images": images, "augmentation": aug, "drive": emulator is not None}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _count(path: Path) -> int:
    return sum(1 for line in Path(path).read_text().splitlines() if line.strip())


def _report(profile: EpochProfile, loader: dict, step: dict, flush_s: float, tail: dict,
            fit_s: float, gpu: bool) -> dict:
    heads = ["data", "step", "ema", "val loss", "mAP", "ckpt", "logs", "drive", "other"]
    print(f"{'epoch':>5} {'wall s':>7} {'img/s':>6} {'step/s':>6}  " + " ".join(f"{h:>8}" for h in heads)
          + "  |  bg: " + " ".join(f"{h:>6}" for h in BACKGROUND))
    epochs = []
    for e in profile.epochs:
        wall = e["wall_s"]
        bg = profile.background_in(e["start"], e["end"])
        per_step = e["images"] / max(e["steps"], 1)
        row = {"epoch": e["epoch"], "wall_s": wall, "images": e["images"], "img_s": e["images"] / wall,
               "step_img_s": per_step / _median(e["step_times"]),    # the step's own rate, median
               "seconds": {p: e[p] for p in PHASES}, "shares": {p: e[p] / wall for p in PHASES},
               "background_s": bg, "background_shares": {k: v / wall for k, v in bg.items()},
               "loop_s": e["data"] + e["step"] + e["ema"],
               "val_loss": e["val_loss_value"], "map50": e["map50_value"]}
        epochs.append(row)
        print(f"{e['epoch']:>5} {wall:>7.1f} {row['img_s']:>6.2f} {row['step_img_s']:>6.2f}  "
              + " ".join(f"{100 * v:>7.1f}%" for v in row["shares"].values())
              + "  |      " + " ".join(f"{100 * v:>5.1f}%" for v in row["background_shares"].values()),
              flush=True)
    print(f"(img/s: the epoch's images over its wall time; step/s: images/s of its median step; "
          f"bg: the background writer's busy time, overlapping the rest)")
    print(f"after the last epoch: on_fit_end {flush_s:.1f} s (the writer finishes; with Drive it "
          f"pushes once more); the writer was busy {tail['write']:.1f} s writing, {tail['push']:.1f} s "
          f"pushing after the last epoch; fit() took {fit_s:.1f} s in all")
    print(f"loader only: {loader['img_s']:.1f} img/s (one pass of the training DataLoader without a "
          f"model, {loader['images']} images; {_fmt(loader['img_s_after_first'])} img/s after the "
          f"first batch, which starts the workers)")
    print(f"step only: {step['median_img_s']:.2f} img/s (median step; {step['img_s']:.2f} over all "
          f"{step['images']} images): the run's model, loss and optimizer on one fixed batch, no EMA")
    last = epochs[-1]
    print(f"the loader delivers {loader['img_s'] / step['median_img_s']:.1f}x what the step takes alone; "
          f"the last epoch ran at {last['img_s'] / step['median_img_s']:.2f}x the step-only rate, its "
          f"median step at {last['step_img_s'] / step['median_img_s']:.2f}x")
    out = {"epochs": epochs, "loader_only": loader, "step_only": step, "fit_end_s": flush_s,
           "background_after_last_epoch_s": tail, "fit_s": fit_s}
    if gpu:
        idle = [{"of_epoch": r["seconds"]["data"] / r["wall_s"],
                 "of_training_loop": r["seconds"]["data"] / r["loop_s"]} for r in epochs]
        out["gpu_idle_waiting_for_data"] = idle
        print("GPU idle waiting for data: " + "; ".join(
            f"epoch {r['epoch']} {100 * i['of_epoch']:.1f} % of the epoch ({100 * i['of_training_loop']:.1f} % "
            f"of its training loop)" for r, i in zip(epochs, idle)))
    print(json.dumps({"epoch_img_s": [round(r["img_s"], 2) for r in epochs],
                      "epoch_step_img_s": [round(r["step_img_s"], 2) for r in epochs],
                      "loader_img_s": round(loader["img_s"], 1), "step_img_s": round(step["median_img_s"], 2),
                      "data_share": [round(r["shares"]["data"], 4) for r in epochs]}))
    return out


def _fmt(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.1f}"


if __name__ == "__main__":
    raise SystemExit(main())
