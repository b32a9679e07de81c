"""A timeline of one ``drivestage pull --extract`` of a zip: what each thread does when.

Serves a zip built like ``bench/pull.py``'s (the project's emulator, in this process, as
``bench/pull.py`` does) and runs the pull in a child with hooks that record, every
``--tick`` seconds: the bytes arrived (contiguous prefix and in all), the bytes hashed, the
members' bytes handed to the extraction workers and answered by them, and the CPU seconds
of each thread of the child (by name) and of each worker process (``/proc``). The hooks
wrap calls made once per batch or per block, never per member.

    python bench/pull_timeline.py --size-mib 512 [--tree PATH] [--json FILE] [--perf FILE]

Prints one row per ``--bucket`` seconds (default 0.1): MB arrived / hashed / handed to the
workers / written by them so far, and the CPU each group of threads used in the bucket
(main, fetch, hash, extraction threads, workers), with ``idle`` = 2 cores x bucket - that
CPU (on a machine shared with other work, idle for us, not for the machine). Then the
totals; when each phase began and ended (metadata, the tail fetch, the member list read and
checked, download(), the extraction's end, the merge); how many MB arrived while the member
list was read; the extraction's first and last batch; how long the extraction threads
waited for bytes; the cyclic collector's runs (when, how long, in which thread); and the
CPU of the child with its workers and of the server (this process). ``--tree`` runs another
checkout (an A/B: alternate two trees, ``git worktree add --detach /tmp/base main``).
``--ttfb S``: every request waits S seconds first (Drive's way, as in ``bench/pull.py``).
``--perf FILE`` records the child under ``perf record -g``. Knobs for experiments (the
child's environment): ``TIMELINE_SWITCH`` (a switch interval, seconds), ``TIMELINE_NICE``
(the workers' nice value), ``TIMELINE_PROFILE`` (cProfile the main thread into that file).
"""
from __future__ import annotations

import argparse
import compileall
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

_CHILD = r'''
import json, os, sys, threading, time
T0 = time.monotonic()
tree, out = sys.argv.pop(1), sys.argv.pop(1)
tick = float(sys.argv.pop(1))
sys.path.insert(0, tree)
TICKS = os.sysconf("SC_CLK_TCK")
if os.environ.get("TIMELINE_SWITCH"):
    sys.setswitchinterval(float(os.environ["TIMELINE_SWITCH"]))
from drivestage import streams, download
if os.environ.get("TIMELINE_GIL_SWITCH"):   # drivestage.gil's interval, for experiments
    import drivestage.gil
    drivestage.gil.SWITCH = float(os.environ["TIMELINE_GIL_SWITCH"])
from drivestage.extract import workers, shares, overlapped
rec = {"events": [], "samples": []}
state = {"pass": None, "sent": 0, "answered": 0, "workers": []}
lock = threading.Lock()
def ev(name, **kw):
    with lock:
        rec["events"].append((time.monotonic() - T0, threading.current_thread().name, name, kw))
orig_init = streams.Pass.__init__
def pass_init(self, *a, **k):
    orig_init(self, *a, **k)
    state["pass"] = self
streams.Pass.__init__ = pass_init
orig_write = streams.Pass.write
writes = [0, 0]
def pass_write(self, piece, offset, data):
    writes[0] += 1
    writes[1] += len(data)
    return orig_write(self, piece, offset, data)
streams.Pass.write = pass_write
rec["writes"] = writes
orig_sent = shares.Share.sent
def sent(self, batch):
    state["sent"] += sum(o[6] for o in batch)
    ev("sent", start=batch[0][5], bound=batch[-1][9], files=len(batch))
    return orig_sent(self, batch)
shares.Share.sent = sent
orig_apply = workers.apply_answer
def apply_answer(answer, batch, *a, **k):
    state["answered"] += sum(o[6] for o in batch)
    ev("answered", start=batch[0][5], files=len(batch))
    return orig_apply(answer, batch, *a, **k)
workers.apply_answer = apply_answer
orig_start = workers._Worker.start.__func__
def wstart(cls, *a, **k):
    w = orig_start(cls, *a, **k)
    if w is not None:
        state["workers"].append(w.pid)
        if os.environ.get("TIMELINE_NICE"):
            os.setpriority(os.PRIO_PROCESS, w.pid, int(os.environ["TIMELINE_NICE"]))
        ev("worker", pid=w.pid)
    return w
workers._Worker.start = classmethod(wstart)
def wrap(owner, name, label):
    f = getattr(owner, name)
    def w(*a, **k):
        t = time.monotonic() - T0
        try:
            return f(*a, **k)
        finally:
            ev(label, began=t)
    setattr(owner, name, w)
wrap(download.Download, "run", "download.run")
wrap(download.Download, "wait_for", "wait_for")
wrap(download.Download, "first_here", "first_here")
wrap(overlapped.Overlapped, "finish", "finish")
wrap(overlapped.Overlapped, "zip", "overlapped.zip")
import importlib
for mod, attr, label in [("drivestage.remote", "open_store", "open_store"),
                         ("drivestage.download", "Download.fetch_first", "fetch_first"),
                         ("drivestage.download", "Download.__init__", "Download()"),
                         ("drivestage.extract.members", "zip_directory", "zip_directory"),
                         ("drivestage.extract.job", "Job.check", "Job.check"),
                         ("drivestage.extract.job", "Job.finish", "Job.finish"),
                         ("drivestage.extract.records", "record_members", "record_members"),
                         ("drivestage.extract.merging", "merge", "merge"),
                         ("drivestage.unpack", "Unpacking.extract", "Unpacking.extract"),
                         ("drivestage.stage_extraction", "Extraction.__call__", "Extraction()")]:
    try:
        owner = importlib.import_module(mod)
        parts = attr.split(".")
        for x in parts[:-1]:
            owner = getattr(owner, x)
        old = getattr(owner, parts[-1])
        wrap(owner, parts[-1], label)
        new = getattr(owner, parts[-1])
        for mname, m in list(sys.modules.items()):
            if mname.startswith("drivestage") and m is not None:
                for k, v in list(vars(m).items()):
                    if v is old:
                        setattr(m, k, new)
    except Exception as exc:
        print("no hook", mod, attr, exc, file=sys.stderr)
def cpu_of(path):
    try:
        with open(path) as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / TICKS
    except OSError:
        return None
def sample():
    names = {t.native_id: t.name for t in threading.enumerate()}
    cpu = {}
    for tid in os.listdir("/proc/self/task"):
        c = cpu_of(f"/proc/self/task/{tid}/stat")
        if c is not None:
            name = names.get(int(tid), "?")
            if int(tid) == os.getpid():
                name = "main"
            cpu[name] = cpu.get(name, 0) + c
    for pid in state["workers"]:
        c = cpu_of(f"/proc/{pid}/stat")
        if c is not None:
            cpu[f"worker"] = cpu.get("worker", 0) + c
    p = state["pass"]
    arrived = hashed = total = 0
    if p is not None:
        try:
            arrived, total, hashed = p.done.prefix(), p.done.total(), p.hashed
        except Exception:
            pass
    rec["samples"].append((time.monotonic() - T0, arrived, total, hashed, state["sent"],
                           state["answered"], cpu))
import gc
gcs = []
def gccb(phase, info):
    if phase == "start":
        gcs.append([time.monotonic(), info["generation"], threading.current_thread().name,
                    time.monotonic() - T0])
    else:
        gcs[-1][0] = time.monotonic() - gcs[-1][0]
        gcs[-1].append(info["collected"])
gc.callbacks.append(gccb)
rec["gc"] = gcs
stop = threading.Event()
def sampler():
    while not stop.wait(tick):
        sample()
threading.Thread(target=sampler, name="sampler", daemon=True).start()
sys.argv[0] = "drivestage"
from drivestage.entry import main
try:
    ev("main")
    if os.environ.get("TIMELINE_PROFILE"):
        import cProfile
        prof = cProfile.Profile()
        try:
            prof.runcall(main)
        finally:
            prof.dump_stats(os.environ["TIMELINE_PROFILE"])
    else:
        main()
except SystemExit as e:
    rc = e.code
finally:
    ev("end")
    rec["alive"] = [(t.name, t.daemon) for t in threading.enumerate()]
    import atexit
    rec["atexit"] = atexit._ncallbacks()
    sample()
    stop.set()
    r = os.times()
    rec["cpu_self"] = r.user + r.system + r.children_user + r.children_system
    with open(out, "w") as fh:
        json.dump(rec, fh)
    if os.environ.get("TIMELINE_FREEZE"):   # the interpreter's last collection skips it all
        gc.freeze()
    if os.environ.get("TIMELINE_FASTEXIT"):   # how long the interpreter's own end takes
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(0)
'''


def _group(name: str) -> str:
    for prefix, g in (("drivestage-fetch", "fetch"), ("drivestage-hash", "hash"),
                      ("drivestage-extract", "xthreads"), ("worker", "workers"),
                      ("main", "main"), ("sampler", "sampler")):
        if name.startswith(prefix):
            return g
    return "other"


GROUPS = ["main", "fetch", "hash", "xthreads", "workers", "other", "sampler"]


def summarize(rec: dict, bucket: float, cores: int = 2) -> str:
    samples = rec["samples"]
    lines = []
    hdr = f"{'t':>5} {'arrMB':>6} {'hashMB':>6} {'sentMB':>6} {'doneMB':>6} " + \
        " ".join(f"{g[:7]:>7}" for g in GROUPS) + f" {'idle':>5}"
    lines.append(hdr)
    prev_cpu: dict[str, float] = {}
    totals = {g: 0.0 for g in GROUPS}
    idle_total = 0.0
    next_t = bucket
    acc = {g: 0.0 for g in GROUPS}
    last_t = 0.0
    mb = 1e6
    for t, arrived, total, hashed, sent, answered, cpu in samples:
        for name, c in cpu.items():
            d = c - prev_cpu.get(name, 0.0)
            prev_cpu[name] = c
            acc[_group(name)] += d
        if t >= next_t or (t, arrived) == (samples[-1][0], samples[-1][1]):
            span = t - last_t
            used = sum(v for k, v in acc.items() if k != "sampler")
            idle = max(0.0, cores * span - used)
            idle_total += idle
            lines.append(f"{t:5.2f} {arrived / mb:6.0f} {hashed / mb:6.0f} {sent / mb:6.0f} "
                         f"{answered / mb:6.0f} " +
                         " ".join(f"{acc[g]:7.2f}" for g in GROUPS) + f" {idle:5.2f}")
            for g in GROUPS:
                totals[g] += acc[g]
                acc[g] = 0.0
            last_t = t
            next_t = t + bucket
    lines.append("total " + " ".join(f"{g}={totals[g]:.2f}" for g in GROUPS) +
                 f" idle={idle_total:.2f} wall={samples[-1][0]:.2f}")
    evs = rec["events"]
    for t, thread, n, kw in sorted(evs, key=lambda e: e[3].get("began", e[0])):
        if n not in ("wait_for", "first_here", "sent", "answered"):
            lines.append(f"  {n:18} {kw.get('began', t):6.3f} -> {t:6.3f}  [{thread}]")
    for t, _th, n, kw in evs:
        if n == "overlapped.zip":
            def at(x: float) -> float:
                return max([s[1] for s in samples if s[0] <= x] or [0])
            got = at(t) - at(kw["began"])
            lines.append(f"  during the member list ({t - kw['began']:.3f} s): "
                         f"{got / 1e6:.0f} MB arrived, {got / 1e6 / max(t - kw['began'], 1e-9):.0f} MB/s")
    for name in ("sent", "answered"):
        ts = [t for t, _th, n, _kw in evs if n == name]
        if ts:
            lines.append(f"  {name:18} first {min(ts):6.3f} last {max(ts):6.3f} ({len(ts)})")
    waits: dict[str, list[float]] = {}
    for t, thread, n, kw in evs:
        if n in ("wait_for", "first_here"):
            waits.setdefault(f"{n}@{thread}", []).append(t - kw["began"])
    for k, v in sorted(waits.items()):
        lines.append(f"  waits {k}: {len(v)} calls, {sum(v):.3f} s")
    w = rec.get("writes", [0, 0])
    lines.append(f"  Pass.write: {w[0]} calls, {w[1] / max(w[0], 1) / 1024:.0f} KiB each")
    gcs = rec.get("gc", [])
    for g in (0, 1, 2):
        mine = [x for x in gcs if x[1] == g]
        lines.append(f"  gc gen{g}: {len(mine)} collections, {sum(x[0] for x in mine):.3f} s: " +
                     ", ".join(f"{x[3]:.2f}+{x[0]*1000:.0f}ms@{x[2][:20]}" for x in mine))
    return "\n".join(lines)


def main() -> None:
    sys.path.insert(0, ROOT)
    sys.path.insert(0, HERE)
    from pull import build_zip
    from _disk import Retired

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--members", type=int, default=20_000)
    ap.add_argument("--tree", action="append", default=[],
                    help="a drivestage tree to run (default: this one); given twice or more, "
                         "the trees alternate in each round (an A/B)")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "pull_timeline"))
    ap.add_argument("--tick", type=float, default=0.02)
    ap.add_argument("--bucket", type=float, default=0.1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--ttfb", type=float, default=0.0,
                    help="every request waits this many seconds before its answer (Drive's "
                         "way: bench/pull.py's --ttfb)")
    ap.add_argument("--json", help="save the raw timeline here")
    ap.add_argument("--perf", help="run the child under `perf record -g -o PERF`")
    ap.add_argument("extra", nargs="*", help="more pull arguments (after --)")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    trees = [os.path.abspath(t) for t in args.tree] or [ROOT]
    zpath = os.path.join(args.workdir, f"voc-{args.size_mib}-{args.members}.zip")
    if not os.path.exists(zpath):
        build_zip(zpath, args.size_mib << 20, args.members)
    # Extracted trees are renamed aside while the runs go on, and deleted only at the end:
    # on ext4 without a journal a deletion slows every file created in the next minutes
    # (bench/_disk.py). So compare trees within one invocation (--tree A --tree B).
    scratch = tempfile.mkdtemp(prefix="run-", dir=args.workdir)
    retire = Retired(os.path.join(scratch, "retired"))
    try:
        _runs(args, trees, zpath, scratch, retire)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _runs(args: argparse.Namespace, trees: list[str], zpath: str, scratch: str,
          retire) -> None:
    from drivestage.emulator import Emulator

    with Emulator(data_dir=os.path.join(scratch, "drive")) as emu:
        fid = emu.add_file("bench/VOC.zip", zpath)
        if args.ttfb > 0:
            emu.faults.latency(args.ttfb)
        env = dict(os.environ, DRIVESTAGE_API_ROOT=emu.url, DRIVESTAGE_TOKEN="bench")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("PYTHONPATH", None)
        for tree in trees:
            compileall.compile_dir(os.path.join(tree, "drivestage"), quiet=1)
        kids_before = sum(os.times()[2:4])
        results: dict[str, list[dict]] = {t: [] for t in trees}
        for _round, tree in itertools.product(range(args.repeat), trees):
            print(f"== {tree}")
            dest = os.path.join(scratch, "out")
            retire(dest)
            out = os.path.join(scratch, "timeline.json")
            began = time.monotonic()
            server_cpu = sum(os.times()[:2])
            pre = ["perf", "record", "-q", "-F", "1999", "-g", "-o", args.perf, "--"] \
                if args.perf else []
            if os.environ.get("TIMELINE_STRACE"):
                pre = ["strace", "-f", "-tt", "-o", os.environ["TIMELINE_STRACE"]]
            proc = subprocess.run([*pre, sys.executable, "-c", _CHILD, tree,
                                   out, str(args.tick), "pull", f"drive:id:{fid}", dest,
                                   "--extract", "-q", *args.extra], env=env,
                                  capture_output=True, text=True)
            wall = time.monotonic() - began
            server_cpu = sum(os.times()[:2]) - server_cpu
            if proc.returncode != 0:
                sys.exit(f"pull failed: {proc.stderr[-2000:]}")
            with open(out) as fh:
                rec = json.load(fh)
            print(summarize(rec, args.bucket))
            kids = os.times()
            print("alive at the end:", rec.get("alive"), "atexit:", rec.get("atexit"))
            kids_now = sum(os.times()[2:4])
            ended = max(t for t, _th, n, _kw in rec["events"] if n == "end")
            print(f"after the command's end: {wall - ended:.2f} s (interpreter start before it too), "
                  f"{kids_now - kids_before - rec['cpu_self']:.3f} CPU-s")
            print(f"process wall {wall:.2f} s; CPU: child+workers {rec['cpu_self']:.2f} s "
                  f"(children's own {kids[2] + kids[3] - kids_before:.2f}), server (the emulator, "
                  f"this process) {server_cpu:.2f} s; load {os.getloadavg()[0]:.2f}")
            results[tree].append(_key_numbers(rec, wall, kids_now - kids_before))
            kids_before = kids[2] + kids[3]
            if args.json:
                shutil.copy(out, args.json)
            retire(dest)
    print(f"medians of {args.repeat} run(s) per tree, the trees alternating:")
    for tree, runs in results.items():
        print(f"  {tree}: " + ", ".join(
            f"{k} {statistics.median(r[k] for r in runs):.3f}" for k in runs[0]))


def _key_numbers(rec: dict, wall: float, cpu: float) -> dict:
    """What an A/B compares: wall and CPU seconds, when download() ended, MB/s arrived
    while the member list was read, CPU seconds after the command's end."""
    evs = rec["events"]
    got = {"wall_s": wall, "cpu_s": cpu}
    got["download_end_s"] = max((t for t, _th, n, _kw in evs if n == "download.run"),
                                default=0.0)
    for t, _th, n, kw in evs:
        if n == "overlapped.zip":
            at = [s[1] for s in rec["samples"] if kw["began"] <= s[0] <= t]
            got["list_MBps"] = (max(at, default=0) - min(at, default=0)) / 1e6 / \
                max(t - kw["began"], 1e-9)
    got["after_end_cpu_s"] = cpu - rec["cpu_self"]
    return got


if __name__ == "__main__":
    main()
