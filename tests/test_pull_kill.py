"""Process death: `drivestage pull` killed with SIGKILL mid-download resumes on the rerun;
concurrent pulls from several processes download the file once."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import drivestage
from _kill import sigkill_once_file_has
from drivestage import download as dl

CHUNK = 64 * 1024


def _env(emulator):
    return dict(os.environ, DRIVESTAGE_API_ROOT=emulator.url, DRIVESTAGE_TOKEN="test-token",
                DRIVESTAGE_RETRY_BASE="0.001")


def _media(emu):
    """The media GETs in the emulator's log (a request is logged as it arrives)."""
    return [r for r in emu.requests if r.method == "GET" and r.query.get("alt") == "media"]


@pytest.mark.slow
def test_sigkill_mid_download_then_rerun_resumes(emulator, drive_env, tmp_path):
    data = os.urandom(40 * CHUNK)
    emulator.add_file("big/x.bin", data)
    entry = drivestage.connect().resolve("big/x.bin")
    dest = tmp_path / "data"
    partial = dl.partial_path(str(dest / "x.bin"), entry)
    # Slow the link down so the kill lands mid-download, whatever the machine's speed.
    emulator.faults.throttle(512 * 1024)
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivestage", "pull", "drive:big/x.bin", str(dest), "-q",
         "--chunk-size", str(CHUNK), "-j", "2"],
        env=_env(emulator), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sigkill_once_file_has(proc, partial, 4 * CHUNK)
    assert not (dest / "x.bin").exists()
    have = os.path.getsize(partial)
    assert 4 * CHUNK <= have < len(data)
    emulator.faults.throttle(None)
    emulator.clear_requests()
    rerun = subprocess.run(
        [sys.executable, "-m", "drivestage", "pull", "drive:big/x.bin", str(dest), "--json",
         "-q", "--chunk-size", str(CHUNK), "-j", "2"],
        env=_env(emulator), capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["action"] == "resume" and summary["resumed_from"] == have
    assert summary["fetched"] == len(data) - have
    assert (dest / "x.bin").read_bytes() == data
    remaining = -(-(len(data) - have) // CHUNK)
    records = _media(emulator)
    # Two streams ask at once, so arrival order is not range order: no byte before the
    # partial's end is asked for again, and the lowest range starts exactly there.
    starts = [int(r.headers["Range"].split("=")[1].split("-")[0]) for r in records]
    assert min(starts) == have > 0
    assert not os.path.exists(partial)


@pytest.mark.slow
def test_concurrent_processes_download_once(emulator, drive_env, tmp_path):
    data = os.urandom(8 * CHUNK)
    emulator.add_file("ddp/shard.bin", data)
    emulator.faults.latency(0.05, method="GET", path=r"alt=media")
    dest = tmp_path / "data"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "drivestage", "pull", "drive:ddp/shard.bin", str(dest),
         "--json", "-q", "--chunk-size", str(CHUNK)],
        env=_env(emulator), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1] for o in outs]
    actions = sorted(json.loads(o[0])["action"] for o in outs)
    assert actions == ["cached", "cached", "download"]
    assert (dest / "shard.bin").read_bytes() == data
    assert sum(r.bytes_out for r in _media(emulator)) == len(data)
