"""The push and mirror commands: exit codes, messages, and the SIGTERM flush."""
from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest
from click.testing import CliRunner

from _envs import env_for_children  # noqa: F401  (a fixture)
from _forkcli import DEVNULL, PIPE, cli_server
from _kill import sigkill_when
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)
from drivestage.cli import cli


def _logs(tmp_path, epochs=(1, 2, 3)):
    src = tmp_path / "logs"
    src.mkdir(exist_ok=True)
    for e in epochs:
        (src / f"epoch_{e:03d}.pt").write_bytes(os.urandom(5000))
        (src / f"epoch_{e:03d}.pt.json").write_text(json.dumps({"epoch": e,
                                                                "metrics": {"map50": e / 10}}))
    (src / "results.csv").write_text("epoch\n1\n")
    return str(src)


def _live(emu):
    return sorted(f["title"] for f in emu.files()
                  if not f["labels"]["trashed"] and not f["mimeType"].endswith(".folder"))


def test_push_then_push_again(emulator, env, tmp_path):
    src = _logs(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["push", src, "drive:Models/logs", "--keep-last", "2"])
    assert result.exit_code == 0, result.output
    assert "5 uploaded" in result.stderr and "2 not sent (the policy deletes them)" in result.stderr
    assert _live(emulator) == ["epoch_002.pt", "epoch_002.pt.json", "epoch_003.pt",
                               "epoch_003.pt.json", "results.csv"]
    result = runner.invoke(cli, ["push", src, "drive:Models/logs", "--keep-last", "2"])
    assert result.exit_code == 0
    assert "0 uploaded (0 B), 5 unchanged" in result.stderr


@pytest.mark.parametrize("args, code, message", [
    (["--chunk-size", "1000"], 2, "not a multiple of 256KiB"),
    (["--chunk-size", "lots"], 2, "is not a size"),
    (["--keep-every", "2", "--pattern", r"ckpt(\d+)"], 2, "has no (?P<epoch>...) group"),
])
def test_push_usage_errors(emulator, env, tmp_path, args, code, message):
    src = _logs(tmp_path)
    result = CliRunner().invoke(cli, ["push", src, "drive:Models/logs", *args])
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert _live(emulator) == []


def test_push_missing_source(emulator, env, tmp_path):
    result = CliRunner().invoke(cli, ["push", str(tmp_path / "nope"), "drive:Models/logs"])
    assert result.exit_code == 2   # a bad path: usage (leftovers39)
    assert "Error: " in result.stderr and "not a local folder" in result.stderr


def test_push_quota_error_is_one_line_with_the_numbers(emulator_factory, env, tmp_path, monkeypatch):
    emu = emulator_factory(quota_bytes=10_000)
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emu.url)
    src = _logs(tmp_path)
    result = CliRunner().invoke(cli, ["push", src, "drive:Models/logs"])
    assert result.exit_code == 1
    err = result.stderr.strip().splitlines()[-1]
    assert err.startswith("Error: Not enough Drive storage") and "needed" in err \
        and "free 9.8 KiB" in err
    assert _live(emu) == []


class _Lines:
    """The lines a child writes on a pipe, read in a thread as they come."""

    def __init__(self, pipe):
        import threading

        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe):
        for line in pipe:
            self.lines.append(line)

    def wait_for(self, proc, pattern: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(re.search(pattern, line) for line in self.lines):
            assert proc.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, "".join(self.lines)
            time.sleep(0.02)

    def text(self) -> str:
        self._thread.join(30)
        return "".join(self.lines)


@pytest.mark.parametrize("sig", [signal.SIGTERM,
                                 pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_mirror_flushes_on_sigterm_and_exits_0(emulator, env, tmp_path, sig):
    src = _logs(tmp_path, epochs=(1,))
    proc = cli_server().popen(
        ["mirror", src, "drive:Models/logs", "--every", "3600", "--keep-last", "1"],
        env={**os.environ, **env}, stdout=DEVNULL, stderr=PIPE, text=True)
    try:
        lines = _Lines(proc.stderr)
        # The first push, right away, ends with its line (waiting for its files on Drive
        # instead sent the signal while that push still ran, now and then).
        lines.wait_for(proc, r" pushed: ")
        (tmp_path / "logs" / "epoch_002.pt").write_bytes(b"new weights")
        (tmp_path / "logs" / "epoch_002.pt.json").write_text(json.dumps({"epoch": 2}))
        proc.send_signal(sig)
        proc.wait(timeout=30)
        err = lines.text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "pushing once more" in err
    # The first period said what it did; the final push has its own line.
    said = [line for line in err.splitlines() if re.match(r"\d\d:\d\d:\d\d pushed: ", line)]
    assert len(said) == 1 and said[0].endswith(" pushed: 3 uploaded (4.9 KiB), 0 unchanged"), err
    assert err.index(said[0]) < err.index("pushing once more")
    assert _live(emulator) == ["epoch_002.pt", "epoch_002.pt.json", "results.csv"]


def test_a_stop_while_a_period_pushes_still_says_what_that_period_did(emulator, env, tmp_path):
    """The signal comes while the first period's push runs (sent from inside one of its
    answers): that period's line was left out, as if its uploads were the final push's, and
    nothing said that 3 files had gone to Drive."""
    from _proxy import Proxy, Reply

    src = _logs(tmp_path, epochs=(1,))
    with Proxy(emulator.url) as proxy:
        proc = None

        def signal_then_answer(status, headers, body):
            proc.send_signal(signal.SIGTERM)
            return Reply(status, headers, [body])

        proxy.on("POST", r"^/upload/", signal_then_answer, times=1)
        proc = cli_server().popen(
            ["mirror", src, "drive:Models/logs", "--every", "3600", "--jobs", "1"],
            env={**os.environ, **env, "DRIVESTAGE_API_ROOT": proxy.url},
            stdout=DEVNULL, stderr=PIPE, text=True)
        try:
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    said = [line for line in err.splitlines() if re.match(r"\d\d:\d\d:\d\d pushed: ", line)]
    assert len(said) == 1 and said[0].endswith(" pushed: 3 uploaded (4.9 KiB), 0 unchanged"), err
    assert err.strip().splitlines()[-1].startswith("final push in "), err
    assert "0 uploaded (0 B), 3 unchanged" in err.strip().splitlines()[-1], err
    assert _live(emulator) == ["epoch_001.pt", "epoch_001.pt.json", "results.csv"]


@pytest.mark.slow
def test_push_killed_with_sigkill_resumes_on_the_next_run(emulator, env, tmp_path):
    import hashlib

    src = tmp_path / "logs"
    src.mkdir()
    data = os.urandom(12 * 256 * 1024 + 5)
    (src / "epoch_001.pt").write_bytes(data)
    emulator.faults.throttle(1024 * 1024)          # ~3 s: time to kill it mid-way
    proc = cli_server().popen(["push", str(src), "drive:Models/logs", "--chunk-size", "256KiB"],
                              env={**os.environ, **env}, stdout=PIPE, stderr=PIPE)
    sigkill_when(proc, lambda: sum(1 for r in emulator.requests if r.status == 308) >= 3,
                 "three chunks were never committed")
    emulator.faults.throttle(None)
    assert _live(emulator) == []
    emulator.clear_requests()
    result = CliRunner().invoke(cli, ["push", str(src), "drive:Models/logs",
                                      "--chunk-size", "256KiB"])
    assert result.exit_code == 0, result.output
    ups = [r for r in emulator.requests if r.path.startswith("/upload/")]
    status = [i for i, r in enumerate(ups)
              if r.headers.get("Content-Range") == f"bytes */{len(data)}"]
    assert status, "the rerun asks the server what it kept"
    assert not [r for r in ups if r.method == "POST"]          # the same session, resumed
    # (the killed child's in-flight chunk may be logged late: count from the status query)
    resumed = sum(r.bytes_in for r in ups[status[0]:])
    assert resumed <= len(data) - 3 * 256 * 1024
    assert _live(emulator) == ["epoch_001.pt"]
    assert emulator.find("Models/logs/epoch_001.pt")["md5Checksum"] == hashlib.md5(data).hexdigest()


def test_push_into_a_shared_drive_works_for_a_service_account(emulator, env, tmp_path):
    emulator.add_shared_drive("Team")
    emulator.set_service_account(True, token=env["DRIVESTAGE_TOKEN"])
    src = _logs(tmp_path, epochs=(1,))
    result = CliRunner().invoke(cli, ["push", src, "drive:shared/Team/runs/logs"])
    assert result.exit_code == 0, result.output
    assert _live(emulator) == ["epoch_001.pt", "epoch_001.pt.json", "results.csv"]
    # and My Drive gets the shared-drive advice instead
    result = CliRunner().invoke(cli, ["push", src, "drive:Models/logs"])
    assert result.exit_code == 1
    assert "shared drive" in result.stderr


def test_push_and_prune_take_the_api_root_option(emulator, env, tmp_path, monkeypatch):
    # Like pull/ls/quota, push and prune accept --api-root instead of the environment.
    monkeypatch.delenv("DRIVESTAGE_API_ROOT")
    src = _logs(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["push", src, "drive:Models/logs", "--api-root", emulator.url])
    assert result.exit_code == 0, result.output
    assert _live(emulator) == ["epoch_001.pt", "epoch_001.pt.json", "epoch_002.pt",
                               "epoch_002.pt.json", "epoch_003.pt", "epoch_003.pt.json",
                               "results.csv"]
    result = runner.invoke(cli, ["prune", "drive:Models/logs", "--keep-last", "1",
                                 "--api-root", emulator.url])
    assert result.exit_code == 0, result.output
    assert _live(emulator) == ["epoch_003.pt", "epoch_003.pt.json", "results.csv"]
