"""A server that lies or never stops (issue 10): every loop that talks to it ends, bounded in
requests and time, with one ``Error:`` line and nothing under a final name.

The client runs as a real ``drivestage`` process (so a hang is a timeout, not a stuck suite;
forked with its imports done, tests/_forkcli.py) against the emulator behind tests/_proxy.py,
with its address space capped so that reading an endless body ends in MemoryError instead of
taking the machine down.
"""
from __future__ import annotations

import os
import subprocess

import pytest

import _proxy
from _forkcli import cli_server
from _proxy import Proxy
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)

#: Seconds a correct client needs at most here (a few short timeouts and retries).
DEADLINE = 30


def _run(proxy: Proxy, tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ, DRIVESTAGE_API_ROOT=proxy.url, DRIVESTAGE_TOKEN="test-token",
                DRIVESTAGE_STATE_DIR=str(tmp_path / "state"), DRIVESTAGE_RETRY_ATTEMPTS="3",
                DRIVESTAGE_RETRY_BASE="0.01", DRIVESTAGE_RETRY_CAP="0.05",
                DRIVESTAGE_HTTP_TIMEOUT="3")
    full.update(env)
    return cli_server().run(list(args), env=full, text=True, timeout=DEADLINE,
                            limits={"RLIMIT_AS": (3 << 30, 3 << 30)})


def _one_error_line(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 1, (res.returncode, res.stderr[-2000:])
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("Error: "), res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    return lines[-1]


@pytest.mark.parametrize("mutate", [_proxy.endless, _proxy.oversized(1000)],
                         ids=["no-length", "content-length-lies"])
def test_pull_stops_reading_a_body_longer_than_the_range(emulator, proxy, tmp_path, mutate):
    emulator.add_file("data/f.bin", os.urandom(3 << 20))
    proxy.on("GET", r"alt=media", mutate)
    res = _run(proxy, tmp_path, "pull", "drive:data/f.bin", str(tmp_path / "dest"))
    _one_error_line(res)
    assert not (tmp_path / "dest" / "f.bin").exists()
    assert proxy.count("GET", "alt=media") <= 12


@pytest.mark.slow
def test_pull_gives_up_on_a_trickling_body(emulator, proxy, tmp_path):
    emulator.add_file("data/f.bin", os.urandom(256 << 10))
    proxy.on("GET", r"alt=media", _proxy.trickle(0.05))
    # A window of 0.4 s: each of the 3 attempts is given up after it (20 bytes a second is
    # far below 64 KiB a window, whatever the window), each byte well within the timeout.
    # (It was 1 s: 3 s of the suite's waiting; the count says the trickle ended each.)
    res = _run(proxy, tmp_path, "pull", "drive:data/f.bin", str(tmp_path / "dest"),
               DRIVESTAGE_HTTP_TIMEOUT="0.4")
    _one_error_line(res)
    assert proxy.count("GET", "alt=media") == 3
    assert not (tmp_path / "dest" / "f.bin").exists()


def test_listing_detects_a_repeating_page_token(emulator, proxy, tmp_path):
    for i in range(3):
        emulator.add_file(f"data/f{i}.txt", b"x")
    proxy.on("GET", r"^/drive/v2/files\?", _proxy.repeat_page_token)
    proxy.rewrite(r"&pageToken=" + _proxy.REPEATED_TOKEN, "")
    res = _run(proxy, tmp_path, "ls", "drive:data")
    line = _one_error_line(res)
    assert "page" in line.lower()
    assert proxy.count("GET", r"^/drive/v2/files\?") <= 10


def test_push_gives_up_when_an_upload_never_progresses(emulator, proxy, tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(os.urandom(1 << 20))
    proxy.on("PUT", r"upload_id=", _proxy.no_progress_308, forward=False)
    res = _run(proxy, tmp_path, "push", str(src), "drive:Models/logs")
    _one_error_line(res)
    assert proxy.count("PUT", "upload_id=") <= 30
    assert emulator.find("Models/logs/epoch_001.pt") is None


def _endless_trickle(status, headers, body):
    """The listing's JSON, then spaces one at a time, for ever (valid JSON so far)."""
    def forever():
        yield body
        while True:
            yield b" "
    return _proxy.Reply(status, {k: v for k, v in headers.items()
                                 if k.lower() != "content-length"}, forever(), pace=0.05)


@pytest.mark.parametrize("mutate", [_proxy.endless, _endless_trickle],
                         ids=["endless", "trickle"])
def test_a_metadata_answer_that_never_ends_fails_the_command(emulator, proxy, tmp_path, mutate):
    """push, prune, mirror and the trainer's resume all list folders: an answer that never ends
    must fail the request (retried a bounded number of times), not fill memory or hang."""
    emulator.add_file("Models/logs/epoch_001.pt", b"x")
    proxy.on("GET", r"^/drive/v2/files\?", mutate)
    res = _run(proxy, tmp_path, "prune", "drive:Models/logs", "--keep-last", "1",
               DRIVESTAGE_HTTP_TIMEOUT="0.4")   # (a trickle's byte each 0.05 s: within it)
    line = _one_error_line(res)
    assert "still failing after 3 attempts" in line
    assert proxy.count("GET", r"^/drive/v2/files\?") <= 3
