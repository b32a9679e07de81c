"""Bounds on every loop that talks to Drive, against a server that never stops (attack 20):
error answers whose body trickles, a Retry-After of a day, redirects in a loop, upload
sessions that keep a sliver of each chunk, folders nested without end. Each command ends
within a bound counted in requests, with one ``Error:`` line, exit 1, and nothing lost."""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess

import pytest

import _proxy
from _drive_state import live_md5s
from _forkcli import cli_server
from _proxy import Proxy, Reply
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)

#: Seconds a correct client needs at most here (short timeouts, millisecond retries).
DEADLINE = 30


def _run(proxy: Proxy, tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = dict(os.environ, DRIVESTAGE_API_ROOT=proxy.url, DRIVESTAGE_TOKEN="test-token",
                DRIVESTAGE_STATE_DIR=str(tmp_path / "state"), DRIVESTAGE_RETRY_ATTEMPTS="3",
                DRIVESTAGE_RETRY_BASE="0.01", DRIVESTAGE_RETRY_CAP="0.05",
                DRIVESTAGE_HTTP_TIMEOUT="1")
    full.update(env)
    return cli_server().run(list(args), env=full, text=True, timeout=DEADLINE)


def _one_error_line(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 1, (res.returncode, res.stderr[-2000:])
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("Error: "), res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    return lines[-1]


def _error_trickle(status: int, headers: dict, body: bytes) -> Reply:
    """A 503 whose body never ends, a byte at a time, each well within the socket timeout."""
    def forever():
        yield b"<html>"
        while True:
            yield b" "
    return Reply(503, {"Content-Type": "text/html"}, forever(), pace=0.02)


def test_a_download_error_whose_body_trickles_for_ever_fails_the_pull(emulator, proxy, tmp_path):
    emulator.add_file("data/f.bin", os.urandom(100 << 10))
    proxy.on("GET", r"alt=media", _error_trickle, forward=False)
    # (A byte each 0.02 s, within a timeout of 0.4 s; each attempt is given up once it has
    # read for that long in all: 1 s each was 3 s of the suite's waiting.)
    res = _run(proxy, tmp_path, "pull", "drive:data/f.bin", str(tmp_path / "dest"),
               DRIVESTAGE_HTTP_TIMEOUT="0.4")
    line = _one_error_line(res)
    assert "still failing after 3 attempts" in line, line
    assert proxy.count("GET", "alt=media") == 3
    assert not (tmp_path / "dest" / "f.bin").exists()


def _loop_redirect(status: int, headers: dict, body: bytes) -> Reply:
    return Reply(302, {"Location": "/drive/v2/files?loop=1", "Content-Length": "0"}, [b""])


def test_redirects_in_a_loop_end_the_command_with_one_line(emulator, proxy, tmp_path):
    emulator.add_file("data/f.txt", b"x")
    proxy.on("GET", r"^/drive/v2/files", _loop_redirect, forward=False)
    res = _run(proxy, tmp_path, "ls", "drive:data")
    line = _one_error_line(res)
    assert "redirects that lead nowhere" in line, line
    assert proxy.count("GET", r"^/drive/v2/files") == 6  # httplib2's five redirects, no retry


def _retry_after(value: str):
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        data = json.dumps({"error": {"code": 429, "message": "Rate Limit Exceeded",
                                     "errors": [{"reason": "rateLimitExceeded",
                                                 "message": "Rate Limit Exceeded"}]}}).encode()
        return Reply(429, {"Retry-After": value, "Content-Type": "application/json",
                           "Content-Length": str(len(data))}, [data])
    return mutate


@pytest.mark.parametrize("value", ["86400", "-5", "soon", "nan", "1e999",
                                   "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_rate_limit_for_ever_with_any_retry_after_ends_after_the_attempts(
        emulator, proxy, hostile_store, monkeypatch, value):
    """429 on every request, with a Retry-After of a day, negative, garbage or past any
    float: every wait is at most DRIVESTAGE_RETRY_AFTER_MAX (or the backoff), and the
    listing fails after DRIVESTAGE_RETRY_ATTEMPTS requests."""
    from drivestage.drive import retry
    from drivestage.errors import RemoteError

    waits: list[float] = []
    monkeypatch.setattr(retry, "_sleep", waits.append)
    monkeypatch.setenv("DRIVESTAGE_RETRY_AFTER_MAX", "7")
    emulator.add_file("data/f.txt", b"x")
    folder = hostile_store.resolve("data")
    before = proxy.count("GET", r"^/drive/v2/files\?")
    proxy.on("GET", r"^/drive/v2/files\?", _retry_after(value), forward=False)
    with pytest.raises(RemoteError, match="still failing after 3 attempts"):
        hostile_store.list(folder)
    assert proxy.count("GET", r"^/drive/v2/files\?") - before == 3
    assert len(waits) == 2 and all(0 <= w <= 7 for w in waits), waits


def _bottomless(template: dict):
    """Every folder listed holds one more folder with a new id, for ever (a listing that
    holds items, a search by name, passes as the emulator answers it)."""
    counter = itertools.count()

    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        obj = json.loads(body)
        if not obj.get("items"):
            n = next(counter)
            # In the folder listed (liar22: an item of another folder is refused).
            parent = template["id"] if n == 0 else f"deep{n - 1}x"
            obj["items"] = [dict(template, id=f"deep{n}x", title=f"d{n}",
                                 parents=[{"id": parent, "isRoot": False}])]
        data = json.dumps(obj).encode()
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(data))
        return Reply(status, out, [data])
    return mutate


def test_a_folder_pull_into_folders_nested_without_end_stops(emulator, proxy, tmp_path,
                                                            local_state, monkeypatch):
    from _cli import run
    from drivestage import stage_walk

    monkeypatch.setattr(stage_walk, "MAX_DEPTH", 6)  # 1000 by default: the same rule, sooner
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    emulator.add_folder("data")
    proxy.on("GET", r"^/drive/v2/files\?.*in(\+|%20)parents", _bottomless(emulator.find("data")))
    code, _, err = run("pull", "drive:data", str(tmp_path / "dest"))
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("Error: drive:data/d0/d1/d2/d3/d4/d5: folders nested more than 6 "
                           "deep"), line
    assert proxy.count("GET", r"in(\+|%20)parents") <= 8
    assert not (tmp_path / "dest").exists() or not any((tmp_path / "dest").iterdir())


@pytest.fixture
def hostile_store(proxy, local_state, monkeypatch):
    from drivestage.drive import connect

    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "5")
    return connect(api_root=proxy.url, token="test-token")


def _sliver_308():
    """Every chunk answered "resume incomplete", the server keeping one chunk unit (256 KiB)
    more each time, however much the chunk held: progress, for ever, at a price."""
    kept = itertools.count(1)

    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        return Reply(308, {"Content-Length": "0",
                           "Range": f"bytes=0-{next(kept) * (256 << 10) - 1}"}, [b""])
    return mutate


def test_an_upload_that_keeps_a_sliver_of_each_chunk_is_given_up(emulator, proxy, hostile_store,
                                                                 tmp_path):
    from drivestage.drive.upload import MAX_STALLED_CHUNKS
    from drivestage.errors import RemoteError

    path = tmp_path / "epoch_001.pt"
    path.write_bytes(os.urandom(8 << 20))
    folder = hostile_store.make_folders("Models/logs")
    proxy.on("PUT", r"upload_id=", _sliver_308(), forward=False)
    with pytest.raises(RemoteError, match="Drive kept little or none of the last 5 chunks"):
        hostile_store.upload(str(path), folder, "epoch_001.pt", chunk_size=8 << 20)
    # Before: 32 chunks of up to 8 MiB (132 MiB sent for an 8 MiB file).
    assert proxy.count("PUT", "upload_id=") == MAX_STALLED_CHUNKS
    assert emulator.find("Models/logs/epoch_001.pt") is None


def _half_308(size: int):
    """Every 1 MiB chunk answered "resume incomplete", the server keeping half of it; refused
    (400) once it would have kept the whole file, so that the test ends either way."""
    counter = itertools.count(1)

    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        kept = next(counter) * (512 << 10)
        if kept >= size:
            return Reply(400, {"Content-Length": "0"}, [b""])
        return Reply(308, {"Content-Length": "0", "Range": f"bytes=0-{kept - 1}"}, [b""])
    return mutate


def test_an_upload_whose_server_keeps_half_of_each_chunk_still_progresses(emulator, proxy,
                                                                          hostile_store,
                                                                          tmp_path):
    """Half a chunk is progress (twice the file's bytes sent at most): not a stall."""
    from drivestage.errors import RemoteError

    path = tmp_path / "epoch_001.pt"
    path.write_bytes(os.urandom(4 << 20))
    folder = hostile_store.make_folders("Models/logs")
    proxy.on("PUT", r"upload_id=", _half_308(4 << 20), forward=False)
    with pytest.raises(RemoteError, match="HTTP 400"):
        hostile_store.upload(str(path), folder, "epoch_001.pt", chunk_size=1 << 20)
    assert proxy.count("PUT", "upload_id=") == 8


def _unavailable(status: int, headers: dict, body: bytes) -> Reply:
    data = json.dumps({"error": {"code": 503, "message": "Backend Error",
                                 "errors": [{"reason": "backendError",
                                             "message": "Backend Error"}]}}).encode()
    return Reply(503, {"Content-Type": "application/json",
                       "Content-Length": str(len(data))}, [data])


@pytest.mark.parametrize("jobs", [1, 4])
def test_a_push_under_503_for_ever_stops_after_two_uploads_give_up(emulator, proxy,
                                                                         tmp_path, jobs):
    """Every upload answered 503: once two files' retries ran out in a row, the push starts no
    other upload (before: each of the other files ran through its own retries, about 95 s of
    waits each at default settings: hours for a log folder). Drive keeps what it had; the
    error names the first failure and says how many files were left for the next push."""
    emulator.add_file("runs/a/f00.txt", b"old")
    src = tmp_path / "run"
    src.mkdir()
    for i in range(12):
        (src / f"f{i:02d}.txt").write_bytes(b"new %d" % i)
    proxy.on("POST", r"^/upload/", _unavailable, forward=False)
    proxy.on("PUT", r"^/upload/", _unavailable, forward=False)
    res = _run(proxy, tmp_path, "push", str(src), "drive:runs/a", "--jobs", str(jobs))
    line = _one_error_line(res)
    assert "still failing after 3 attempts" in line, line
    sent = proxy.count("POST", r"^/upload/") + proxy.count("PUT", r"^/upload/")
    # Two uploads given up in a row halt it (one file's own failure does not,
    # test_attack20_push): at most one more starts while the first's failure stands alone;
    # the uploads under way then end their own retries.
    assert 6 <= sent <= 3 * (jobs + 1), sent
    assert "files not sent: Drive kept failing" in res.stderr, res.stderr[-2000:]
    assert live_md5s(emulator, "runs/a") == {"f00.txt": [hashlib.md5(b"old").hexdigest()]}


def test_a_dedupe_into_folders_nested_without_end_stops_saying_so(emulator, proxy, tmp_path,
                                                                 local_state, monkeypatch):
    """dedupe walks every folder below DEST for same-named folders. Past Drive's own limit
    it stopped walking without a word and exited 0, as if the tree below had been merged."""
    from _cli import run
    from drivestage import dedupe

    monkeypatch.setattr(dedupe, "MAX_DEPTH", 4)  # Drive's 100: the same rule, sooner
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    emulator.add_folder("data")
    proxy.on("GET", r"^/drive/v2/files\?.*in(\+|%20)parents", _bottomless(emulator.find("data")))
    code, _, err = run("dedupe", "drive:data")
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("Error: drive:data/d"), line
    assert "folders nested more than 4 deep" in line, line
    assert proxy.count("GET", r"in(\+|%20)parents") <= 8
