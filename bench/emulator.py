"""Throughput of the Drive emulator on loopback: download (curl and Python) and resumable upload,
then the same file read through a modelled Drive link (per-request latency + per-connection rate).

    python bench/emulator.py --size-mib 1024
    python bench/emulator.py --size-mib 64 --no-upload --ttfb 0.2 --link 100

Prints one line per measurement; the download target is >= 1 GB/s. The --ttfb phase reads
the file in --range-mib ranged GETs on one connection and in one GET, and prints both
against the model (bytes / link + requests x ttfb): what a client pays per request on Drive.
"""
from __future__ import annotations

import argparse
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time

from drivestage.emulator import Emulator

_CHUNK = 8 << 20


def _make_file(path: str, size: int) -> None:
    block = os.urandom(_CHUNK)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(block[: min(left, _CHUNK)])
            left -= _CHUNK


def _python_download(emu: Emulator, file_id: str) -> int:
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=60)
    conn.request("GET", f"/drive/v2/files/{file_id}?alt=media", headers={"Authorization": "Bearer b"})
    resp = conn.getresponse()
    buf = bytearray(_CHUNK)
    got = 0
    while True:
        n = resp.readinto(buf)
        if not n:
            break
        got += n
    conn.close()
    return got


def _ranged_download(emu: Emulator, file_id: str, size: int, chunk: int) -> tuple[int, int]:
    """Read the file in ``chunk``-byte ranged GETs on one kept-alive connection; (bytes, requests)."""
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=120)
    got = requests = 0
    while got < size:
        end = min(got + chunk, size) - 1
        conn.request("GET", f"/drive/v2/files/{file_id}?alt=media",
                     headers={"Authorization": "Bearer b", "Range": f"bytes={got}-{end}"})
        resp = conn.getresponse()
        got += len(resp.read())
        requests += 1
    conn.close()
    return got, requests


def _modelled_link(emu: Emulator, file_id: str, size: int, ttfb: float, link_mb: float, range_mib: int) -> None:
    emu.faults.latency(ttfb)
    emu.faults.throttle(per_connection=link_mb * 1e6)
    try:
        t = time.perf_counter()
        assert _python_download(emu, file_id) == size
        one = time.perf_counter() - t
        t = time.perf_counter()
        got, n = _ranged_download(emu, file_id, size, range_mib << 20)
        ranged = time.perf_counter() - t
        assert got == size
    finally:
        emu.faults.clear()
    wire = size / (link_mb * 1e6)
    print(f"link {link_mb:g} MB/s, ttfb {ttfb:g} s: one GET {one:6.2f} s (model {wire + ttfb:6.2f}); "
          f"{n} x {range_mib} MiB ranges {ranged:6.2f} s (model {wire + n * ttfb:6.2f}); "
          f"ratio {ranged / one:4.2f}")


def _resumable_upload(emu: Emulator, path: str, size: int, chunk: int) -> str:
    conn = http.client.HTTPConnection(emu.host, emu.port, timeout=60)
    auth = {"Authorization": "Bearer b"}
    conn.request("POST", "/upload/drive/v2/files?uploadType=resumable", body=b'{"title": "up.bin"}',
                 headers={**auth, "Content-Type": "application/json", "X-Upload-Content-Length": str(size)})
    resp = conn.getresponse()
    resp.read()
    location = resp.getheader("Location")
    target = location.split("/", 3)[3]
    with open(path, "rb") as f:
        start = 0
        while start < size:
            n = min(chunk, size - start)
            conn.putrequest("PUT", "/" + target)
            conn.putheader("Authorization", "Bearer b")
            conn.putheader("Content-Length", str(n))
            conn.putheader("Content-Range", f"bytes {start}-{start + n - 1}/{size}")
            conn.endheaders()
            left = n
            while left:
                data = f.read(min(_CHUNK, left))
                conn.send(data)
                left -= len(data)
            resp = conn.getresponse()
            body = resp.read()
            start += n
    conn.close()
    import json
    return json.loads(body)["md5Checksum"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-upload", action="store_true")
    ap.add_argument("--ttfb", type=float, default=None, metavar="SECONDS",
                    help="also read through a modelled link with this time to first byte")
    ap.add_argument("--link", type=float, default=100.0, metavar="MB/S", help="per-connection rate (--ttfb)")
    ap.add_argument("--range-mib", type=int, default=8, help="ranged GET size (--ttfb)")
    args = ap.parse_args()
    size = args.size_mib << 20
    work = tempfile.mkdtemp(prefix="emu-bench-")
    try:
        src = os.path.join(work, "src.bin")
        _make_file(src, size)
        with Emulator(data_dir=os.path.join(work, "drive")) as emu:
            t = time.perf_counter()
            file_id = emu.add_file("bench/src.bin", src)
            print(f"seed (copy + md5)   {size / (time.perf_counter() - t) / 1e9:6.2f} GB/s")
            url = f"{emu.url}drive/v2/files/{file_id}?alt=media"
            if shutil.which("curl"):
                best = 0.0
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    subprocess.run(["curl", "-sS", "-o", "/dev/null", "-H", "Authorization: Bearer b", url],
                                   check=True)
                    best = max(best, size / (time.perf_counter() - t))
                print(f"download curl       {best / 1e9:6.2f} GB/s  (best of {args.repeat}, {args.size_mib} MiB)")
            best = 0.0
            for _ in range(args.repeat):
                t = time.perf_counter()
                got = _python_download(emu, file_id)
                best = max(best, size / (time.perf_counter() - t))
                assert got == size, (got, size)
            print(f"download http.client {best / 1e9:6.2f} GB/s  (best of {args.repeat})")
            if not args.no_upload:
                t = time.perf_counter()
                md5 = _resumable_upload(emu, src, size, 64 << 20)
                rate = size / (time.perf_counter() - t)
                expect = emu.find("bench/src.bin")["md5Checksum"]
                print(f"upload resumable    {rate / 1e9:6.2f} GB/s  (64 MiB chunks, md5 {'ok' if md5 == expect else 'MISMATCH'})")
            if args.ttfb is not None:
                _modelled_link(emu, file_id, size, args.ttfb, args.link, args.range_mib)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
