"""bench/plainserver.py: the independent Drive-v2 look-alike bench/pull.py compares against.

Its ranges must be right (a wrong 206 or 416 would make the benchmark measure a broken
download), and the unchanged drivestage client must stage from it through
``DRIVESTAGE_API_ROOT`` + ``drive:id:<ID>``.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from _forkcli import cli_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from plainserver import PlainDrive  # noqa: E402

AUTH = {"Authorization": "Bearer x"}


@pytest.fixture
def blob(tmp_path):
    data = os.urandom(300_001)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    return path, data


def _get(srv: PlainDrive, path: str, headers: dict) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_ranges_statuses_and_metadata(blob):
    path, data = blob
    size = len(data)
    with PlainDrive(str(path), file_id="F1") as srv:
        media = "/drive/v2/files/F1?alt=media&supportsAllDrives=true"
        status, headers, body = _get(srv, media, AUTH)
        assert (status, body, headers["content-length"]) == (200, data, str(size))
        cases = {
            "bytes=5-9": (5, 9), "bytes=-4": (size - 4, size - 1),
            f"bytes={size - 3}-": (size - 3, size - 1), f"bytes=10-{size + 99}": (10, size - 1),
        }
        for rng, (a, b) in cases.items():
            status, headers, body = _get(srv, media, dict(AUTH, Range=rng))
            assert status == 206, rng
            assert headers["content-range"] == f"bytes {a}-{b}/{size}", rng
            assert body == data[a:b + 1], rng
        for rng in (f"bytes={size}-", f"bytes={size + 5}-{size + 9}", "bytes=-0"):
            status, headers, body = _get(srv, media, dict(AUTH, Range=rng))
            assert status == 416, rng
            assert headers["content-range"] == f"bytes */{size}", rng
            assert json.loads(body)["error"]["code"] == 416
        for rng in ("bytes=9-5", "bytes=0-1,4-5", "items=0-5"):  # not one valid range: ignored
            status, _, body = _get(srv, media, dict(AUTH, Range=rng))
            assert (status, body) == (200, data), rng
        status, _, body = _get(srv, "/drive/v2/files/F1?alt=json", AUTH)
        res = json.loads(body)
        assert status == 200
        assert (res["id"], res["title"], res["fileSize"], res["md5Checksum"]) == \
            ("F1", "blob.bin", str(size), hashlib.md5(data).hexdigest())
        # pull verifies with the SHA-256 where this CPU hashes it faster (drivestage.checksums)
        assert (res["sha1Checksum"], res["sha256Checksum"]) == \
            (hashlib.sha1(data).hexdigest(), hashlib.sha256(data).hexdigest())
        assert res["labels"]["trashed"] is False and res["parents"][0]["id"] == "root"
        assert res["downloadUrl"].startswith(srv.url + "drive/v2/files/F1?alt=media")
        assert _get(srv, "/drive/v2/files/OTHER?alt=media", AUTH)[0] == 404
        assert _get(srv, media, {})[0] == 401
        counts = srv.counts()
    assert counts["media"] == 1 + len(cases) + 3 + 3  # the 404 and the 401 are not media
    assert counts["metadata"] == 1


def test_ttfb_and_link_hold_every_answer_back(blob):
    path, data = blob
    with PlainDrive(str(path), ttfb=0.15, link=1e6) as srv:
        began = time.monotonic()
        status, _, body = _get(srv, "/drive/v2/files/plainfile0001?alt=media", AUTH)
        took = time.monotonic() - began
    assert (status, body) == (200, data)
    assert took >= 0.15 + len(data) / 1e6 * 0.9  # 0.15 s to first byte, then ~0.3 s of body


@pytest.fixture(scope="session")
def cli():
    """``python -m drivestage`` forked with its imports done (tests/_forkcli.py)."""
    return cli_server()


def test_drivestage_pull_extract_stages_from_it(tmp_path, cli):
    members = {f"VOC/JPEGImages/{i:03d}.jpg": os.urandom(20_000 + i) for i in range(12)}
    zpath = tmp_path / "voc.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    dest = tmp_path / "dest"
    with PlainDrive(str(zpath), file_id="Z1") as srv:
        env = dict(os.environ, DRIVESTAGE_API_ROOT=srv.url, DRIVESTAGE_TOKEN="x",
                   DRIVESTAGE_STATE_DIR=str(tmp_path / "state"), DRIVESTAGE_RETRY_ATTEMPTS="2")
        cmd = ["pull", "drive:id:Z1", str(dest),
               "--extract", "--json", "-q", "--jobs", "3", "--chunk-size", "65536"]
        first = cli.run(cmd, env=env, text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        after_first = srv.counts()
        again = cli.run(cmd, env=env, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        after_again = srv.counts()
    summary = json.loads(first.stdout)
    assert (summary["action"], summary["md5"], summary["members"]) == \
        ("download", hashlib.md5(zpath.read_bytes()).hexdigest(), len(members))
    assert (dest / "voc.zip").read_bytes() == zpath.read_bytes()
    for name, body in members.items():
        assert (dest / name).read_bytes() == body
    # 64 KiB ranged GETs: one media request per chunk, one metadata call.
    size = zpath.stat().st_size
    assert after_first["media"] == -(-size // 65536)
    assert after_first["metadata"] == 1 and after_first["bytes"] == size
    assert json.loads(again.stdout)["action"] == "cached"
    assert (after_again["metadata"] - after_first["metadata"],
            after_again["media"] - after_first["media"]) == (1, 0)


@pytest.mark.slow
def test_pull_bench_runs_against_both_servers_and_finds_every_phase(tmp_path):
    # `make bench` runs bench/pull.py; a renamed drivestage function must not silently drop
    # a part of the breakdown (pull_phases names what it could not find).
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[1] / "bench" / "pull.py"),
         "--size-mib", "1", "--members", "40", "--streams", "", "--ttfb", "0.05",
         "--link", "50", "--workdir", str(tmp_path / "bench"), "--clean", "--json",
         # each of its 22 drivestage runs forked with the imports done (tests/_forkcli.py):
         # what is tested is that every part runs and is reported, not its numbers
         "--fork-server"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "phases not found" not in proc.stdout
    assert "waiting" not in proc.stderr  # no earlier run deleted trees in its folder
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(results["servers"]) == {"emulator", "plain"}
    for name, res in results["servers"].items():
        assert res["rerun_calls"] == 1, name          # one metadata call, no media
        # 1 MiB: the zip's central directory first (its last 1 %), then one ranged GET for
        # the rest, on one stream (too small to measure whether more streams help).
        assert res["media_requests"] == 2, name
        assert res["parts"]["download_s"] > 0 and res["parts"]["extract_lib_s"] > 0, name
        # Over the link, pull --extract against the pull of the same model (issue 15).
        assert res["link_vs_curl"]["extract ttfb 0.05"] > 0, name
    assert "pull --extract / download + verify over the link: ttfb 0.05 s" in proc.stdout
    assert "pull -x / pull over the link, ttfb 0.05 s" in proc.stdout
    assert not (tmp_path / "bench").exists()


@pytest.mark.slow
def test_pull_bench_streams_only_reports_the_link_ratio_and_leaves_no_marker(tmp_path):
    # --streams-only (issue 12's ratio alone) extracts nothing, so it neither waits for an
    # earlier run's deletions nor makes the next run wait for its own.
    work = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[1] / "bench" / "pull.py"),
         "--size-mib", "1", "--members", "40", "--streams", "1", "--ttfb", "0.05",
         "--link", "50", "--workdir", str(work), "--streams-only", "--json", "--fork-server"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(results["servers"]) == {"emulator", "plain"}
    for name, res in results["servers"].items():
        assert set(res["link_vs_curl"]) == {"ttfb 0.05"} and res["link_vs_curl"]["ttfb 0.05"] > 0
    assert "pull vs curl over the link, ttfb 0.05 s" in proc.stdout
    assert not (work / ".trees-deleted-at").exists()
    assert sorted(os.listdir(work)) == ["voc-1048576-40.zip"]


@pytest.mark.slow
def test_pull_bench_waits_after_an_earlier_run_deleted_its_trees(tmp_path):
    # On ext4 without a journal, creating files just after deleting thousands costs up to
    # 40x more (recently freed inodes are scanned on every create): a run that deleted its
    # trees says when, and the next one waits (here at most 1 s) before it measures.
    # The wait comes before the rounds and the marker after them: no round here (--repeat 0;
    # test_pull_bench_runs_against_both_servers_and_finds_every_phase measures a whole one).
    work = tmp_path / "bench"
    argv = [sys.executable, str(Path(__file__).resolve().parents[1] / "bench" / "pull.py"),
            "--size-mib", "1", "--members", "40", "--streams", "", "--link", "0",
            "--server", "plain", "--workdir", str(work), "--repeat", "0"]
    # What an earlier run left (one run less than running it: a run with no marker does
    # not wait, test_pull_bench_runs_against_both_servers_and_finds_every_phase).
    work.mkdir()
    earlier = time.time()
    (work / ".trees-deleted-at").write_text(repr(earlier))
    run = subprocess.run(argv + ["--settle", "1"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "an earlier run deleted its trees" in run.stderr
    assert "waiting 1 s for that to pass" in run.stderr
    # ... and it says when it deleted its own.
    deleted_at = float((work / ".trees-deleted-at").read_text())
    assert earlier + 1 <= deleted_at <= time.time()
    assert sorted(os.listdir(work)) == [".trees-deleted-at", "voc-1048576-40.zip"]
