"""A/B of a folder pull's rerun where every archive shares a path (``ds/x``): the stamps a
rerun reads, the Drive requests it sends and its wall time, this tree against another
(default: ``main``, checked out for the run with ``git worktree add --detach``).

Each archive's rerun asks what the other archives' stamps record (which one holds
``ds/x``); read once per archive, that was n² stamp reads (stampcache36). Each tree pulls
the same emulated Drive folder of ``--archives`` small zips (``s000.zip`` … each holding
``ds/x`` and a member of its own) into a fresh DEST with ``-x``, then reruns it
``--reruns`` times, the trees alternating (ABAB…), each command a fresh interpreter that
counts the stamp files it opens (``open_own`` of a ``*.json`` in a state folder).

    python bench/pull_overlap.py --archives 500
    python bench/pull_overlap.py --archives 100 --other /tmp/some-tree

Prints, per tree: the first pull's seconds and stamp reads, each rerun's seconds, stamp
reads and Drive requests, and the ratio of the reruns' medians (other / this).
"""
from __future__ import annotations

import argparse
import io
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

from drivestage.emulator import Emulator  # noqa: E402

# A child: the tree first on sys.path; statedir.open_own counted before anything binds it.
_RUN = """
import sys, os
sys.path.insert(0, sys.argv.pop(1))
from drivestage.extract import statedir
opened = [0]
real = statedir.open_own
def open_own(name, *a, **k):
    if name.endswith(".json"):
        opened[0] += 1
    return real(name, *a, **k)
statedir.open_own = open_own
sys.argv[0] = "drivestage"
try:
    from drivestage.entry import main
    main()
finally:
    sys.stderr.write("stamp-reads %d\\n" % opened[0])
"""


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _run(tree: str, env: dict[str, str], emu: Emulator, dest: str) -> tuple[float, int, int]:
    """(seconds, stamp files opened, Drive requests) of one ``pull drive:F DEST -x``."""
    before = len(emu.requests)
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-c", _RUN, tree, "pull", "drive:F", dest, "-x",
                           "-q"], env=env, capture_output=True, text=True)
    seconds = time.monotonic() - began
    if done.returncode != 0:
        sys.exit(f"{tree}: pull failed ({done.returncode}): {done.stderr[-2000:]}")
    reads = next(int(line.split()[1]) for line in done.stderr.splitlines()
                 if line.startswith("stamp-reads "))
    return seconds, reads, len(emu.requests) - before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archives", type=int, default=500, help="zips in the folder (500)")
    ap.add_argument("--reruns", type=int, default=3, help="reruns per tree (3)")
    ap.add_argument("--other", help="the tree to compare with (default: main's, checked out)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="drivestage-bench-overlap-")
    other = args.other
    if other is None:
        other = os.path.join(work, "main")
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "-q", "--detach", other, "main"],
                       check=True)
    trees = {"this": ROOT, "other": os.path.abspath(other)}
    try:
        with Emulator(data_dir=os.path.join(work, "drive")) as emu:
            for i in range(args.archives):
                emu.add_file(f"F/s{i:03d}.zip", _zip({"ds/x": b"v%d" % i,
                                                      f"ds/own{i}": b"o"}))
            env = dict(os.environ, DRIVESTAGE_API_ROOT=emu.url, DRIVESTAGE_TOKEN="bench",
                       PYTHONDONTWRITEBYTECODE="1")
            env.pop("PYTHONPATH", None)
            dests = {k: os.path.join(work, "dest-" + k) for k in trees}
            first = {k: _run(trees[k], env, emu, dests[k]) for k in trees}
            reruns: dict[str, list[tuple[float, int, int]]] = {k: [] for k in trees}
            for _ in range(args.reruns):
                for k in trees:
                    reruns[k].append(_run(trees[k], env, emu, dests[k]))
            for k in trees:
                with open(os.path.join(dests[k], "F", "ds", "x"), "rb") as f:
                    assert f.read() == b"v%d" % (args.archives - 1), k
    finally:
        if args.other is None:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", other])
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.archives} archives sharing ds/x, pull -x, then {args.reruns} reruns")
    for k in trees:
        s, r, q = first[k]
        runs = ", ".join(f"{s:.2f} s/{r} reads/{q} req" for s, r, q in reruns[k])
        print(f"{k:5} ({trees[k]}): first {s:.2f} s, {r} stamp reads; reruns: {runs}")
    mine = statistics.median(s for s, _r, _q in reruns["this"])
    theirs = statistics.median(s for s, _r, _q in reruns["other"])
    print(f"rerun median: this {mine:.2f} s, other {theirs:.2f} s -> other/this "
          f"{theirs / mine:.1f}x")


if __name__ == "__main__":
    main()
