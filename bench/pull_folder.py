"""Benchmark: `drivestage pull` of a Drive folder against fetching its files one by one.

Serves a folder tree (default 400 files of 64 KiB-1 MiB in 8 subfolders, plus two 64 MiB
archives) from the Drive emulator over a Drive-like link: every request waits ``--latency``
seconds before its answer starts (Drive's time to first byte), and every connection is held
to ``--link`` MB/s. Then times, in one run:

* baseline: ``curl`` each file's media URL in turn (what a copy loop over the folder, or
  ``cp -r`` off a Drive mount, does), no verification;
* ``drivestage pull drive:F DEST`` (md5-verified, small files in parallel, large files in
  ranged streams);
* the rerun on the intact copy (one listing per folder, nothing downloaded).

Quick check: ``python bench/pull_folder.py --files 80 --big 0``.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from drivestage.emulator import Emulator  # noqa: E402

MiB = 1024 * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=400, help="small files (default 400)")
    ap.add_argument("--big", type=int, default=2, help="64 MiB archives (default 2)")
    ap.add_argument("--latency", type=float, default=0.05,
                    help="seconds before each answer starts (default 0.05)")
    ap.add_argument("--link", type=float, default=100.0,
                    help="MB/s per connection (default 100)")
    args = ap.parse_args()
    rng = random.Random(0)
    work = tempfile.mkdtemp(prefix="drivestage-bench-folder-")
    try:
        with Emulator(data_dir=os.path.join(work, "drive")) as emu:
            total = 0
            urls = []
            for i in range(args.files):
                data = rng.randbytes(rng.randint(64 * 1024, MiB))
                fid = emu.add_file(f"F/part{i % 8}/img{i:05d}.jpg", data)
                urls.append(f"{emu.url}drive/v2/files/{fid}?alt=media")
                total += len(data)
            for i in range(args.big):
                data = rng.randbytes(64 * MiB)
                fid = emu.add_file(f"F/archive{i}.bin", data)
                urls.append(f"{emu.url}drive/v2/files/{fid}?alt=media")
                total += len(data)
            emu.faults.latency(args.latency)
            emu.faults.throttle(per_connection=args.link * 1e6)
            env = dict(os.environ, DRIVESTAGE_API_ROOT=emu.url, DRIVESTAGE_TOKEN="bench")

            out = os.path.join(work, "curl")
            os.makedirs(out)
            began = time.monotonic()
            for n, url in enumerate(urls):
                subprocess.run(["curl", "-sS", "-f", "-H", "Authorization: Bearer bench", "-o",
                                os.path.join(out, str(n)), url], check=True)
            t_curl = time.monotonic() - began
            shutil.rmtree(out)

            dest = os.path.join(work, "pull")
            cmd = [sys.executable, "-m", "drivestage", "pull", "drive:F", dest, "-q"]
            began = time.monotonic()
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
            t_pull = time.monotonic() - began
            began = time.monotonic()
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
            t_rerun = time.monotonic() - began
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = args.files + args.big
    print(f"folder: {n} files, {total / MiB:.0f} MiB; link {args.link:g} MB/s per connection, "
          f"{args.latency * 1000:.0f} ms to first byte")
    print(f"curl, file after file (no verification): {t_curl:.2f} s")
    print(f"drivestage pull of the folder:           {t_pull:.2f} s -> "
          f"{t_curl / t_pull:.2f}x the loop's throughput, every file md5-verified")
    print(f"rerun on the intact copy:                {t_rerun:.2f} s")


if __name__ == "__main__":
    main()
