"""Training-step and inference throughput of YOLOv4-tiny, baseline vs our configuration.

Baseline = the port's way: fp32, NCHW, and a loss whose target assignment and ignore mask
are Python loops over boxes and images on the CPU. Ours = the vectorised ``YoloLoss`` with
channels_last and bf16 autocast (when the CPU has native bf16; fp16 autocast + GradScaler on
CUDA, or bf16 where the GPU supports it). Both run in the same process on the same synthetic
batches, their steps interleaved (A B A B ...), so the ratio holds even on a busy machine;
the absolute numbers need an idle one. The first line names the CPU and whether it has
native bf16 (AVX512-BF16 or AMX): on CPUs without it, ours runs in fp32 (emulated bf16
would be slower) and is about as fast as the baseline; the large CPU speed-up is bf16's.

    python bench/train_step.py                      # CPU: 416 and 320, batch 8; inference b1/b8
    python bench/train_step.py --device cuda        # GPU: batch 64 at 416
    python bench/train_step.py --json results.json  # also write the numbers

A training step is forward + loss + backward + SGD step (momentum 0.937, weight decay).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import cpu_summary  # noqa: E402
from trainer.loss import YoloLoss, bbox_ciou  # noqa: E402
from trainer.distributed import cpu_has_bf16  # noqa: E402
from trainer.model import DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK, YoloV4Tiny  # noqa: E402

NUM_CLASSES = 20


# --------------------------------------------------------------------------- the port-style loss


class PortStyleLoss:
    """The port's algorithm as the port runs it: dense targets built box by box in Python on
    the CPU, an ignore mask built image by image, then the same CIoU/BCE terms."""

    def __init__(self, num_classes: int, input_size: int):
        self.c = num_classes
        self.anchors = torch.tensor(DEFAULT_ANCHORS, dtype=torch.float32)
        self.obj_ratio = 5.0 * input_size ** 2 / 416 ** 2
        self.balance = (0.4, 1.0)

    def __call__(self, outputs, targets):
        total = 0.0
        targets = targets.cpu()
        for l, out in enumerate(outputs):
            out = out.float()
            bsz, _, h, w = out.shape
            stride = 32 if l == 0 else 16
            mask = DEFAULT_ANCHORS_MASK[l]
            p = out.view(bsz, 3, 5 + self.c, h, w).permute(0, 1, 3, 4, 2).contiguous()
            y_true = torch.zeros(bsz, 3, h, w, 5 + self.c)
            noobj = torch.ones(bsz, 3, h, w)
            for row in targets:                               # one box at a time, like the port
                b, c, cx, cy, bw, bh = row.tolist()
                gw, gh = bw * w, bh * h
                best, best_iou = 0, -1.0
                for ai, (aw, ah) in enumerate((self.anchors / stride).tolist()):
                    inter = min(gw, aw) * min(gh, ah)
                    iou = inter / (gw * gh + aw * ah - inter)
                    if iou > best_iou:
                        best, best_iou = ai, iou
                if best not in mask:
                    continue
                k = mask.index(best)
                i, j = min(int(cx * w), w - 1), min(int(cy * h), h - 1)
                noobj[int(b), k, j, i] = 0
                y_true[int(b), k, j, i, :4] = torch.tensor([cx * w, cy * h, gw, gh])
                y_true[int(b), k, j, i, 4] = 1
                y_true[int(b), k, j, i, 5 + int(c)] = 1
            y_true, noobj = y_true.to(out.device), noobj.to(out.device)
            gy, gx = torch.meshgrid(torch.arange(h, device=out.device), torch.arange(w, device=out.device),
                                    indexing="ij")
            anc = (self.anchors[list(mask)] / stride).to(out.device)
            pb = torch.stack([torch.sigmoid(p[..., 0]) + gx, torch.sigmoid(p[..., 1]) + gy,
                              torch.exp(p[..., 2]) * anc[:, 0].view(1, 3, 1, 1),
                              torch.exp(p[..., 3]) * anc[:, 1].view(1, 3, 1, 1)], -1)
            for b in range(bsz):                               # ignore mask image by image
                gts = targets[targets[:, 0] == b][:, 2:6].to(out.device) * torch.tensor([w, h, w, h], device=out.device)
                if len(gts):
                    iou = _iou(pb[b].detach().view(-1, 4), gts).amax(1).view(3, h, w)
                    noobj[b][iou > 0.5] = 0
            pos = y_true[..., 4] == 1
            if pos.any():
                ciou = bbox_ciou(pb[pos], y_true[..., :4][pos])
                total = total + (1 - ciou).mean() * 0.05
                total = total + F.binary_cross_entropy_with_logits(p[..., 5:][pos], y_true[..., 5:][pos]) * self.c / 80
            sel = pos | noobj.bool()
            total = total + F.binary_cross_entropy_with_logits(p[..., 4][sel], pos.float()[sel]) \
                * self.balance[l] * self.obj_ratio
        return total, {}


def _iou(a, b):
    a1, a2 = a[:, None, :2] - a[:, None, 2:] / 2, a[:, None, :2] + a[:, None, 2:] / 2
    b1, b2 = b[None, :, :2] - b[None, :, 2:] / 2, b[None, :, :2] + b[None, :, 2:] / 2
    wh = (torch.min(a2, b2) - torch.max(a1, b1)).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (a[:, None, 2] * a[:, None, 3] + b[None, :, 2] * b[None, :, 3] - inter)


# --------------------------------------------------------------------------- measurement


def _targets(batch: int, per_image: int, gen: torch.Generator) -> torch.Tensor:
    n = batch * per_image
    return torch.cat([
        torch.arange(batch).repeat_interleave(per_image)[:, None].float(),
        torch.randint(0, NUM_CLASSES, (n, 1), generator=gen).float(),
        torch.rand(n, 2, generator=gen) * 0.8 + 0.1,
        torch.rand(n, 2, generator=gen) * 0.5 + 0.03,
    ], 1)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device, amp: str | None):
    if not amp:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


class TrainSetup:
    """One configuration's model, loss, optimizer and two fixed batches; ``step()`` times one
    full training step and returns ``(step seconds, loss seconds)``."""

    def __init__(self, device, size, batch, channels_last, amp, loss_kind, seed=0):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        self.device, self.amp, self.batch = device, amp, batch
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model = YoloV4Tiny(NUM_CLASSES, input_size=size).to(device).train().to(memory_format=fmt)
        self.loss_fn = (YoloLoss(NUM_CLASSES, input_size=size).to(device) if loss_kind == "ours"
                        else PortStyleLoss(NUM_CLASSES, size))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.937,
                                   weight_decay=5e-4, nesterov=True)
        self.scaler = torch.amp.GradScaler(device.type, enabled=(amp == "fp16"))
        self.batches = [(torch.rand(batch, 3, size, size, generator=gen).to(device).contiguous(memory_format=fmt),
                         _targets(batch, 6, gen).to(device)) for _ in range(2)]
        self.calls = 0

    def step(self) -> tuple[float, float]:
        x, t = self.batches[self.calls % 2]
        self.calls += 1
        _sync(self.device)
        t0 = time.perf_counter()
        with _autocast(self.device, self.amp):
            outputs = self.model(x)
        _sync(self.device)
        t1 = time.perf_counter()
        loss, _ = self.loss_fn(outputs, t)      # outside autocast, as the trainer does
        _sync(self.device)
        t2 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        _sync(self.device)
        t3 = time.perf_counter()
        if not math.isfinite(loss.item()):
            raise RuntimeError("non-finite loss in the benchmark")
        return t3 - t0, t2 - t1


class InferSetup:
    """An eval-mode model and a fixed batch; ``step()`` times one forward pass."""

    def __init__(self, device, size, batch, channels_last, amp, seed=0):
        torch.manual_seed(seed)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.device, self.amp, self.batch = device, amp, batch
        self.model = YoloV4Tiny(NUM_CLASSES, input_size=size).to(device).eval().to(memory_format=fmt)
        self.x = torch.rand(batch, 3, size, size).to(device).contiguous(memory_format=fmt)

    def step(self) -> tuple[float, float]:
        with torch.inference_mode():
            _sync(self.device)
            t0 = time.perf_counter()
            with _autocast(self.device, self.amp):
                self.model(self.x)
            _sync(self.device)
        return time.perf_counter() - t0, 0.0


def interleaved(setups, iters, warmup):
    """Run the setups' steps alternately (A B A B ...), so that load from other processes hits
    all of them alike; return per setup ``{"img_s", "step_s", "loss_share"}`` (medians)."""
    times = [[] for _ in setups]
    for it in range(warmup + iters):
        for i, setup in enumerate(setups):
            step, loss = setup.step()
            if it >= warmup:
                times[i].append((step, loss))
    out = []
    for setup, ts in zip(setups, times):
        step = _median([t for t, _ in ts])
        loss = _median([l for _, l in ts])
        out.append({"img_s": setup.batch / step, "step_s": step, "loss_share": loss / step})
    return out


def _median(v):
    v = sorted(v)
    return v[len(v) // 2]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="input sizes (cpu: 416 320; cuda: 416)")
    ap.add_argument("--batch", type=int, default=None, help="training batch (cpu 8, cuda 64)")
    ap.add_argument("--iters", type=int, default=None, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--amp", choices=["auto", "bf16", "fp16", "none"], default="auto",
                    help="autocast dtype of our configuration (auto: bf16 on capable CPUs/GPUs)")
    ap.add_argument("--no-channels-last", action="store_true", help="ours without channels_last")
    ap.add_argument("--skip-infer", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: this machine has no usable CUDA GPU "
                         f"(torch {torch.__version__}); run with --device cpu")
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    gpu = device.type == "cuda"
    if gpu:
        torch.backends.cudnn.benchmark = True
    sizes = args.sizes or ([416] if gpu else [416, 320])
    batch = args.batch or (64 if gpu else 8)
    iters = args.iters or (20 if gpu else 8)
    if args.amp == "auto":
        if gpu:
            amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            amp = "bf16" if cpu_has_bf16() else None
    else:
        amp = None if args.amp == "none" else args.amp
    cl = not args.no_channels_last
    ours_name = "+".join(["vectorised loss"] + (["channels_last"] if cl else []) + ([f"{amp} autocast"] if amp else []))
    env = (f"torch {torch.__version__}, {device}"
           + (f" ({torch.cuda.get_device_name(device)})" if gpu else f", {torch.get_num_threads()} threads, "
              f"native bf16: {cpu_has_bf16()}"))
    print(f"# {cpu_summary()}")
    print(f"# YOLOv4-tiny {NUM_CLASSES} classes, {env}")
    print(f"# baseline: fp32 NCHW + port-style loop loss;  ours: {ours_name}")
    results = {"machine": cpu_summary(), "env": env, "ours": ours_name, "train": [], "infer": []}
    print(f"{'train':>8} {'size':>5} {'batch':>5} {'base img/s':>11} {'ours img/s':>11} {'ratio':>6} "
          f"{'loss% base':>10} {'loss% ours':>10}")
    for size in sizes:
        base, ours = interleaved([TrainSetup(device, size, batch, False, None, "port"),
                                  TrainSetup(device, size, batch, cl, amp, "ours")], iters, args.warmup)
        print(f"{'':>8} {size:>5} {batch:>5} {base['img_s']:>11.2f} {ours['img_s']:>11.2f} "
              f"{ours['img_s'] / base['img_s']:>5.2f}x {100 * base['loss_share']:>9.1f}% "
              f"{100 * ours['loss_share']:>9.1f}%", flush=True)
        results["train"].append({"size": size, "batch": batch, "baseline": base, "ours": ours})
    if not gpu and not amp:
        print("# no native bf16 on this CPU: ours trains in fp32 here; the bf16 speed-up needs AVX512-BF16 or AMX")
    if gpu:
        (fp32_vec,) = interleaved([TrainSetup(device, sizes[0], batch, False, None, "ours")], iters, args.warmup)
        print(f"# (fp32 NCHW with the vectorised loss: {fp32_vec['img_s']:.1f} img/s)")
        results["train_fp32_vectorised"] = fp32_vec
    if not args.skip_infer:
        print(f"{'infer':>8} {'size':>5} {'batch':>5} {'base img/s':>11} {'ours img/s':>11} {'ratio':>6}")
        for ib in ([1, 8] if not gpu else [1, 64]):
            size = sizes[0]
            base, ours = interleaved([InferSetup(device, size, ib, False, None),
                                      InferSetup(device, size, ib, cl, amp)], max(iters, 10), args.warmup)
            print(f"{'':>8} {size:>5} {ib:>5} {base['img_s']:>11.2f} {ours['img_s']:>11.2f} "
                  f"{ours['img_s'] / base['img_s']:>5.2f}x", flush=True)
            results["infer"].append({"size": size, "batch": ib, "baseline": base, "ours": ours})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
