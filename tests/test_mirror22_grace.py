"""``drivestage mirror --grace``: the final push after a stop is bounded. A VM or Colab kills
the process about 30 s after its SIGTERM; with Drive slow or down the final push waited
through the whole retry schedule (103 s measured) and was killed with nothing said. Now it
stops at the grace, names what it did not send, exits 1, and Drive holds nothing cut short
under a file's name: the next push resumes the cut upload."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from click.testing import CliRunner

from drivestage.cli import cli

from _forkcli import PIPE, cli_server
from _mirror_signal import live_files, mirror_signalled
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)
from test_signals_cli import _md5s, _until


@pytest.fixture
def env(local_state, tmp_path, drive_env):
    return {**drive_env, "DRIVESTAGE_STATE_DIR": str(tmp_path / "state"),
            "DRIVESTAGE_RETRY_BASE": "0.01"}


def _mirror(src, env, *args: str):
    """``drivestage mirror SRC drive:Models/logs --every 3600 ARGS``, forked with the CLI
    imported (tests/_forkcli.py)."""
    return cli_server().popen(
        ["mirror", str(src), "drive:Models/logs", "--every", "3600", *args],
        env={**os.environ, **env}, stdout=PIPE, stderr=PIPE, text=True)


def _stopped_while(emulator, src, env, slow, *args: str) -> tuple[int, str, float]:
    """Start a mirror, let its first push end, then make Drive ``slow`` and SIGTERM it:
    (exit code, stderr, seconds from the signal to the exit)."""
    proc = _mirror(src, env, *args)
    lines: list[str] = []

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # The first period's push has ended once it says so: results.csv on Drive is not
        # that (the push may still be verifying it, and the stop then finds a push under
        # way, which another message describes).
        _until(proc, lambda: any(" pushed: " in line for line in lines),
               "the first push never ended")
        # Its period ends as the push tells the mirror's claim where it wrote (DEST, which
        # that push made), a moment after the push's line: the claim's thread (drivestage.
        # mirror_claim: mirrorclaim43) then writes it, so a claim on Drive says that the
        # period is over (a stop before finds it under way, as above).
        _until(proc, lambda: any(p["key"].startswith("drivestage-mirror-")
                                 for f in emulator.files()
                                 for p in emulator.properties_of(f["id"])),
               "the mirror never claimed DEST")
        (src / "epoch_001.pt").write_bytes(os.urandom(4 * 256 * 1024))
        slow()
        emulator.clear_requests()
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        proc.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(timeout=30)
        proc.stdout.close()
    return proc.returncode, "".join(lines), took


@pytest.mark.slow
def test_a_final_push_slower_than_the_grace_names_what_it_did_not_send(emulator, env,
                                                                       tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    code, err, took = _stopped_while(
        emulator, src, env,
        lambda: emulator.faults.latency(60, method="PUT", path="upload_id", times=1),
        "--chunk-size", "256KiB", "--grace", "0.5")
    emulator.faults.release_holds()   # the cut chunk's answer is let go, now
    emulator.faults.serving()
    assert code == 1, err
    assert err.splitlines()[-1] == (
        "Error: --grace (0.5 s) ran out before the final push to drive:Models/logs was done; "
        "not sent: epoch_001.pt; run the same drivestage mirror command again to send them "
        "(a cut upload resumes)"), err
    assert "Traceback" not in err
    assert took < 30, took   # the chunk's answer alone takes 60 s
    # Drive holds what was whole before: nothing of the checkpoint under its name.
    assert list(live_files(emulator)) == ["results.csv"]
    emulator.clear_requests()
    result = CliRunner().invoke(cli, ["push", str(src), "drive:Models/logs",
                                      "--chunk-size", "256KiB"])
    assert result.exit_code == 0, result.output
    assert live_files(emulator) == _md5s(src)
    assert not [r for r in emulator.requests if r.method == "POST"
                and r.path.startswith("/upload/")], "the cut upload was not resumed"


@pytest.mark.slow
def test_a_final_push_within_the_grace_exits_0(emulator, env, tmp_path):
    """The grace bounds a slow final push only: one that ends within it is as before."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    code, err, _ = _stopped_while(emulator, src, env, lambda: None, "--grace", "30")
    assert code == 0, err
    assert "for 30s at most, --grace" in err and "final push in" in err, err
    assert live_files(emulator) == _md5s(src)


def test_the_grace_must_be_positive(env, tmp_path):
    result = CliRunner().invoke(cli, ["mirror", str(tmp_path), "drive:x", "--every", "1",
                                      "--grace", "0"])
    assert result.exit_code == 2 and "--grace" in result.output, result.output


@pytest.mark.slow
def test_a_stop_while_dest_is_opened_with_drive_silent_is_bounded_too(emulator, env,
                                                                      tmp_path):
    """The signal comes while the mirror opens DEST and Drive answers nothing: the opening
    alone would wait through the retry schedule (103 s) before the final push began."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")
    emulator.faults.latency(60, method="GET")
    emulator.clear_requests()
    proc = _mirror(src, env, "--grace", "0.5")
    try:
        _until(proc, lambda: bool(emulator.requests), "the mirror never asked Drive")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert err.splitlines()[-1].startswith(
        "Error: --grace (0.5 s) ran out before the final push to drive:Models/logs was done; "
        f"it had not compared {src} with drive:Models/logs yet"), err
    assert live_files(emulator) == {}


def test_in_process_the_grace_ends_the_command_not_the_host(emulator, env, tmp_path):
    """Run in another process (a notebook, CliRunner), the command must not end it: once
    the grace ran out, the push under way stops between two chunks, and the command exits 1
    with the same line."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "results.csv").write_text("epoch\n1\n")

    def act():
        (src / "epoch_001.pt").write_bytes(os.urandom(8 * 256 * 1024))
        emulator.faults.throttle(512 * 1024)   # 4 s in all, half a second a chunk

    result = mirror_signalled(emulator, src, act, "--grace", "0.5")
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == (
        "Error: --grace (0.5 s) ran out before the final push to drive:Models/logs was done; "
        "not sent: epoch_001.pt; run the same drivestage mirror command again to send them "
        "(a cut upload resumes)"), result.stderr
    assert list(live_files(emulator)) == ["results.csv"]
