"""Benchmark: images/s of the training loader; ours against 0.1.0's and Ultralytics', one run.

Every configuration loads the same generated VOC-like JPEGs (500x375 at most, as VOC's) at
416 with mosaic and mixup on every sample, batch 8, through a DataLoader with 2 workers:

* ``0.1.0``: the loader as it was (``bench/_loader_baseline.py``, frozen): the same-run baseline;
* ``ours``: ``YoloDataset`` + ``build_loader`` with ``data.cache`` none, ram and disk;
* ``ultralytics``: its ``YOLODataset`` + ``build_dataloader`` (mosaic=1, mixup=1, its own
  defaults otherwise) with ``cache`` False and ram, when ``ultralytics`` can be imported.
  It is not a dependency: install it anywhere outside the project's environment and name the
  folder, e.g. ``pip install --target /tmp/ul --no-deps ultralytics ultralytics-thop psutil``
  then ``--ultralytics-path /tmp/ul``. It runs with ``YOLO_OFFLINE=1``.

Each measurement is its own process (fresh imports: Ultralytics changes OpenCV's settings
when imported; with ``--fork`` ours are forked from the bench's process instead, whose
imports are made once: the test's run, which pays no torch import per measurement), the
configurations interleaved and repeated so that load from other processes hits all of them
alike; the table gives the median and the range. The rate is the steady state inside an
epoch: a few batches are taken first (worker start-up, paid once an epoch), then
``--batches`` are timed. Beside images/s (wall clock) it gives images per CPU-second (the CPU time of the loading process and its workers over the same batches):
on a machine shared with other work, wall-clock rates follow the neighbours' load, the CPU
cost per image does not; on an idle machine images/s is about cores x images/CPU-second. Ours hands out float32 images in [0, 1];
Ultralytics hands out uint8 (its trainer divides on the GPU). A cache's fill time is
reported apart: it is paid once (ram: every run; disk: once per machine, or never when the
folder is pulled from Drive).

    python bench/data_pipeline.py [--images 320] [--size 416] [--batch 8] [--batches 24]
        [--workers 2] [--repeats 3] [--caches none ram disk] [--ultralytics-path DIR] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


# --------------------------------------------------------------------------- one measurement (child)

def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its live children (the loader's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [os.getpid()]
    try:
        for task in os.listdir(f"/proc/{os.getpid()}/task"):
            with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
                pids += [int(p) for p in f.read().split()]
    except OSError:  # not Linux: this process only
        return time.process_time()
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / tick


def _timed(loader, warmup: int, batches: int) -> tuple[float, float]:
    """``(images/s, images per CPU-second)`` over ``batches`` batches after ``warmup`` ones."""
    it = iter(loader)
    seen = 0
    for _ in range(warmup):
        next(it)
    start, cpu = time.perf_counter(), _cpu_seconds()
    for _ in range(batches):
        batch = next(it)
        images = batch[0] if isinstance(batch, (tuple, list)) else batch["img"]
        seen += images.shape[0]
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    return seen / wall, seen / max(cpu, 1e-9)


def _ours(spec: dict) -> dict:
    from trainer.data.dataset import YoloDataset, build_loader, set_loader_epoch
    from trainer.data.voc import read_annotation_file

    lines = read_annotation_file(spec["lines"])
    if spec["kind"] == "0.1.0":
        from _loader_baseline import BaselineDataset as cls
    else:
        from trainer.data.dataset import YoloDataset as cls
    start = time.perf_counter()
    ds = cls(lines, spec["size"], spec["classes"], train=True, mosaic_prob=1.0, mixup_prob=1.0, epochs=100, seed=0,
             cache=spec["cache"], cache_dir=spec["cache_dir"])
    fill = time.perf_counter() - start
    if spec["cache"] != "none" and ds._cache is None:
        raise SystemExit(f"data.cache={spec['cache']} was refused (see the warning above)")
    loader = build_loader(ds, spec["batch"], shuffle=True, workers=spec["workers"], seed=0, drop_last=True)
    set_loader_epoch(loader, 0)
    rate, per_cpu = _timed(loader, spec["warmup"], spec["batches"])
    assert isinstance(ds, YoloDataset)
    return {"img_s": rate, "img_per_cpu_s": per_cpu, "fill_s": fill}


def _ultralytics(spec: dict) -> dict:
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_CONFIG_DIR", spec["tmp"])
    if spec.get("ultralytics_path"):
        sys.path.insert(0, spec["ultralytics_path"])
    try:
        import ultralytics  # noqa: F401
        from ultralytics.cfg import get_cfg
        from ultralytics.data.build import build_dataloader, build_yolo_dataset
        from ultralytics.utils import LOGGER
    except Exception as exc:  # not installed, or a broken install: skip, say why
        return {"skip": f"{type(exc).__name__}: {exc}"}
    LOGGER.setLevel("WARNING")
    cfg = get_cfg(overrides={"imgsz": spec["size"], "mosaic": 1.0, "mixup": 1.0,
                             "cache": spec["cache"] if spec["cache"] != "none" else False})
    data = {"names": {i: f"c{i}" for i in range(spec["classes"])}, "nc": spec["classes"], "channels": 3}
    start = time.perf_counter()
    ds = build_yolo_dataset(cfg, spec["ultralytics_images"], spec["batch"], data, mode="train")
    fill = time.perf_counter() - start
    loader = build_dataloader(ds, spec["batch"], spec["workers"], shuffle=True, rank=-1, drop_last=True,
                              pin_memory=False, device="cpu")
    rate, per_cpu = _timed(loader, spec["warmup"], spec["batches"])
    return {"img_s": rate, "img_per_cpu_s": per_cpu, "fill_s": fill}


def _child(spec: dict) -> int:
    result = _ultralytics(spec) if spec["kind"] == "ultralytics" else _ours(spec)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------- the run (parent)

def _forked_child(spec: dict) -> dict:
    """:func:`_child` in a child forked from this process (``--fork``): its imports made here
    once, its result back through a pipe; what it says on stderr goes to this process's."""
    import traceback

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:   # (the child: never returns)
        code = 1
        try:
            os.close(read_end)
            result = _ours(spec)
            with os.fdopen(write_end, "w") as out:
                out.write(json.dumps(result))
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as got:
        text = got.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not text:
        raise SystemExit(f"{spec['kind']} cache={spec['cache']} failed (exit "
                         f"{os.waitstatus_to_exitcode(status)}): see above")
    return json.loads(text)


def _run_child(spec: dict, fork: bool = False) -> dict:
    if fork and spec["kind"] != "ultralytics":
        return _forked_child(spec)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])))
    res = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                         env=env, timeout=900)
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise SystemExit(f"{spec['kind']} cache={spec['cache']} failed (exit {res.returncode}):\n{res.stderr[-3000:]}")


def _yolo_layout(lines: list[str], root: Path) -> str:
    """The same images and boxes the way Ultralytics reads them: images/ + labels/ with cls cx cy w h."""
    from trainer.data.images import header_size
    from trainer.data.voc import parse_annotation_line

    images, labels = root / "images" / "train", root / "labels" / "train"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    for line in lines:
        path, boxes = parse_annotation_line(line)
        h, w = header_size(path)
        name = Path(path).name
        os.symlink(path, images / name)
        rows = [f"{int(b[4])} {(b[0] + b[2]) / 2 / w:.6f} {(b[1] + b[3]) / 2 / h:.6f} "
                f"{(b[2] - b[0]) / w:.6f} {(b[3] - b[1]) / h:.6f}" for b in boxes]
        (labels / name).with_suffix(".txt").write_text("\n".join(rows) + ("\n" if rows else ""))
    return str(images)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--size", type=int, default=416)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3, help="batches before the clock starts")
    parser.add_argument("--batches", type=int, default=24, help="timed batches (keep them inside one epoch)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--caches", nargs="+", default=["none", "ram", "disk"], choices=["none", "ram", "disk"])
    parser.add_argument("--image-size", type=int, nargs=2, default=[375, 500], metavar=("MIN", "MAX"),
                        help="side lengths of the generated images (VOC's are mostly 500x375)")
    parser.add_argument("--ultralytics-path", default=None,
                        help="a folder holding the ultralytics package (not a project dependency)")
    parser.add_argument("--no-ultralytics", action="store_true")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--fork", action="store_true",
                        help="measure ours and 0.1.0's each in a child forked from this process, its "
                             "imports made once, not a fresh interpreter (the test's run: the "
                             "measured code is the same; Ultralytics' stay fresh)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(json.loads(args.child))

    from _machine import cpu_summary
    if args.fork:
        import trainer.data.dataset  # noqa: F401  (imported once, for every forked child)
    from trainer.data.synth import make_synthetic_voc
    from trainer.data.voc import read_annotation_file

    print(f"# {cpu_summary()}", file=sys.stderr)
    print(f"# {args.images} images of {args.image_size[0]}-{args.image_size[1]} px, input {args.size}, mosaic + "
          f"mixup on every sample, batch {args.batch}, {args.workers} workers; {args.repeats} repeats, "
          f"{args.batches} timed batches each", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        synth = make_synthetic_voc(Path(tmp) / "voc", images=args.images, classes=args.classes, seed=0,
                                   image_size=tuple(args.image_size))
        per_epoch = len(read_annotation_file(synth.train_lines_file)) // args.batch
        if args.warmup + args.batches > per_epoch:
            raise SystemExit(f"--warmup + --batches ({args.warmup + args.batches}) must fit in one epoch of "
                             f"{per_epoch} batches: give more --images")
        common = {"lines": str(synth.train_lines_file), "size": args.size, "classes": args.classes,
                  "batch": args.batch, "workers": args.workers, "warmup": args.warmup, "batches": args.batches,
                  "tmp": tmp, "cache_dir": str(Path(tmp) / "image-cache"), "ultralytics_path": args.ultralytics_path}
        configs = [("0.1.0", "none")] + [("ours", c) for c in args.caches]
        if not args.no_ultralytics:
            common["ultralytics_images"] = _yolo_layout(read_annotation_file(synth.train_lines_file),
                                                        Path(tmp) / "yolo")
            probe = _run_child({**common, "kind": "ultralytics", "cache": "none", "batches": 1, "warmup": 0})
            if "skip" in probe:
                print(f"# ultralytics not importable, its comparison skipped ({probe['skip']})", file=sys.stderr)
            else:
                configs += [("ultralytics", "none"), ("ultralytics", "ram")]
        results: dict[tuple[str, str], list[dict]] = {c: [] for c in configs}
        for _ in range(args.repeats):
            for kind, cache in configs:
                results[(kind, cache)].append(_run_child({**common, "kind": kind, "cache": cache},
                                                         fork=args.fork))

    base = statistics.median(r["img_s"] for r in results[("0.1.0", "none")])
    base_cpu = statistics.median(r["img_per_cpu_s"] for r in results[("0.1.0", "none")])
    print(f"{'loader':<12} {'cache':<6} {'img/s':>7} {'range':>13} {'vs 0.1.0':>8}   {'img/CPU-s':>9} {'range':>13} "
          f"{'vs 0.1.0':>8} {'fill s':>7}", file=sys.stderr)
    summary = {"machine": cpu_summary(), "settings": {k: v for k, v in vars(args).items() if k != "child"},
               "results": []}
    for (kind, cache), runs in results.items():
        rates = [r["img_s"] for r in runs]
        per_cpu = [r["img_per_cpu_s"] for r in runs]
        med, med_cpu = statistics.median(rates), statistics.median(per_cpu)
        fill = statistics.median(r["fill_s"] for r in runs)
        print(f"{kind:<12} {cache:<6} {med:>7.1f} {min(rates):>6.1f}-{max(rates):<6.1f} {med / base:>7.2f}x   "
              f"{med_cpu:>9.1f} {min(per_cpu):>6.1f}-{max(per_cpu):<6.1f} {med_cpu / base_cpu:>7.2f}x {fill:>7.2f}",
              file=sys.stderr)
        summary["results"].append({"loader": kind, "cache": cache, "img_s": rates, "img_per_cpu_s": per_cpu,
                                   "median": med, "vs_baseline": med / base, "median_per_cpu": med_cpu,
                                   "vs_baseline_per_cpu": med_cpu / base_cpu, "fill_s": fill})
    print(json.dumps(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
