"""A/B of two source trees' per-member CPU in an extraction worker: what
``drivestage.extract.worker.write_order`` (each worker process's work for one member) costs,
without the download, the parent or process start-up around it.

Builds (or reuses) a zip like ``bench/pull.py``'s (half stored "JPEGs", half deflated XMLs),
then, alternating the trees every round (ABBA...), runs a fresh child per tree that loads
the worker's modules as a worker does (without the package's ``__init__``), writes every
member into a fresh folder under ``--out`` (a RAM folder by default: no file-system noise
from other work on the disk) and reports its own user and sys seconds for the member loop
(``getrusage``), and how many ``pread`` calls it made (counted through a wrapper).

    python bench/member_writes.py --a /tmp/main --b . --size-mib 256 --members 5000

Prints each tree's median user / sys seconds, the ratios B/A of the medians and of each
round's pair, and the reads per member.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from pull import build_zip  # noqa: E402

_CHILD = r"""
import json, os, resource, shutil, sys, types, zipfile
tree, zpath, out = sys.argv[1:4]
sys.path.insert(0, tree)
import drivestage
pkg = types.ModuleType("drivestage.extract")   # as a worker loads it (workers.CHILD)
pkg.__path__ = [os.path.join(tree, "drivestage", "extract")]
sys.modules["drivestage.extract"] = pkg
from drivestage.extract.worker import stat_fields, write_order
from drivestage.extract.copying import Progress, TempDir
infos = [i for i in zipfile.ZipFile(zpath).infolist() if not i.is_dir()]
shutil.rmtree(out, ignore_errors=True)
for d in sorted({os.path.dirname(i.filename) for i in infos}):
    os.makedirs(os.path.join(out, d), exist_ok=True)
orders = [(k, i.filename, 0o644, 1.7e9, i.file_size, i.header_offset, i.compress_size,
           i.compress_type, i.CRC, -1) for k, i in enumerate(infos)]
afd = os.open(zpath, os.O_RDONLY)
tmp = TempDir(os.open(out, os.O_RDONLY | os.O_DIRECTORY), out)
parent = os.getppid()
watch = Progress(lambda n: os.getppid() != parent)   # a worker's orphan check
reads = [0]
pread = os.pread
def counted(fd, n, pos):
    reads[0] += 1
    return pread(fd, n, pos)
os.pread = counted
r0 = resource.getrusage(resource.RUSAGE_SELF)
for o in orders:
    stat_fields(write_order(afd, tmp, o, "bench.zip", watch).written)
r1 = resource.getrusage(resource.RUSAGE_SELF)
shutil.rmtree(out, ignore_errors=True)
print(json.dumps({"user": r1.ru_utime - r0.ru_utime, "sys": r1.ru_stime - r0.ru_stime,
                  "members": len(orders), "reads": reads[0]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--a", required=True, help="tree A (a checkout of drivestage)")
    ap.add_argument("--b", required=True, help="tree B")
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--members", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "pull_ab"),
                    help="where the zip is built (bench/pull_ab.py's by default)")
    ap.add_argument("--out", default="/dev/shm/member_writes" if os.path.isdir("/dev/shm")
                    else os.path.join(tempfile.gettempdir(), "member_writes"),
                    help="where members are written (removed after each round)")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    zpath = os.path.join(args.workdir, f"ab-{args.size_mib}m-{args.members}.zip")
    if not os.path.exists(zpath):
        build_zip(zpath, args.size_mib << 20, args.members)
    trees = {"A": os.path.abspath(args.a), "B": os.path.abspath(args.b)}
    got: dict[str, list[dict]] = {"A": [], "B": []}
    for r in range(args.rounds):
        for name in (("A", "B") if r % 2 == 0 else ("B", "A")):
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            out = subprocess.run([sys.executable, "-c", _CHILD, trees[name], zpath, args.out],
                                 capture_output=True, text=True, env=env)
            if out.returncode != 0:
                raise SystemExit(f"{trees[name]}: failed:\n{out.stderr[-2000:]}")
            one = json.loads(out.stdout)
            got[name].append(one)
            print(f"round {r} {name}: user {one['user']:.3f} s, sys {one['sys']:.3f} s, "
                  f"{one['reads'] / one['members']:.2f} reads a member", flush=True)
    print(f"\n{args.rounds} rounds, {args.size_mib} MiB / {args.members} members, "
          f"{platform.processor() or platform.machine()}, load {os.getloadavg()[0]:.1f}")
    for key in ("user", "sys"):
        med = {n: statistics.median(x[key] for x in v) for n, v in got.items()}
        pairs = sorted(b[key] / a[key] for a, b in zip(got["A"], got["B"]) if a[key])
        print(f"{key:4}: A {med['A']:.3f}  B {med['B']:.3f}  B/A {med['B'] / med['A']:.3f}  "
              f"(pairs {', '.join(f'{p:.2f}' for p in pairs)})")
    for n in ("A", "B"):
        print(f"reads a member, {n}: {got[n][0]['reads'] / got[n][0]['members']:.2f}")


if __name__ == "__main__":
    main()
