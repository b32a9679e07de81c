"""``drivestage emulator``'s options for the emulator's own bounds (emulefts46): the settings
of the emulator's attack (upload_session_ttl, refusal_drain_bytes/seconds, max_connections,
idle_timeout, request_log_bytes) and the disk reserve (min_free_bytes) had no option, so a
user of the CLI could not change them. Each given reaches the emulator and shows in what
it does."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

from _forkcli import PIPE, cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture: the fork server)
from test_emulator_cli import launch

MiB = 1 << 20


def _head(port: int, length: int) -> bytes:
    return (f"POST /upload/drive/v2/files?uploadType=media HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer t\r\nContent-Length: {length}\r\n\r\n").encode()


def _answer(sock: socket.socket) -> tuple[bytes, bool]:
    """The answer's bytes, and whether the connection ended after it (within 10 s)."""
    data = b""
    sock.settimeout(10)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except (socket.timeout, ConnectionResetError) as exc:
        return data, isinstance(exc, ConnectionResetError)


def test_the_bound_options_reach_the_emulator(tmp_path):
    proc, url, port = launch(
        "--data-dir", str(tmp_path / "d"), "--min-free-bytes", "1000TB",
        "--refusal-drain-bytes", "64KiB", "--refusal-drain-seconds", "0.3",
        "--max-connections", "1", "--idle-timeout", "1", "--request-log-bytes", "1")
    try:
        # --max-connections 1, --idle-timeout 1: a second connection is served only once the
        # first, idle, was closed by the emulator.
        idle = socket.create_connection(("127.0.0.1", port), timeout=10)
        served: list[float] = []

        def about() -> None:
            req = urllib.request.Request(url + "drive/v2/about",
                                         headers={"Authorization": "Bearer t"})
            with urllib.request.urlopen(req, timeout=20) as resp:
                json.loads(resp.read())
            served.append(time.monotonic())

        other = threading.Thread(target=about)
        other.start()
        assert _answer(idle) == (b"", True)
        closed = time.monotonic()
        other.join(20)
        idle.close()
        assert served and served[0] >= closed

        # --min-free-bytes 1000TB: every upload is refused; --refusal-drain-bytes 64KiB: its
        # answer comes once 64 KiB more of its body were read, the connection closed.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(_head(port, 10 * MiB) + b"x" * (256 * 1024))
            data, ended = _answer(sock)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.split(b" ", 2)[1] == b"403" and b"Connection: close" in head and ended
        error = json.loads(body)["error"]["errors"][0]
        assert error["reason"] == "storageQuotaExceeded"
        assert "keeps 1000000000000000 bytes free" in error["message"]
        # --refusal-drain-seconds 0.3: a body that never comes is waited for that long.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            began = time.monotonic()
            sock.sendall(_head(port, 10 * MiB))
            data, ended = _answer(sock)
        assert data.split(b" ", 2)[1] == b"403" and ended
        assert 0.3 <= time.monotonic() - began < 5

        # --request-log-bytes 1: the log keeps the newest request alone.
        req = urllib.request.Request(url + "_emulator/requests")
        with urllib.request.urlopen(req, timeout=10) as resp:
            log = json.loads(resp.read())
        assert [(r["method"], r["status"]) for r in log] == [("POST", 403)]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_the_session_ttl_option_reaches_the_emulator(tmp_path):
    # --upload-session-ttl 0.000001: the session is gone by its first chunk (404, upon which
    # clients start over); --min-free-bytes 0: no reserve, the upload is taken.
    proc, url, port = launch("--data-dir", str(tmp_path / "d"), "--min-free-bytes", "0",
                             "--upload-session-ttl", "0.000001")
    try:
        req = urllib.request.Request(url + "upload/drive/v2/files?uploadType=resumable",
                                     data=b'{"title": "a.txt"}', method="POST",
                                     headers={"Authorization": "Bearer t",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            location = resp.headers["Location"]
        chunk = urllib.request.Request(location, data=b"abc", method="PUT",
                                       headers={"Authorization": "Bearer t",
                                                "Content-Range": "bytes 0-2/3"})
        try:
            urllib.request.urlopen(chunk, timeout=10).close()
            status = 200
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status == 404
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_a_bad_size_is_a_usage_error():
    run = cli_server().run(["emulator", "--refusal-drain-bytes", "lots"], text=True, timeout=30)
    assert run.returncode == 2 and run.stdout == ""
    assert "Invalid value for '--refusal-drain-bytes': size 'lots' is not understood" in run.stderr
    run = cli_server().run(["emulator", "--max-upload-sessions", "0"], text=True, timeout=30)
    assert run.returncode == 2 and "Invalid value for '--max-upload-sessions'" in run.stderr
