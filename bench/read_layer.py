"""What the answer-reading layer (``sliced.SlicedResponse``) costs a download's reads,
per socket read, in the reading thread's CPU time: ranged GETs of a file served by
``bench/plainserver.py`` (in a process of its own; with ``--tls``, a TLS server of this
script's own, a self-signed certificate made by ``openssl``), read with ``read1(1 MiB)`` as
``drive/media.py`` reads a body, through

* ``plain``: ``http.client.HTTPResponse`` (the socket's own reader): a download's stream
  thread since perf35 (``SlicedResponse`` in a thread that does not wait in pieces);
* ``layer, stream thread``: the socket's reader under ``sliced._SlicedReads``, which in a
  thread that does not wait in pieces passes each read on (a stream thread before perf35);
* ``sliced, main thread``: ``SlicedResponse`` in the main thread (``interrupts.recv_into``:
  the socket's timeout set to the piece and back around each read).

Rounds alternate the three (the machine's load drifts). ``--block`` sets the ``read1`` size:
over loopback HTTP a read brings up to a MiB; over TLS one record (16 KiB at most), as from
Drive.

    python bench/read_layer.py --mib 256 --rounds 7            # loopback HTTP
    python bench/read_layer.py --mib 256 --rounds 7 --tls      # TLS

Prints, for each way, the median CPU microseconds per read and per MiB, and its ratio to
``plain``.
"""
from __future__ import annotations

import argparse
import http.client
import io
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from drivestage.drive import sliced as connections  # noqa: E402

MiB = 1 << 20


def _serve(path: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "plainserver.py"), path,
                             "--port", str(port)], stdout=subprocess.DEVNULL)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
        except urllib.error.HTTPError:
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the plain server did not start")


class _Layered(http.client.HTTPResponse):
    """The socket's reader under ``_SlicedReads`` whatever the thread (before perf35)."""

    def __init__(self, sock: Any, *args: Any, **kwargs: Any):
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(connections._SlicedReads(self.fp.detach(), sock))


_TLS_SERVER = r"""
import socket, ssl, sys
cert, key, path, port = sys.argv[1:5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
data = open(path, "rb").read()
srv = socket.create_server(("127.0.0.1", int(port)))
print("ready", flush=True)
while True:
    raw, _ = srv.accept()
    try:
        with ctx.wrap_socket(raw, server_side=True) as conn:
            head = b""
            while b"\r\n\r\n" not in head:
                got = conn.recv(65536)
                if not got:
                    break
                head += got
            want = len(data)
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"range: bytes=0-"):
                    want = int(line.split(b"-")[1]) + 1
            conn.sendall(b"HTTP/1.1 206 Partial Content\r\nContent-Length: %d\r\n"
                         b"Content-Range: bytes 0-%d/%d\r\n\r\n" % (want, want - 1, len(data)))
            view = memoryview(data)[:want]
            for i in range(0, want, 1 << 20):
                conn.sendall(view[i:i + (1 << 20)])
    except OSError:
        pass
"""


def _serve_tls(path: str, port: int, where: str) -> subprocess.Popen:
    cert, key = os.path.join(where, "cert.pem"), os.path.join(where, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert], check=True,
                   capture_output=True)
    proc = subprocess.Popen([sys.executable, "-c", _TLS_SERVER, cert, key, path, str(port)],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    return proc


def _read_all(port: int, response_class: type, size: int, block: int, tls: bool
              ) -> tuple[float, int]:
    """One ranged GET of ``size`` bytes read in ``read1(block)`` calls: (CPU s, reads)."""
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=120, context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.response_class = response_class
    conn.request("GET", "/drive/v2/files/plainfile0001?alt=media",
                 headers={"Authorization": "Bearer x", "Range": f"bytes=0-{size - 1}"})
    cpu = time.thread_time()
    resp = conn.getresponse()
    reads = got = 0
    while got < size:
        data = resp.read1(block)
        if not data:
            raise SystemExit("short body")
        got += len(data)
        reads += 1
    cpu = time.thread_time() - cpu
    conn.close()
    return cpu, reads


def _in_thread(fn: Callable[[], tuple[float, int]]) -> tuple[float, int]:
    out: list[tuple[float, int]] = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--block", type=int, default=1 << 20, help="read1 size (default 1 MiB)")
    ap.add_argument("--tls", action="store_true", help="over TLS (a server of this script's)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--port", type=int, default=8793)
    args = ap.parse_args()
    size = args.mib * MiB
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "file.bin")
        with open(path, "wb") as fh:
            for _ in range(args.mib):
                fh.write(os.urandom(MiB))
        server = _serve_tls(path, args.port, tmp) if args.tls else _serve(path, args.port)
        try:
            ways: dict[str, Callable[[], tuple[float, int]]] = {
                "plain": lambda: _in_thread(lambda: _read_all(
                    args.port, http.client.HTTPResponse, size, args.block, args.tls)),
                "layer, stream thread": lambda: _in_thread(lambda: _read_all(
                    args.port, _Layered, size, args.block, args.tls)),
                "sliced, main thread": lambda: _read_all(
                    args.port, connections.SlicedResponse, size, args.block, args.tls),
            }
            got: dict[str, list[tuple[float, int]]] = {k: [] for k in ways}
            for r in range(args.rounds + 1):
                order = list(ways) if r % 2 == 0 else list(reversed(ways))
                for name in order:
                    one = ways[name]()
                    if r:   # (round 0 warms the page cache and the server)
                        got[name].append(one)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait()
    base = statistics.median(c / n for c, n in got["plain"])
    print(f"{args.rounds} rounds of {args.mib} MiB in read1({args.block})"
          f"{' over TLS' if args.tls else ''}; load "
          f"{os.getloadavg()[0]:.1f}")
    for name, v in got.items():
        per_read = statistics.median(c / n for c, n in v)
        per_mib = statistics.median(c / args.mib for c, _ in v)
        reads = statistics.median(n for _, n in v)
        print(f"{name:22} {per_read * 1e6:7.2f} µs a read, {per_mib * 1e3:6.3f} ms CPU a MiB, "
              f"{reads:.0f} reads; {per_read / base:.3f}× plain a read")


if __name__ == "__main__":
    main()
