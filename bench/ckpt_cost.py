"""What a checkpoint costs the training: the same iterations with and without autosaves, in
alternate rounds of one run, with the CPU each part of the machine spent.

Each round starts ``trainer train`` (the demo config, synthetic data staged once, the local
Drive emulator in a process of its own) with ``train.save_minutes`` 0 ("off") or
``--save-minutes`` ("on": a 94 MB checkpoint written and uploaded in the background every
15 s by default), times ``--iterations`` iterations after ``--warmup`` ones, then SIGKILLs it.
Per round it reports:

* wall: the seconds between the log lines of the first and the last timed iteration;
* the trainer's CPU (user/sys) over that window, by thread: the training thread, torch's
  intra-op threads, the writer (``trainer-writer``), the uploader (``trainer-upload``), the rest,
  and threads that ended within the window ("ended": an upload's md5 thread);
* the emulator's CPU over the same window (on Colab Drive is remote: that CPU is not the
  machine's) and an estimate of the wall without it (its CPU-seconds over the cores, taken
  off the round's wall: a bound for a machine the two processes kept busy);
* the training thread's time blocked per checkpoint (its ``training blocked`` lines);
* the load average at the round's start and end (the machine may be shared).

Threads are named for /proc by the child's wrapper (``--child``: ``threading.Thread``'s
name set as the OS thread's via prctl), which then runs ``python -m trainer``.

``--variant LABEL=PATH`` adds rounds of the "on" kind run from another source tree (an A/B
of a change: ``--variant base=/work/wt/base``); ``--set KEY=VALUE`` is passed to every round;
``--env KEY=VALUE`` too, as an environment variable.

Usage: ``python bench/ckpt_cost.py [--rounds 3 --iterations 20 --save-minutes 0.25]``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
ITER = re.compile(r"iter \d+/\d+ \(iteration (\d+)\)")
BLOCKED = re.compile(r"checkpoint (\S+) at .*: training blocked ([\d.]+) s")
WROTE = re.compile(r"wrote (\S+) in ([\d.]+) s")
TICK = os.sysconf("SC_CLK_TCK")
CORES = len(os.sched_getaffinity(0))


def _stat(path: str) -> tuple[float, float]:
    """(user, sys) CPU-seconds from a /proc .../stat file; zeros once it is gone."""
    try:
        with open(path) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def _threads(pid: int) -> dict[int, tuple[str, float, float]]:
    """tid -> (group, user, sys) of every thread of ``pid`` now."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in map(int, tids):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as fh:
                comm = fh.read().strip()
        except OSError:
            continue
        if tid == pid:
            group = "training"
        elif comm.startswith("trainer-writer") or comm.startswith("trainer-stop"):
            group = "writer"
        elif comm.startswith("trainer-upload"):
            group = "uploader"
        elif comm.startswith("python") or comm.startswith("pt_"):
            group = "torch"         # unnamed: torch's OpenMP / intra-op threads
        else:
            group = "other"
        out[tid] = (group, *_stat(f"/proc/{pid}/task/{tid}/stat"))
    return out


def _sample(pid: int, emu: int) -> dict:
    return {"t": time.monotonic(), "proc": _stat(f"/proc/{pid}/stat"), "threads": _threads(pid),
            "emu": _stat(f"/proc/{emu}/stat"), "load": os.getloadavg()[0]}


def _delta(a: dict, b: dict) -> dict:
    groups: dict[str, float] = {}
    for tid, (group, u, s) in b["threads"].items():
        u0, s0 = a["threads"].get(tid, (group, 0.0, 0.0))[1:]
        groups[group] = groups.get(group, 0.0) + (u - u0) + (s - s0)
    # Threads that ended in the window (each upload's md5 thread, drivestage-md5: ~0.11 CPU-s
    # per 94 MB) are in the process's total alone.
    groups["ended"] = sum(b["proc"]) - sum(a["proc"]) - sum(groups.values())
    return {"wall": b["t"] - a["t"], "user": b["proc"][0] - a["proc"][0],
            "sys": b["proc"][1] - a["proc"][1], "emu": sum(b["emu"]) - sum(a["emu"]),
            "groups": groups, "load": (a["load"], b["load"])}


def _round(cmd: list[str], env: dict, emu_pid: int, warmup: int, iterations: int) -> dict:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: dict[int, dict] = {}
    blocked, wrote, lines = [], [], []
    first, last = warmup, warmup + iterations
    try:
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            lines.append(line)
            m = ITER.search(line)
            if m and int(m.group(1)) in (first, last):
                samples[int(m.group(1))] = _sample(proc.pid, emu_pid)
                if int(m.group(1)) == last:
                    break
            if (m := BLOCKED.search(line)) and first in samples:
                blocked.append(float(m.group(2)))
            if (m := WROTE.search(line)) and first in samples:
                wrote.append(float(m.group(2)))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    if last not in samples:
        sys.exit("the trainer ended before the timed iterations:\n" + "\n".join(lines[-20:]))
    out = _delta(samples[first], samples[last])
    out.update(blocked=blocked, wrote=wrote)
    return out


def _serve(data_dir: str, zpath: str, portfile: str) -> None:
    """The emulator child: serve until SIGTERM; its URL in ``portfile`` once it answers."""
    from drivestage.emulator import Emulator

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Emulator(data_dir=data_dir, token="bench") as emu:
        emu.add_file("VOC_datasets/synth.zip", zpath)
        Path(portfile + ".tmp").write_text(emu.url)
        os.replace(portfile + ".tmp", portfile)
        stop.wait()


def _child(argv: list[str]) -> None:
    """``python -m trainer ARGV`` with every Python thread's name given to its OS thread."""
    import ctypes
    import runpy
    import threading as th

    libc = ctypes.CDLL(None)
    inner = th.Thread._bootstrap_inner

    def named(self):   # PR_SET_NAME (15): the name /proc/<pid>/task/<tid>/comm shows
        libc.prctl(15, self.name.encode()[:15], 0, 0, 0)
        inner(self)
    th.Thread._bootstrap_inner = named
    sys.argv = ["trainer", *argv]
    runpy.run_module("trainer", run_name="__main__", alter_sys=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each kind, alternated")
    ap.add_argument("--iterations", type=int, default=240, help="timed iterations per round "
                    "(on a quiet 2-core machine about 45 s: three checkpoints or so)")
    ap.add_argument("--warmup", type=int, default=5, help="iterations before the timing starts")
    ap.add_argument("--save-minutes", type=float, default=0.25, help="train.save_minutes when on")
    ap.add_argument("--images", type=int, default=0,
                    help="synthetic images (default: enough that no epoch ends in a round)")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE for every round")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE in every round's env")
    ap.add_argument("--variant", action="append", default=[],
                    help="LABEL=TREE: 'on' rounds run from another source tree too")
    ap.add_argument("--only-on", action="store_true", help="no 'off' rounds (variants A/B)")
    ap.add_argument("--json", help="write every round's numbers here")
    args = ap.parse_args(argv)
    # A timeout's SIGTERM ends the run through the finally below (the emulator and the
    # trainer of the round under way go too).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # An epoch's end saves last.pt (and evaluates) in both kinds of round: none in the window.
    # (About 60 % of the images are in the training split; 16 a step.)
    args.images = args.images or int((args.warmup + args.iterations + 20) * 16 / 0.55)
    work = Path(tempfile.mkdtemp(prefix="ckpt-cost-"))
    env = dict(os.environ, PYTHONUNBUFFERED="1", DRIVESTAGE_TOKEN="bench",
               DRIVESTAGE_STATE_DIR=str(work / "state"))
    env.update(dict(kv.split("=", 1) for kv in args.env))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    subprocess.run([PY, "-m", "trainer", "synth-data", str(work / "synth"), "--images",
                    str(args.images), "--classes", "4", "--zip"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    portfile = str(work / "port")
    emu = subprocess.Popen([PY, __file__, "--serve", str(work / "drive"),
                            str(next((work / "synth").rglob("*.zip"))), portfile], env=env)
    rows: list[dict] = []
    try:
        while not os.path.exists(portfile):
            if emu.poll() is not None:
                sys.exit("the emulator did not start")
            time.sleep(0.05)
        env["DRIVESTAGE_API_ROOT"] = Path(portfile).read_text()
        base = ["-v", "train", "--config", str(REPO / "configs" / "demo.yaml"),
                "--set", "data.drive_zip=drive:VOC_datasets/synth.zip",
                "--set", f"data.root={work / 'data'}", "--set", "train.epochs=100",
                "--set", "train.eval_period=100", "--resume", "none"]
        for kv in args.set:
            base += ["--set", kv]
        kinds = ([] if args.only_on else [("off", 0.0, str(REPO))]) + \
            [("on", args.save_minutes, str(REPO))] + \
            [(label, args.save_minutes, tree) for label, tree in
             (v.split("=", 1) for v in args.variant)]
        print(f"{CORES} cores; load average {os.getloadavg()[0]:.2f} at the start", flush=True)
        for rep in range(args.rounds):
            order = kinds if rep % 2 == 0 else kinds[::-1]    # ABBA: drift cancels
            for label, minutes, tree in order:
                name = f"{label}-{rep}"
                cmd = [PY, __file__, "--child", *base,
                       "--set", f"train.out_dir={work / name}",
                       "--set", f"train.save_minutes={minutes}",
                       "--set", f"drive.logs=drive:bench/{name}"]
                renv = dict(env, PYTHONPATH=os.pathsep.join([tree, env["PYTHONPATH"]]))
                row = _round(cmd, renv, emu.pid, args.warmup, args.iterations)
                row.update(label=label, rep=rep)
                rows.append(row)
                _print_row(row)
    finally:
        emu.send_signal(signal.SIGTERM)
        emu.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    _summary(rows, args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def _print_row(r: dict) -> None:
    g = r["groups"]
    print(f"{r['label']:<6} wall {r['wall']:6.1f} s  cpu {r['user']:6.1f} u {r['sys']:5.1f} s  "
          f"[train {g.get('training', 0):5.1f} torch {g.get('torch', 0):5.1f} writer "
          f"{g.get('writer', 0):4.1f} upload {g.get('uploader', 0):4.1f} other "
          f"{g.get('other', 0):4.1f} ended {g.get('ended', 0):4.1f}]  emulator {r['emu']:5.1f}  saves {len(r['blocked'])} "
          f"blocked {sum(r['blocked']):.2f} s  writes {' '.join(f'{w:.1f}' for w in r['wrote'])} s"
          f"  load {r['load'][0]:.1f}->{r['load'][1]:.1f}", flush=True)


def _summary(rows: list[dict], args) -> None:
    labels = list(dict.fromkeys(r["label"] for r in rows))
    med = {lab: {k: statistics.median(f(r) for r in rows if r["label"] == lab) for k, f in (
        ("wall", lambda r: r["wall"]), ("cpu", lambda r: r["user"] + r["sys"]),
        ("emu", lambda r: r["emu"]), ("noemu", lambda r: r["wall"] - r["emu"] / CORES),
        ("blocked", lambda r: sum(r["blocked"])))} for lab in labels}
    print(f"\nmedians of {args.rounds} rounds, {args.iterations} iterations each "
          f"(save_minutes {args.save_minutes:g} when on):")
    ref = med.get("off")
    for lab in labels:
        m = med[lab]
        ratio = "" if ref is None else (
            f"  wall {m['wall'] / ref['wall']:.3f}x, without the emulator's CPU "
            f"~{m['noemu'] / ref['noemu']:.3f}x, trainer CPU {m['cpu'] / ref['cpu']:.3f}x, "
            f"trainer+emulator CPU {(m['cpu'] + m['emu']) / (ref['cpu'] + ref['emu']):.3f}x")
        print(f"{lab:<6} wall {m['wall']:.1f} s, trainer CPU {m['cpu']:.1f} s, emulator "
              f"{m['emu']:.1f} s, blocked {m['blocked']:.2f} s{ratio}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        _serve(*sys.argv[2:5])
    elif sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
    else:
        sys.exit(main())
