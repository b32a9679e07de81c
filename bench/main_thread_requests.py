"""What the pieces cost: metadata requests (files.get), small ranged reads (a sidecar's
bytes) and uploads (a body sent in http.client's 8 KiB blocks) to the emulator on loopback,
from the main thread, which reads answers and sends bodies in pieces of ``interrupts.SLICE``
(so that a Ctrl-C the kernel gave another thread ends the wait), and the same switched back
to the socket's own reads and sends, in alternating rounds (the machine's load drifts).

    python bench/main_thread_requests.py --rounds 20 --requests 200 --upload-mib 32

Prints, for each, the median wall and CPU time per request (CPU: the process's, the
emulator's serving thread included) and the ratios pieces / plain (1.0: no cost).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Callable

from drivestage.drive import connect, sliced
from drivestage.emulator import Emulator


def _round(work: Callable[[], object], n: int) -> tuple[float, float]:
    """Wall and CPU seconds per call of ``work`` over ``n`` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        work()
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


def _plain() -> bool:
    return False   # the socket's own reads and sends, as before the pieces


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--upload-mib", type=int, default=32)
    args = ap.parse_args()
    os.environ.setdefault("DRIVESTAGE_STATE_DIR", tempfile.mkdtemp())
    in_pieces = sliced._in_pieces
    with tempfile.TemporaryDirectory() as data:
        emu = Emulator(data_dir=data).start()
        try:
            emu.add_file("runs/a.json", b'{"epoch": 1, "metric": 0.5}')
            store = connect(api_root=emu.url, token="bench")
            entry = store.resolve("runs/a.json")
            big = os.path.join(data, "big.bin")
            with open(big, "wb") as f:
                f.write(os.urandom(args.upload_mib << 20))
            folder = store.resolve("runs")
            names = iter(range(1 << 30))
            kinds = {"files.get": (lambda: store.stat(entry), args.requests),
                     "sidecar read": (lambda: store.fetch_range(entry, 0, entry.size),
                                      args.requests),
                     f"upload {args.upload_mib} MiB": (
                         lambda: store.upload(big, folder, f"big{next(names)}.bin"), 1)}
            for name, (work, n) in kinds.items():
                _round(work, n)   # (warm)
                got: dict[str, list[tuple[float, float]]] = {"pieces": [], "plain": []}
                for _ in range(args.rounds):
                    for way, choice in (("pieces", in_pieces), ("plain", _plain)):
                        sliced._in_pieces = choice
                        got[way].append(_round(work, n))
                sliced._in_pieces = in_pieces
                w = {k: statistics.median(x[0] for x in v) for k, v in got.items()}
                c = {k: statistics.median(x[1] for x in v) for k, v in got.items()}
                print(f"{name}: in pieces {w['pieces'] * 1e3:.2f} ms "
                      f"({c['pieces'] * 1e3:.2f} ms CPU), plain {w['plain'] * 1e3:.2f} ms "
                      f"({c['plain'] * 1e3:.2f} ms CPU); ratio pieces/plain: wall "
                      f"{w['pieces'] / w['plain']:.3f}, CPU {c['pieces'] / c['plain']:.3f}")
        finally:
            emu.stop()


if __name__ == "__main__":
    main()
