"""The rerun of a folder pull whose archives are all staged, against the rerun of a single
staged archive, in one invocation: Drive requests, wall and CPU seconds.

The emulated Drive holds ``F/`` with ``--archives`` small zips (``s000.zip`` …, each holding
``ds/x``, which they all share, and a member of its own) and ``one/a.zip``. Each is pulled
once with ``-x`` into a fresh DEST; then the two reruns alternate ``--reruns`` times
(folder, single, folder, …), each ``drivestage pull … -x --json`` a fresh interpreter (the
way a notebook cell runs it). The goal (README's performance table): the folder's rerun,
like a single archive's, sends one metadata request and takes under a second. With
``--other TREE`` the folder rerun of that source tree (e.g. ``main``'s, checked out with
``git worktree add --detach``) runs in the same rounds too, into its own DEST.

    python bench/folder_rerun.py                    # 500 archives, 5 reruns each
    python bench/folder_rerun.py --archives 100 --other /tmp/main-tree

Prints each rerun's seconds (wall / CPU of the process), requests and actions, the medians
and the ratio folder / single. Every rerun must say ``cached`` for every file, import no
torch and download nothing, else the benchmark stops.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from bench._machine import _cpuinfo  # noqa: E402
from drivestage.emulator import Emulator  # noqa: E402

# A child: the tree first on sys.path; says at its end whether torch was imported.
_RUN = """
import sys
sys.path.insert(0, sys.argv.pop(1))
sys.argv[0] = "drivestage"
try:
    from drivestage.entry import main
    main()
finally:
    sys.stderr.write("torch-imported %d\\n" % ("torch" in sys.modules))
"""


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _run(tree: str, env: dict[str, str], emu: Emulator, src: str, dest: str,
         first: bool = False) -> tuple[float, float, int, dict[str, int]]:
    """(wall seconds, CPU seconds, Drive requests, actions) of one ``pull SRC DEST -x``."""
    before, cpu_before = len(emu.requests), _cpu_of_children()
    began = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", _RUN, tree, "pull", src, dest, "-x", "-q",
                              "--json"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    out, err = child.communicate()
    wall = time.monotonic() - began
    cpu = _cpu_of_children() - cpu_before
    if child.returncode != 0:
        sys.exit(f"{tree}: pull {src} failed ({child.returncode}): {err[-2000:]}")
    if "torch-imported 1" in err:
        sys.exit(f"{tree}: pull {src} imported torch")
    result = json.loads(out)
    actions = result["actions"] if result.get("folder") else {result["action"]: 1}
    if not first and (set(actions) != {"cached"} or result.get("fetched")):
        sys.exit(f"{tree}: the rerun of {src} was no cache hit: {actions}")
    return wall, cpu, len(emu.requests) - before, actions


def _cpu_of_children() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archives", type=int, default=500, help="zips in F (500)")
    ap.add_argument("--reruns", type=int, default=5, help="reruns of each (5)")
    ap.add_argument("--other", help="another source tree whose folder rerun runs too")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="drivestage-bench-rerun-")
    trees = {"folder": ROOT, "single": ROOT}
    if args.other:
        trees["other"] = os.path.abspath(args.other)
    srcs = {"folder": "drive:F", "single": "drive:one/a.zip", "other": "drive:F"}
    times: dict[str, list[tuple[float, float, int]]] = {k: [] for k in trees}
    try:
        with Emulator(data_dir=os.path.join(work, "drive")) as emu:
            for i in range(args.archives):
                emu.add_file(f"F/s{i:03d}.zip", _zip({"ds/x": b"v%d" % i, f"ds/own{i}": b"o"}))
            emu.add_file("one/a.zip", _zip({"ds/x": b"v", "ds/own": b"o"}))
            env = dict(os.environ, DRIVESTAGE_API_ROOT=emu.url, DRIVESTAGE_TOKEN="bench",
                       DRIVESTAGE_STATE_DIR=os.path.join(work, "state"))
            env.pop("PYTHONPATH", None)
            dests = {k: os.path.join(work, "dest-" + k) for k in trees}
            for k in trees:
                _run(trees[k], env, emu, srcs[k], dests[k], first=True)
            for _ in range(args.reruns):
                for k in trees:
                    wall, cpu, requests, _actions = _run(trees[k], env, emu, srcs[k],
                                                         dests[k])
                    times[k].append((wall, cpu, requests))
            with open(os.path.join(dests["folder"], "F", "ds", "x"), "rb") as f:
                assert f.read() == b"v%d" % (args.archives - 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{_cpuinfo()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"rerun of pull -x: F/ ({args.archives} staged zips sharing ds/x) vs one/a.zip, "
          f"{args.reruns} each, alternating")
    med = {}
    for k in trees:
        runs = ", ".join(f"{w:.2f}/{c:.2f} s {q} req" for w, c, q in times[k])
        med[k] = (statistics.median(w for w, _c, _q in times[k]),
                  statistics.median(c for _w, c, _q in times[k]))
        requests = sorted({q for _w, _c, q in times[k]})
        print(f"{k:6} ({trees[k]} {srcs[k]}): wall/CPU {runs}; median {med[k][0]:.2f} s "
              f"wall, {med[k][1]:.2f} s CPU; requests {requests}")
    print(f"folder / single: {med['folder'][0] / med['single'][0]:.2f}x wall, "
          f"{med['folder'][1] / med['single'][1]:.2f}x CPU")
    if "other" in med:
        print(f"other / folder: {med['other'][0] / med['folder'][0]:.2f}x wall, "
              f"{med['other'][1] / med['folder'][1]:.2f}x CPU")


if __name__ == "__main__":
    main()
