"""Attacks on the day's changes: sidecar format 3 ``saved`` and the retention rule that never
deletes a run's verified checkpoint saved last, ``--keep-runs`` alone keeping whole runs, and
the deletions a push makes before its upload when Drive is nearly full.

Through the real stack against the emulator (the CLI in-process, or a child killed at a real
moment); what is asserted is the exact set of files left on Drive (name -> md5s)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from drivestage.cli import cli
from _drive_state import live_md5s

FOLDER = "Models/logs"
KiB = 1024


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond, without jitter, for every test here."""


def _live(emu) -> dict:
    return live_md5s(emu, FOLDER)


def _save(src, name: str, epoch, run, size: int = 3000, saved=None, when=None) -> dict:
    """A checkpoint and its sidecar as the trainer writes them (format 3 when ``saved``);
    both files' mtime ``when`` if given. ``{name: [md5]}`` of both."""
    os.makedirs(src, exist_ok=True)
    data = os.urandom(size)
    side = {"format": 2, "epoch": epoch, "iteration": (epoch or 0) * 10, "epoch_iteration": 0,
            "run": run, "md5": hashlib.md5(data).hexdigest(), "size": len(data)}
    if saved is not None:
        side.update(format=3, saved=saved)
    body = json.dumps(side).encode()
    stem = os.path.splitext(name)[0]
    for fname, blob in ((name, data), (stem + ".json", body)):
        path = os.path.join(src, fname)
        with open(path, "wb") as fh:
            fh.write(blob)
        if when is not None:
            os.utime(path, (when, when))
    return {name: [side["md5"]], stem + ".json": [hashlib.md5(body).hexdigest()]}


def _env(emulator) -> dict:
    return dict(os.environ, DRIVESTAGE_API_ROOT=emulator.url, DRIVESTAGE_TOKEN="test-token",
                DRIVESTAGE_RETRY_BASE="0.001", DRIVESTAGE_RETRY_JITTER="0")


def _cli(*args) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


# ------------------------------------------------------------ 3. pre-upload deletions

@pytest.mark.slow
def test_nearly_full_drive_keeps_the_newest_runs_checkpoint_not_the_most_advanced_older_runs(
        emulator_factory, local_state, tmp_path, monkeypatch):
    """Drive holds an old run A (50 epochs) and the run after it, B (3 epochs, pushed last);
    a third run C's first push with --keep-runs 1 finds Drive nearly full and deletes what
    the plan deletes before sending a byte. While C has no verified checkpoint there, the
    one kept back was the *most advanced* of the folder (A's epoch 50, by progress across
    runs), so B's checkpoints went first; killed mid-upload, Drive held nothing of B, the
    newest run it had. The newest run's newest verified checkpoint stays instead."""
    from _kill import sigkill_when

    a, b = {}, {}
    for e in (48, 49, 50):
        a.update(_save(tmp_path / "a", f"epoch_{e:03d}.pt", e, "run-A", size=100 * KiB))
    for e in (2, 3):
        b.update(_save(tmp_path / "b", f"epoch_{e:03d}.pt", e, "run-B", size=100 * KiB))
    used = sum(os.path.getsize(p) for d in ("a", "b") for p in (tmp_path / d).iterdir())
    emulator = emulator_factory(quota_bytes=used + 150 * KiB)
    env = _env(emulator)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    _cli("push", str(tmp_path / "a"), f"drive:{FOLDER}")
    _cli("push", str(tmp_path / "b"), f"drive:{FOLDER}")
    assert _live(emulator) == {**a, **b}
    c = _save(tmp_path / "c", "epoch_001.pt", 1, "run-C", size=200 * KiB)
    cmd = [sys.executable, "-m", "drivestage", "push", str(tmp_path / "c"), f"drive:{FOLDER}",
           "--keep-runs", "1"]
    emulator.clear_requests()
    emulator.faults.latency(2.0, path=r"^/upload/", times=1)  # the upload's first answer waits
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sigkill_when(proc, lambda: any(r.path.startswith("/upload/") for r in emulator.requests),
                 "the push never began its upload")
    live = _live(emulator)
    assert "epoch_001.json" not in live  # C has no verified checkpoint yet
    assert {n: live.get(n) for n in ("epoch_003.pt", "epoch_003.json")} == \
        {n: b[n] for n in ("epoch_003.pt", "epoch_003.json")}, live
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert _live(emulator) == c
