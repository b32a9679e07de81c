"""``drivestage emulator`` as a user runs it: first line, clean stop, state across restarts."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request

import pytest

from _forkcli import PIPE, cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture: the fork server)

LINE = re.compile(r"Drive API emulator at (http://127\.0\.0\.1:(\d+)/)\n")


def launch(*args):
    """``drivestage emulator ARGS``, forked with the CLI imported (tests/_forkcli.py), once
    it said where it listens: (process, its URL, its port)."""
    proc = cli_server().popen(["emulator", *args], stdout=PIPE, stderr=PIPE, text=True)
    line = proc.stdout.readline()
    m = LINE.fullmatch(line)
    assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, m.group(1), int(m.group(2))


def call(url, path, method="GET", body=None, token="tok"):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url + path.lstrip("/"), data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_first_line_and_clean_stop_keep_state(tmp_path, sig):
    data_dir = str(tmp_path / "drive")
    proc, url, port = launch("--data-dir", data_dir, "--quota-bytes", "1000000")
    try:
        f = call(url, "/_emulator/files?path=Models/a.pth", "POST", b"weights")
        about = call(url, "/drive/v2/about")
        assert about["quotaBytesTotal"] == "1000000" and about["quotaBytesUsed"] == "7"
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    proc, url, _ = launch("--data-dir", data_dir)
    try:
        got = call(url, f"/drive/v2/files/{f['id']}")
        assert got["title"] == "a.pth" and got["md5Checksum"] == f["md5Checksum"]
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_token_option_and_busy_port(tmp_path):
    proc, url, port = launch("--token", "s3cret")
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            call(url, "/drive/v2/about", token="other")
        assert err.value.code == 401
        assert call(url, "/drive/v2/about", token="s3cret")["kind"] == "drive#about"
        busy = cli_server().run(["emulator", "--port", str(port)], text=True, timeout=30)
        assert busy.returncode == 2
        assert f"Error: cannot listen on 127.0.0.1:{port}" in busy.stderr
        assert busy.stdout == ""
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


@pytest.mark.slow
def test_bench_script_runs(tmp_path):
    """bench/emulator.py stays runnable (tiny size here; the real run uses 1 GiB)."""
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, os.path.join(root, "bench", "emulator.py"), "--size-mib", "8",
                          "--repeat", "1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "download http.client" in out.stdout and "md5 ok" in out.stdout


def test_latency_and_link_make_it_behave_like_a_remote_drive(tmp_path):
    import time

    proc, url, _ = launch("--latency", "0.2", "--link", "1")
    try:
        faults = call(url, "/_emulator/faults")
        assert faults["throttle_per_connection"] == 1_000_000
        assert [(r["kind"], r["seconds"]) for r in faults["rules"]] == [("latency", 0.2)]
        f = call(url, "/_emulator/files?path=x.bin", "POST", b"x" * 500_000)
        t = time.perf_counter()
        request = urllib.request.Request(f"{url}drive/v2/files/{f['id']}?alt=media",
                                         headers={"Authorization": "Bearer tok"})
        with urllib.request.urlopen(request, timeout=20) as resp:
            assert resp.read() == b"x" * 500_000
        assert time.perf_counter() - t >= 0.2 + 0.4  # first byte late, then ~1 MB/s
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_api_quota_and_upload_cap_options():
    proc, url, _ = launch("--api-quota", "150", "--upload-cap", "10",
                          "--api-project-quota", "1000")
    try:
        quota = call(url, "/_emulator/calls")["quota"]
        assert (quota["units_per_minute"], quota["project_units_per_minute"]) == (150, 1000)
        call(url, "/drive/v2/files")                  # 100 units
        with pytest.raises(urllib.error.HTTPError) as err:
            call(url, "/drive/v2/files")              # 200 > 150
        assert err.value.code == 403
        assert json.loads(err.value.read())["error"]["errors"][0]["reason"] == "userRateLimitExceeded"
        with pytest.raises(urllib.error.HTTPError) as err:
            call(url, "/upload/drive/v2/files?uploadType=media", "POST", b"x" * 11, token="other")
        body = json.loads(err.value.read())["error"]
        assert (err.value.code, body["message"]) == (403, "User rate limit exceeded.")
        assert call(url, "/_emulator/calls")["calls"] == {"files.list": 2, "files.insert": 1}
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
