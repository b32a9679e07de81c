"""What a vanished machine costs: SIGKILLs and SIGTERMs at random moments, each followed by a
resume from Drive alone.

On the demo config (synthetic data, CPU) with enough images that an epoch takes a minute or
more, against the local Drive emulator:

* ``--kills`` trials: start ``trainer train --resume auto`` in an EMPTY run folder (a fresh
  runtime: only Drive has the state), SIGKILL it at a random moment (some right after a
  checkpoint was written, i.e. during its upload; some during an evaluation);
* ``--terms`` trials: the same with SIGTERM (the preemption notice): the run must save,
  upload and verify a checkpoint within ``train.grace_seconds`` and exit 143;
* then the training time each interruption cost: the seconds of training between the
  iteration the next run resumed at and the moment of the signal (work done again), the
  time from a restart to its first resumed iteration, and the share of wall time the training
  thread spent blocked on checkpoints, with and without ``save_minutes`` (two short runs of
  the same iterations, alternately).

Goals (issue 11): SIGKILL loss <= save_minutes + one iteration; SIGTERM loss <= one
iteration and every SIGTERM save verified on Drive within the grace period; checkpoint
overhead <= 2 % of wall time; <= 0.5 s blocked per checkpoint.

Usage: ``python bench/survival.py [--kills 3 --terms 3 --images 1200 --save-minutes 1]``.
Times on a shared machine are noisy; the script prints what it measured per trial.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PY = sys.executable
ITER = re.compile(r"epoch (\d+)/\d+ iter (\d+)/(\d+) \(iteration (\d+)\)")
RESUMED = re.compile(r"resumed from (\S+) at epoch (\d+), iteration (\d+)")
BLOCKED = re.compile(r"checkpoint (\S+) at .*: training blocked ([\d.]+) s")
WROTE = re.compile(r"wrote (autosave_\d+\.pt)")
STOPPED = re.compile(r"stopped by SIGTERM at epoch \d+, iteration (\d+): (\S+) is saved and verified "
                     r"on \S+ \(([\d.]+) s after the signal\)")


@dataclass
class Trial:
    """One run of ``trainer train`` until it was interrupted (or finished)."""

    kind: str                       # "kill" or "term"
    moment: str                     # "random", "upload", "evaluation"
    started: float = 0.0
    first_iteration_at: float | None = None
    resumed_iteration: int | None = None
    iter_done: dict = field(default_factory=dict)     # iteration -> time it completed
    blocked: list = field(default_factory=list)
    blocked_at: list = field(default_factory=list)
    signalled_at: float | None = None
    exited_at: float | None = None
    returncode: int | None = None
    lines: list = field(default_factory=list)
    verified: bool = False
    saved_iteration: int | None = None


def _reader(proc: subprocess.Popen, trial: Trial, events: dict) -> None:
    for raw in proc.stderr:
        now = time.monotonic()
        line = raw.decode(errors="replace").rstrip()
        trial.lines.append(line)
        m = ITER.search(line)
        if m:
            it = int(m.group(4))
            trial.iter_done[it] = now
            if trial.first_iteration_at is None:
                trial.first_iteration_at = now
            if m.group(2) == m.group(3):
                events["epoch_end"].set()            # the epoch's last step: evaluation follows
        m = RESUMED.search(line)
        if m:
            trial.resumed_iteration = int(m.group(3))
        m = BLOCKED.search(line)
        if m:
            trial.blocked.append(float(m.group(2)))
            trial.blocked_at.append(now)
        if WROTE.search(line):
            events["wrote"].set()                    # an autosave was written: its upload runs
        m = STOPPED.search(line)
        if m:
            trial.verified, trial.saved_iteration = True, int(m.group(1))


def _run_trial(cmd: list[str], env: dict, trial: Trial, delay: float) -> None:
    trial.started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    events = {"epoch_end": threading.Event(), "wrote": threading.Event()}
    reader = threading.Thread(target=_reader, args=(proc, trial, events), daemon=True)
    reader.start()
    sig = signal.SIGKILL if trial.kind == "kill" else signal.SIGTERM
    # Wait for training to run `delay` seconds, then for the moment the trial aims at.
    while proc.poll() is None and (trial.first_iteration_at is None
                                   or time.monotonic() - trial.first_iteration_at < delay):
        time.sleep(0.05)
    if trial.moment != "random":
        event = events["wrote" if trial.moment == "upload" else "epoch_end"]
        event.clear()
        while proc.poll() is None and not event.wait(0.05):
            pass
    if proc.poll() is None:
        trial.signalled_at = time.monotonic()
        proc.send_signal(sig)
    proc.wait()
    trial.exited_at = time.monotonic()
    trial.returncode = proc.returncode
    reader.join(10)


def _lost(trial: Trial, resumed_at: int) -> float:
    """Seconds of this trial's training that the next run had to do again."""
    if trial.signalled_at is None:
        return 0.0
    done = [t for it, t in trial.iter_done.items() if it <= resumed_at]
    start = max(done) if done else (trial.first_iteration_at or trial.signalled_at)
    # Iterations completed after the signal (the stop save's own) cost nothing.
    return max(0.0, trial.signalled_at - start)


def _setup(work: Path, images: int, env: dict):
    from drivestage.emulator import Emulator

    emu = Emulator(data_dir=str(work / "drive"), token="bench").start()
    env.update({"DRIVESTAGE_API_ROOT": emu.url, "DRIVESTAGE_TOKEN": "bench",
                "DRIVESTAGE_STATE_DIR": str(work / "state"), "PYTHONUNBUFFERED": "1"})
    subprocess.run([PY, "-m", "trainer", "synth-data", str(work / "synth"), "--images", str(images),
                    "--classes", "4", "--zip"], env=env, check=True, stdout=subprocess.DEVNULL)
    emu.add_file("VOC_datasets/synth.zip", str(next((work / "synth").rglob("*.zip"))))
    return emu


def _overhead(base: list[str], env: dict, work: Path, iterations: int, save_minutes: float) -> dict:
    """Wall time of the same iterations with and without time checkpoints, run alternately."""
    out = {"off": [], "on": [], "blocked": [], "blocked_off": [], "saves": 0}
    for rep in range(2):
        for label, minutes in (("off", 0), ("on", save_minutes)):
            folder = work / f"overhead-{label}-{rep}"
            cmd = base + ["--set", f"train.out_dir={folder}", "--set", f"train.save_minutes={minutes}",
                          "--set", f"drive.logs=drive:bench/overhead-{label}-{rep}", "--resume", "none"]
            trial = Trial("none", "none")
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            events = {"epoch_end": threading.Event(), "wrote": threading.Event()}
            reader = threading.Thread(target=_reader, args=(proc, trial, events), daemon=True)
            reader.start()
            while proc.poll() is None and len(trial.iter_done) < iterations:
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            reader.join(10)
            its = sorted(trial.iter_done)[:iterations]
            out[label].append(trial.iter_done[its[-1]] - trial.iter_done[its[0]])
            span = trial.iter_done[its[-1]]
            blocked = [b for b, at in zip(trial.blocked, trial.blocked_at) if at <= span]
            if label == "on":
                out["blocked"].extend(blocked)
                out["saves"] += len(blocked)
            else:
                out["blocked_off"].extend(blocked)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=3, help="SIGKILL trials")
    ap.add_argument("--terms", type=int, default=3, help="SIGTERM trials")
    ap.add_argument("--images", type=int, default=1200, help="synthetic images (epoch length)")
    ap.add_argument("--save-minutes", type=float, default=1.0, help="train.save_minutes")
    ap.add_argument("--min-delay", type=float, default=20.0, help="earliest signal, s of training")
    ap.add_argument("--max-delay", type=float, default=150.0, help="latest signal, s of training")
    ap.add_argument("--overhead-iterations", type=int, default=60,
                    help="iterations timed with and without save_minutes (0: skip)")
    ap.add_argument("--overhead-save-minutes", type=float, default=0.25,
                    help="train.save_minutes of the timed runs (short: several checkpoints)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="trainer-survival-"))
    env = dict(os.environ)
    emu = _setup(work, args.images, env)
    base = [PY, "-m", "trainer", "-v", "train", "--config", str(REPO / "configs" / "demo.yaml"),
            "--set", "data.drive_zip=drive:VOC_datasets/synth.zip",
            "--set", f"data.root={work / 'data'}",  # staged once: restarts measure the trainer
            "--set", "train.epochs=100", "--set", "train.eval_period=1"]
    trials: list[Trial] = []
    moments = ["random", "upload", "evaluation"]
    plan = [("kill", moments[i % 3]) for i in range(args.kills)] + \
           [("term", moments[i % 3]) for i in range(args.terms)]
    try:
        for n, (kind, moment) in enumerate(plan):
            trial = Trial(kind, moment)
            cmd = base + ["--set", f"train.out_dir={work / f'runtime{n}'}",
                          "--set", "drive.logs=drive:bench/run",
                          "--set", f"train.save_minutes={args.save_minutes}", "--resume", "auto"]
            delay = rng.uniform(args.min_delay, args.max_delay)
            _run_trial(cmd, env, trial, delay)
            trials.append(trial)
            print(f"trial {n + 1}/{len(plan)}: {kind} ({moment}) after {delay:.0f} s of training; "
                  f"exit {trial.returncode}; resumed at iteration {trial.resumed_iteration}",
                  flush=True)
        # The last interruption's loss is known once a run resumes after it.
        final = Trial("resume", "none")
        cmd = base + ["--set", f"train.out_dir={work / 'runtime-last'}", "--set", "drive.logs=drive:bench/run",
                      "--set", f"train.save_minutes={args.save_minutes}", "--resume", "auto"]
        _run_trial(cmd, env, final, 0.0)
        overhead = (_overhead(base, env, work, args.overhead_iterations, args.overhead_save_minutes)
                    if args.overhead_iterations else None)
    finally:
        emu.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    _report(trials, [*trials[1:], final], args, overhead)
    return 0


def _report(trials: list[Trial], nexts: list[Trial], args, overhead) -> None:
    rows = []
    for trial, nxt in zip(trials, nexts):
        resumed = nxt.resumed_iteration or 0
        restart = (nxt.first_iteration_at - nxt.started) if nxt.first_iteration_at else float("nan")
        steps = sorted(trial.iter_done.values())
        per_iter = statistics.median([b - a for a, b in zip(steps, steps[1:])]) if len(steps) > 1 else 0
        wall = (trial.signalled_at or trial.exited_at) - (trial.first_iteration_at or trial.started)
        rows.append({"kind": trial.kind, "moment": trial.moment, "lost_s": _lost(trial, resumed),
                     "restart_s": restart, "iteration_s": per_iter,
                     "blocked_share": sum(trial.blocked) / max(wall, 1e-9),
                     "blocked_max_s": max(trial.blocked, default=0.0),
                     "exit": trial.returncode,
                     "grace_ok": trial.kind != "term" or (trial.verified and trial.returncode == 143
                                                          and trial.exited_at - trial.signalled_at
                                                          <= 25),
                     "stop_to_exit_s": (trial.exited_at - trial.signalled_at) if trial.signalled_at else None})
    print()
    print(f"{'kind':<5} {'moment':<11} {'lost s':>7} {'restart s':>10} {'iter s':>7} "
          f"{'blocked %':>10} {'max blocked s':>14} {'exit':>5} {'signal->exit s':>15}")
    for r in rows:
        print(f"{r['kind']:<5} {r['moment']:<11} {r['lost_s']:>7.1f} {r['restart_s']:>10.1f} "
              f"{r['iteration_s']:>7.2f} {100 * r['blocked_share']:>10.3f} {r['blocked_max_s']:>14.3f} "
              f"{r['exit']:>5} {r['stop_to_exit_s'] or 0:>15.1f}")
    for kind, goal in (("kill", args.save_minutes * 60), ("term", 0.0)):
        lost = [r["lost_s"] for r in rows if r["kind"] == kind]
        if lost:
            it = statistics.median(r["iteration_s"] for r in rows if r["kind"] == kind)
            print(f"{kind}: training lost per interruption median {statistics.median(lost):.1f} s, "
                  f"max {max(lost):.1f} s (goal <= {goal:.0f} s + one iteration of {it:.2f} s)")
    restarts = [r["restart_s"] for r in rows]
    print(f"restart to the first resumed iteration: median {statistics.median(restarts):.1f} s, "
          f"max {max(restarts):.1f} s")
    terms = [r for r in rows if r["kind"] == "term"]
    if terms:
        print(f"SIGTERM saves verified on Drive within train.grace_seconds (25 s): "
              f"{sum(r['grace_ok'] for r in terms)}/{len(terms)}")
    if overhead:
        off, on = statistics.median(overhead["off"]), statistics.median(overhead["on"])
        runs = len(overhead["on"])
        print(f"{args.overhead_iterations} iterations (median of {runs} alternate runs each): "
              f"{off:.1f} s with save_minutes=0, {on:.1f} s with save_minutes="
              f"{args.overhead_save_minutes:g} (ratio {on / off:.3f}); blocked on checkpoints: "
              f"{100 * sum(overhead['blocked_off']) / max(sum(overhead['off']), 1e-9):.3f} % of wall "
              f"time without, {100 * sum(overhead['blocked']) / max(sum(overhead['on']), 1e-9):.3f} % with "
              f"({overhead['saves']} checkpoints, at most {max(overhead['blocked'], default=0):.3f} s each)")
    print(json.dumps(rows))


if __name__ == "__main__":
    sys.exit(main())
