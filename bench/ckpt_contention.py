"""What one checkpoint costs the training steps beside it, measured in one process in blocks
seconds apart (so that other load on a shared machine hits every kind alike).

Training steps of YOLOv4-tiny (bench/train_step.py's, AdamW: a ~94 MB state with the EMA)
run in blocks: a "none" block is ``--steps`` steps; a save block takes the state to CPU,
hands it to a real :class:`trainer.writer.BackgroundWriter` (writing into a temporary run
folder, uploading to the Drive emulator in a process of its own, as bench/ckpt_cost.py's) and
steps until the checkpoint is verified on Drive (a "save" block); every save block sits
between two "none" blocks.

A save's cost = its block's wall - its steps x the step time of the "none" blocks beside it
(+ the snapshot the training thread waited for). Also per block: the process's CPU (user +
sys) and the emulator's.

Usage: ``python bench/ckpt_contention.py [--pairs 6 --steps 4 --size 192 --batch 16]``.
"""
from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from ckpt_cost import _stat  # noqa: E402
from train_step import TrainSetup  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=6, help="save blocks of each kind")
    ap.add_argument("--steps", type=int, default=4, help="steps of a none block (at least, of a save's)")
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--emu-nice", type=int, default=0, help="the emulator's nice value")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # (the finally stops the emulator)
    work = Path(tempfile.mkdtemp(prefix="ckpt-contention-"))
    blocks: list[dict] = []
    os.environ.update(DRIVESTAGE_TOKEN="bench", DRIVESTAGE_STATE_DIR=str(work / "state"))
    dummy = work / "dummy.zip"
    dummy.write_bytes(b"PK\x05\x06" + bytes(18))
    portfile = str(work / "port")
    emu = subprocess.Popen(["nice", "-n", str(args.emu_nice), sys.executable,
                            str(HERE / "ckpt_cost.py"), "--serve", str(work / "drive"),
                            str(dummy), portfile])
    try:
        while not os.path.exists(portfile):
            time.sleep(0.05)
        os.environ["DRIVESTAGE_API_ROOT"] = Path(portfile).read_text()
        return _run(args, work, emu.pid, blocks)
    except SystemExit:
        # A timeout's SIGTERM: what was measured so far (a loaded machine is slow).
        if len(blocks) > 2:
            _report(blocks[:len(blocks) - (blocks[-1]["kind"] != "none")])
        raise
    finally:
        emu.send_signal(signal.SIGTERM)
        emu.wait(30)


def _run(args, work: Path, emu_pid: int, blocks: list[dict]) -> int:
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder
    from trainer.state import Position
    from trainer.writer import BackgroundWriter, SaveJob

    setup = TrainSetup(torch.device("cpu"), args.size, args.batch, True, None, "ours")
    setup.opt = torch.optim.AdamW(setup.model.parameters(), lr=1e-4)
    ema = {k: v.clone() for k, v in setup.model.state_dict().items()}
    for _ in range(3):
        setup.step()   # warm-up (and the optimizer's state exists)
    out = work / "save"
    out.mkdir()
    writers = {"save": BackgroundWriter(str(out), DriveFolder("drive:bench/save", str(out)))}
    plan = ["none"]
    for _ in range(args.pairs):
        plan += ["save", "none", "save", "none"]
    it = 0
    for kind in plan:
        t0, c0, e0 = time.perf_counter(), _cpu(), sum(_stat(f"/proc/{emu_pid}/stat"))
        snap, steps = 0.0, []
        job = None
        if kind != "none":
            it += 1
            state = ckpt.to_cpu({"model": setup.model.state_dict(), "ema": ema,
                                 "optimizer": setup.opt.state_dict(), "epoch": 0,
                                 "iteration": it, "epoch_iteration": it, "config": {},
                                 "format_version": ckpt.FORMAT_VERSION, "run": "bench"})
            job = SaveJob(state, [f"autosave_{it:08d}.pt"], Position(0, it, it))
            writers[kind].submit(job)
            snap = time.perf_counter() - t0
        while len(steps) < args.steps or (job is not None and not job.done.is_set()):
            s0 = time.perf_counter()
            setup.step()
            steps.append(time.perf_counter() - s0)
        if job is not None and not job.written:
            sys.exit(f"the checkpoint was not written: {job.error}")
        blocks.append({"kind": kind, "wall": time.perf_counter() - t0, "snap": snap,
                       "steps": steps, "cpu": _cpu() - c0,
                       "emu": sum(_stat(f"/proc/{emu_pid}/stat")) - e0,
                       "load": os.getloadavg()[0]})
    for w in writers.values():
        w.close()
    _report(blocks)
    return 0


def _report(blocks: list[dict]) -> None:
    cost: dict[str, list] = {"save": []}
    for i, b in enumerate(blocks):
        if b["kind"] == "none":
            continue
        near = [s for nb in (blocks[i - 1], blocks[i + 1]) for s in nb["steps"]]
        step = statistics.median(near)
        excess = b["wall"] - len(b["steps"]) * step
        none_cpu = statistics.mean(nb["cpu"] / sum(nb["steps"]) for nb in (blocks[i - 1], blocks[i + 1]))
        extra_cpu = b["cpu"] - none_cpu * sum(b["steps"])
        cost[b["kind"]].append((excess, b["snap"], extra_cpu, b["emu"], len(b["steps"]) * step))
        print(f"{b['kind']:<6} {len(b['steps'])} steps in {b['wall']:5.2f} s (step beside "
              f"{step:.3f} s): cost {excess:5.2f} s (snapshot {b['snap']:.2f} s), process CPU "
              f"+{extra_cpu:5.2f} s, emulator {b['emu']:.2f} s, load {b['load']:.1f}", flush=True)
    for kind, rows in cost.items():
        if rows:
            ex = [r[0] for r in rows]
            print(f"{kind}: cost per checkpoint median {statistics.median(ex):.2f} s "
                  f"(mean {statistics.mean(ex):.2f}, {min(ex):.2f}..{max(ex):.2f}); snapshot "
                  f"{statistics.median(r[1] for r in rows):.2f} s; process CPU beyond the steps "
                  f"{statistics.median(r[2] for r in rows):.2f} s; emulator "
                  f"{statistics.median(r[3] for r in rows):.2f} s; over {len(rows)} saves")


if __name__ == "__main__":
    sys.exit(main())
