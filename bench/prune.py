"""Benchmark a big prune against Drive's per-request latency: one request per check and per
delete (the baseline, as before session 23) against checks and deletes in batches of 100
(session 24), in one run on the same emulator.

A folder of ``--files`` checkpoints (tiny: bytes do not matter here) is pruned to the newest
with ``drivestage prune --keep-last 1`` (the CLI in this process); the emulator answers every
request ``--latency`` seconds late (a call in a batch: the batch waits for its slowest call,
as Drive serves them side by side). The baseline is the same code with the batches switched
off in this process: ``DriveStore.delete_many`` the base class's (one ``delete`` each, which
reads its item alone first). Rounds alternate the two; the best of each is reported, with the
round trips and the calls Drive counts (a batch's calls count, so the quota units do not
change). Usage::

    python bench/prune.py [--files 500] [--latency 0.02] [--rounds 2] [--json FILE]

Measured: see the README's performance table (the prune row).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from click.testing import CliRunner  # noqa: E402

from drivestage.cli import cli  # noqa: E402
from drivestage.drive.store import DriveStore  # noqa: E402
from drivestage.emulator import Emulator  # noqa: E402
from drivestage.store import RemoteStore  # noqa: E402


#: The ways a prune is run: whether a pass's deletions go in batches.
MODES = {"one request per check and delete": False, "batched checks and deletes": True}


@contextlib.contextmanager
def _mode(batched: bool) -> Iterator[None]:
    """The batches of this mode only (else: the base class's one request each)."""
    saved = DriveStore.delete_many
    if not batched:
        DriveStore.delete_many = RemoteStore.delete_many  # type: ignore[method-assign]
    try:
        yield
    finally:
        DriveStore.delete_many = saved  # type: ignore[method-assign]


def _once(emu: Emulator, files: int, latency: float, mode: bool, run: int) -> dict:
    folder = f"Bench/run{run}"
    for i in range(1, files + 1):
        emu.add_file(f"{folder}/epoch_{i:04d}.pt", b"c%d" % i)
    emu.clear_requests()
    emu.faults.latency(latency)
    began = time.perf_counter()
    with _mode(mode):
        result = CliRunner().invoke(cli, ["prune", f"drive:{folder}", "--keep-last", "1"])
    seconds = time.perf_counter() - began
    emu.faults.clear()
    if result.exit_code != 0:
        raise SystemExit(f"prune failed: {result.stderr[-400:]}")
    left = [f for f in emu.files() if f["title"].startswith("epoch_")
            and not f["labels"]["trashed"] and f["parents"][0]["id"] == emu.find(folder)["id"]]
    assert len(left) == 1, len(left)
    reqs = emu.requests
    return {"seconds": seconds,
            "round_trips": sum(1 for r in reqs if not r.in_batch),
            "batches": sum(1 for r in reqs if r.kind == "batch"),
            "files.get alone": sum(1 for r in reqs if r.kind == "files.get" and not r.in_batch),
            "deletes alone": sum(1 for r in reqs if r.kind == "files.delete" and not r.in_batch),
            "calls Drive counts": sum(1 for r in reqs if r.kind and r.kind != "batch"),
            "units": sum(r.units for r in reqs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(DRIVESTAGE_STATE_DIR=os.path.join(tmp, "state"),
                          DRIVESTAGE_TOKEN="bench-token")
        with Emulator(data_dir=None, quota_bytes=None, token=None) as emu:
            os.environ["DRIVESTAGE_API_ROOT"] = emu.url
            best: dict[str, dict] = {}
            for rnd in range(args.rounds):
                for i, (name, mode) in enumerate(MODES.items()):
                    got = _once(emu, args.files, args.latency, mode, rnd * len(MODES) + i)
                    if name not in best or got["seconds"] < best[name]["seconds"]:
                        best[name] = got
                    print(f"round {rnd + 1} {name}: {got}", flush=True)
    old, new = (best[name] for name in MODES)
    summary = {"files": args.files, "latency_s": args.latency, "old": old, "new": new,
               "speedup": old["seconds"] / new["seconds"],
               "round_trip_ratio": new["round_trips"] / old["round_trips"]}
    print(f"prune of {args.files} files at {args.latency * 1000:g} ms per request: "
          f"{old['seconds']:.2f} s / {old['round_trips']} round trips with a request per check "
          f"and per delete, {new['seconds']:.2f} s / {new['round_trips']} in batches "
          f"({summary['speedup']:.2f}x faster, {summary['round_trip_ratio']:.3f}x the round "
          f"trips; calls Drive counts {old['calls Drive counts']} vs "
          f"{new['calls Drive counts']})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=2)


if __name__ == "__main__":
    main()
