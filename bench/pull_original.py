"""Benchmark: bytes read by ``pull -x`` of a local archive (``pull /kaggle/input/x/voc.zip
./data -x``), this tree against an older drivestage, in one run.

Builds a stored zip (default 200 MiB, 400 incompressible members) in a folder standing for
Kaggle's read-only input, then alternates, round after round:

* ``baseline``: ``python -m zipfile -e`` of the archive (one read: what extracting costs);
* ``old``: ``drivestage pull ZIP DEST -x -q`` from the tree of ``--old`` (a git ref;
  default: main before original25, which read the original once to hash it and once to
  extract it; ``--old 4d548e8``: before stage23, which hashed it twice besides);
* ``new``: the same command from this tree;

each a first pull into a fresh DEST, then its rerun (``already staged``). Each command runs
in a child that reports its own ``rchar`` from /proc/self/io as it ends (every byte read,
its reaped extraction workers' too; the page cache's bytes count, so a warm cache does not
hide a read), and wall seconds. Ratios are against the same run's old and baseline, never
against a number from another day. On Kaggle's input the bytes read are the cost (a 20 GB
archive read three times went through the input's mount three times). ``--bindfs`` reads
the archive through a FUSE mount of its folder (``bindfs``, which needs /dev/fuse and the
right to mount): every read then goes through a FUSE daemon, as on a FUSE or network mount.

    python bench/pull_original.py [--size-mib 200] [--repeat 2] [--old REF] [--bindfs]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
#: main just before original25 (the original read twice on a first pull: hashed, then
#: extracted). Before stage23, ``4d548e8``: three times, and once on a rerun.
OLD = "b6f643f"

#: Runs drivestage's CLI (``sys.argv[2:]``) from the tree ``sys.argv[1]`` in this process,
#: then writes this process's rchar (reaped children included) to the descriptor $BENCH_FD.
_CHILD = r"""
import os, runpy, sys
sys.path.insert(0, sys.argv[1])
sys.argv = ["drivestage"] + sys.argv[2:]
code = 0
try:
    runpy.run_module("drivestage", run_name="__main__")
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
with open("/proc/self/io") as fh:
    rchar = dict(line.split(": ") for line in fh.read().splitlines())["rchar"]
os.write(int(os.environ["BENCH_FD"]), rchar.encode())
sys.exit(code)
"""


def build_zip(path: str, size_mib: int, members: int) -> None:
    each = size_mib * (1 << 20) // members
    with zipfile.ZipFile(path, "w") as zf:  # stored: JPEG-like members do not compress
        for i in range(members):
            zf.writestr(f"ds/img/{i:05d}.jpg", os.urandom(each))


def tree_of(ref: str, where: str) -> str:
    """``ref``'s drivestage package, exported into ``where`` (git archive)."""
    os.makedirs(where)
    archive = subprocess.run(["git", "-C", ROOT, "archive", ref, "drivestage"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", where], input=archive, check=True)
    return where


def measured(cmd: list[str], env: dict[str, str]) -> tuple[float, int, int]:
    """(wall seconds, rchar, exit code) of ``cmd``, whose rchar comes through the pipe
    $BENCH_FD (the baseline reports it the same way)."""
    r, w = os.pipe()
    began = time.monotonic()
    proc = subprocess.Popen(cmd, env=dict(env, BENCH_FD=str(w)), pass_fds=(w,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(w)
    err = proc.communicate()[1]
    seconds = time.monotonic() - began
    with os.fdopen(r, "rb") as fh:
        got = fh.read()
    if proc.returncode or not got:
        sys.exit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}): {err.decode()[-2000:]}")
    return seconds, int(got), proc.returncode


_BASELINE = r"""
import os, sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
with open("/proc/self/io") as fh:
    os.write(int(os.environ["BENCH_FD"]),
             dict(l.split(": ") for l in fh.read().splitlines())["rchar"].encode())
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=200, help="size of the zip (MiB)")
    ap.add_argument("--members", type=int, default=400, help="members of the zip")
    ap.add_argument("--repeat", type=int, default=2, help="rounds (old, new, baseline each)")
    ap.add_argument("--old", default=OLD, help="git ref of the drivestage to compare with")
    ap.add_argument("--bindfs", action="store_true",
                    help="read the archive through a FUSE mount of its folder (bindfs)")
    args = ap.parse_args()
    if not os.path.exists("/proc/self/io"):
        sys.exit("needs /proc/self/io (Linux) to count bytes read")
    work = tempfile.mkdtemp(prefix="bench-original-")
    mounted = ""
    try:
        inputs = os.path.join(work, "input")
        os.makedirs(inputs)
        archive = os.path.join(inputs, "voc.zip")
        build_zip(archive, args.size_mib, args.members)
        size = os.path.getsize(archive)
        if args.bindfs:
            mounted = os.path.join(work, "mnt")
            os.makedirs(mounted)
            subprocess.run(["bindfs", inputs, mounted], check=True)
            archive = os.path.join(mounted, "voc.zip")
        trees = {"old": tree_of(args.old, os.path.join(work, "old")), "new": ROOT}
        env = dict(os.environ, PYTHONPATH="")
        rows: dict[str, list[tuple[float, float]]] = {}
        for rnd in range(args.repeat):
            for label in ("baseline", "old", "new"):
                dest = os.path.join(work, f"dest-{label}-{rnd}")
                if label == "baseline":
                    s, n, _ = measured([sys.executable, "-c", _BASELINE, archive, dest], env)
                    rows.setdefault("baseline", []).append((s, n / size))
                    continue
                env_run = dict(env, DRIVESTAGE_STATE_DIR=os.path.join(work, f"state-{label}"))
                cmd = [sys.executable, "-c", _CHILD, trees[label], "pull", archive, dest,
                       "-x", "-q"]
                s, n, _ = measured(cmd, env_run)
                rows.setdefault(f"{label} first", []).append((s, n / size))
                s, n, _ = measured(cmd, env_run)
                rows.setdefault(f"{label} rerun", []).append((s, n / size))
                shutil.rmtree(dest)
            shutil.rmtree(os.path.join(work, f"dest-baseline-{rnd}"))
        print(f"archive: {size / (1 << 20):.0f} MiB, {args.members} members"
              f"{' read through bindfs (FUSE)' if mounted else ''}; old = {args.old}; "
              f"{args.repeat} round(s), best shown (range)")
        print(f"{'':16}{'read (x size)':>16}{'seconds':>22}")
        for label, got in rows.items():
            reads = [r for _, r in got]
            secs = [s for s, _ in got]
            print(f"{label:16}{min(reads):>10.2f} ({min(reads):.2f}-{max(reads):.2f})"
                  f"{min(secs):>10.2f} ({min(secs):.2f}-{max(secs):.2f})")

        def best(label: str, i: int) -> float:
            return min(row[i] for row in rows[label])
        print(f"first pull, new vs old: read {best('new first', 1) / best('old first', 1):.2f}x,"
              f" time {best('new first', 0) / best('old first', 0):.2f}x")
        print(f"first pull vs baseline (extraction alone): old read "
              f"{best('old first', 1) / best('baseline', 1):.2f}x, new read "
              f"{best('new first', 1) / best('baseline', 1):.2f}x; time old "
              f"{best('old first', 0) / best('baseline', 0):.2f}x, new "
              f"{best('new first', 0) / best('baseline', 0):.2f}x")
        print(f"rerun, new vs old: read {best('new rerun', 1):.3f}x vs "
              f"{best('old rerun', 1):.3f}x the archive; time "
              f"{best('new rerun', 0) / best('old rerun', 0):.2f}x")
    finally:
        if mounted:
            subprocess.run(["fusermount", "-u", mounted], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
