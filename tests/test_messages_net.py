"""docs/troubleshooting.md, "Rate limits and flaky connections": each message made to happen
(see tests/_messages.py).

The commands run in this process (click's CliRunner) against the emulator; answers Drive
never gives (a body longer than asked, a trickle, a looping page token, an upload that never
moves) come from the emulator behind the mutating proxy of tests/_proxy.py.
"""
from __future__ import annotations

import itertools
import json
import os
import socket

import pytest

import _proxy
from _envs import env_user_lines_two_tries  # noqa: F401  (a fixture)
from _messages import command_error as error
from _messages import renders, shown
from _proxy import Proxy, Reply
from drivestage.drive import paging

TEACHER = "teacher@school.edu"


@pytest.fixture
def proxy(emulator, env, monkeypatch):
    """The emulator behind tests/_proxy.py; the commands talk to the proxy."""
    with Proxy(emulator.url) as p:
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", p.url)
        yield p


def _logs(tmp_path, size: int = 1000) -> str:
    src = tmp_path / "logs"
    src.mkdir(exist_ok=True)
    (src / "epoch_001.pt").write_bytes(os.urandom(size))
    return str(src)


# --------------------------------------------------------------------------- transfers

@renders("the answer is too slow (", "still failing after … attempts")
def test_a_download_that_trickles_is_asked_again_then_given_up(emulator, proxy, tmp_path,
                                                               monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "0.5")
    emulator.add_file("data/f.bin", os.urandom(256 << 10))
    proxy.on("GET", r"alt=media", _proxy.trickle(0.02))
    line = error("pull", "-q", "drive:data/f.bin", str(tmp_path / "d"))
    shown("the answer is too slow (", line)
    shown("still failing after … attempts", line)
    assert "still failing after 2 attempts" in line
    assert proxy.count("GET", "alt=media") == 2
    assert not (tmp_path / "d" / "f.bin").exists()


@renders("the answer is a web page ('…'), not Drive's: something between here and Drive "
         "answers in its place")
def test_a_web_page_answered_with_a_success(emulator, proxy, tmp_path):
    page = b"<html><title>Access denied</title><body>Cloud storage is blocked</body></html>"
    emulator.add_file("data/f.bin", os.urandom(3000))
    proxy.on("GET", r"^/drive/v2/files\?", lambda status, headers, body: Reply(
        200, {"Content-Type": "text/html", "Content-Length": str(len(page))}, [page]))
    line = error("pull", "-q", "drive:data/f.bin", str(tmp_path / "d"))
    shown("the answer is a web page ('…'), not Drive's: something between here and Drive "
          "answers in its place", line)
    assert "('<html> Access denied Cloud storage is blocked')" in line, line
    assert proxy.count("GET", r"^/drive/v2/files\?") == 1   # not retried
    assert not (tmp_path / "d").exists() or not (tmp_path / "d" / "f.bin").exists()


@renders("is longer than that (")
def test_a_download_answer_longer_than_the_range(emulator, proxy, tmp_path):
    emulator.add_file("data/f.bin", os.urandom(3000))
    proxy.on("GET", r"alt=media", _proxy.oversized(1000))
    line = error("pull", "-q", "drive:data/f.bin", str(tmp_path / "d"))
    shown("is longer than that (", line)
    assert "bytes 0-2999 is longer than that (3000000 bytes announced)" in line
    assert proxy.count("GET", "alt=media") == 1  # not retried: Drive never does this
    assert not (tmp_path / "d" / "f.bin").exists()


@renders("is not a number")
def test_a_retry_setting_that_is_not_a_number(emulator, env, monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "fast")
    line = error("ls", "drive:", code=2)
    shown("is not a number", line)
    assert line == "Error: DRIVESTAGE_RETRY_BASE='fast' is not a number"
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "-1")
    assert error("ls", "drive:", code=2).endswith("'-1' must not be negative")
    monkeypatch.delenv("DRIVESTAGE_RETRY_BASE")
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "0")
    assert error("ls", "drive:", code=2) == ("Error: DRIVESTAGE_RETRY_ATTEMPTS='0' must be at "
                                             "least 1 (attempts per Drive request, 8 by "
                                             "default)")
    assert emulator.requests == []


@renders("has used all its Drive API requests for today")
def test_the_projects_daily_request_quota(emulator, env):
    emulator.add_file("data/a.zip", b"zip")
    emulator.set_api_quota(None, requests_per_day=0)
    line = error("ls", "drive:data")
    shown("has used all its Drive API requests for today", line)
    assert len(emulator.requests) == 1  # not retried


# --------------------------------------------------------------------------- not Drive's answers

def _listing(change):
    """A proxy mutation: the emulator's listing changed by ``change(body) -> body or bytes``."""
    def mutate(status, headers, body):
        data = change(json.loads(body))
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(raw))
        return Reply(status, out, [raw])
    return mutate


def _size_lots(body):
    for item in body.get("items", []):
        item["fileSize"] = "lots"
    return body


@renders("the server answered malformed metadata for item")
def test_an_item_with_a_size_that_is_not_a_number(emulator, proxy, tmp_path):
    emulator.add_file("data/a.bin", b"a")
    proxy.on("GET", r"^/drive/v2/files\?", _listing(_size_lots))
    line = error("ls", "drive:data")
    shown("the server answered malformed metadata for item", line)
    assert "(fileSize 'lots')" in line


@renders("the server's answer is not what Drive sends")
def test_a_listing_that_is_not_json(emulator, proxy, tmp_path):
    emulator.add_file("data/a.bin", b"a")
    proxy.on("GET", r"^/drive/v2/files\?", _listing(lambda body: b"<html>all good</html>"))
    line = error("ls", "drive:data")
    shown("the server's answer is not what Drive sends", line)


@renders("answered with a session address on …, another server")
def test_an_upload_session_on_another_server_gets_nothing(emulator, env, tmp_path,
                                                          monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", emulator.url)
    emulator.faults.relocate_sessions("http://127.0.0.1:9", times=None)
    line = error("push", _logs(tmp_path), "drive:Models/run")
    shown("answered with a session address on …, another server", line)
    assert "on http://127.0.0.1:9, another server; nothing was sent there" in line
    assert [r for r in emulator.requests if r.method == "PUT"] == []


# --------------------------------------------------------------------------- failures that persist

@renders("still failing after … attempts")
def test_a_503_that_never_ends(emulator, env, tmp_path):
    emulator.add_file("data/f.bin", os.urandom(2000))
    emulator.faults.inject(method="GET", path=r"alt=media", status=503, times=None)
    line = error("pull", "-q", "drive:data/f.bin", str(tmp_path / "d"))
    shown("still failing after … attempts", line)
    assert "still failing after 2 attempts (503 backendError" in line
    assert [r.status for r in emulator.requests if r.kind == "media.download"] == [503, 503]


@renders("connection refused; is the server running?")
def test_nothing_listens_at_the_api_root(env, monkeypatch):
    with socket.socket() as bound:  # bound, never listening: a connection is refused
        bound.bind(("127.0.0.1", 0))
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", f"http://127.0.0.1:{bound.getsockname()[1]}/")
        line = error("ls", "drive:")
    shown("connection refused; is the server running?", line)


@renders("cannot reach the server (")
def test_a_host_name_that_does_not_resolve(env, monkeypatch):
    # .invalid never resolves (RFC 6761): the resolver says so at once, no network needed.
    monkeypatch.setenv("DRIVESTAGE_API_ROOT", "http://drivestage-test.invalid:8765/")
    line = error("ls", "drive:")
    shown("cannot reach the server (", line)


@renders("Drive answered")
def test_an_http_error_without_specific_advice(emulator, env):
    emulator.faults.inject(method="GET", path=r"^/drive/v2/files/", status=400,
                           reason="badRequest", times=None)
    line = error("ls", "drive:id:0BwwA4oUTeiV1TGRPeTVjaWRDY1E")
    shown("Drive answered", line)
    assert "Drive answered HTTP 400 badRequest: " in line
    assert len(emulator.requests) == 1  # a 400 is not retried


# --------------------------------------------------------------------------- loops bounded

@renders("Drive sent the same page token twice")
def test_a_listing_whose_page_token_repeats(emulator, proxy):
    for i in range(3):
        emulator.add_file(f"data/f{i}.txt", b"x")
    proxy.on("GET", r"^/drive/v2/files\?", _proxy.repeat_page_token)
    proxy.rewrite(r"&pageToken=" + _proxy.REPEATED_TOKEN, "")
    line = error("ls", "drive:data")
    shown("Drive sent the same page token twice", line)


def _fresh_page_tokens():
    """Every listing page says there is one more, each time with a new token."""
    counter = itertools.count()

    def change(body):
        body["nextPageToken"] = f"token-{next(counter)}"
        return body
    return _listing(change)


@renders("more than … pages, more than a Drive folder can hold")
def test_a_listing_that_never_runs_out_of_page_tokens(emulator, proxy, monkeypatch):
    monkeypatch.setattr(paging, "MAX_PAGES", 5)  # Drive's bound is 1000: the same rule, sooner
    emulator.add_file("data/f.txt", b"x")
    proxy.on("GET", r"^/drive/v2/files\?", _fresh_page_tokens())
    proxy.rewrite(r"&pageToken=token-\d+", "")
    line = error("ls", "drive:data")
    shown("more than … pages, more than a Drive folder can hold", line)
    assert "more than 5 pages" in line


@renders("Drive kept little or none of the last … chunks")
def test_an_upload_the_server_never_moves_forward(emulator, proxy, tmp_path):
    proxy.on("PUT", r"upload_id=", _proxy.no_progress_308, forward=False)
    line = error("push", _logs(tmp_path), "drive:Models/run")
    shown("Drive kept little or none of the last … chunks", line)
    assert emulator.find("Models/run/epoch_001.pt") is None


def _past_the_end(status, headers, body):
    return Reply(308, {"Content-Length": "0", "Range": f"bytes=0-{10 << 20}"}, [b""])


@renders("past the end; stopped")
def test_an_upload_the_server_says_went_past_the_end(emulator, proxy, tmp_path):
    proxy.on("PUT", r"upload_id=", _past_the_end, forward=False)
    line = error("push", _logs(tmp_path), "drive:Models/run")
    shown("past the end; stopped", line)
    assert "the server says it kept 10485761 bytes of a 1000-byte file, past the end" in line
    assert proxy.count("PUT", "upload_id=") == 1
    assert emulator.find("Models/run/epoch_001.pt") is None


@renders("the upload session for … vanished twice")
def test_an_upload_session_that_vanishes_twice(emulator, env, tmp_path):
    emulator.faults.inject(method="PUT", path=r"upload_id=", status=404, times=2)
    line = error("push", _logs(tmp_path), "drive:Models/run")
    shown("the upload session for … vanished twice", line)
    assert emulator.api_calls("media.upload") == 2
    assert emulator.find("Models/run/epoch_001.pt") is None


# --------------------------------------------------------------------------- access

def _without_capabilities(status: int, headers: dict, body: bytes) -> Reply:
    """Metadata as a server answers it that reports no ``capabilities``."""
    try:
        data = json.loads(body)
    except ValueError:
        return Reply(status, headers, [body])
    for res in [data] + list(data.get("items") or []):
        if isinstance(res, dict):
            res.pop("capabilities", None)
    out = json.dumps(data).encode()
    headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    return Reply(status, dict(headers, **{"Content-Length": str(len(out))}), [out])


@renders("permission denied (")
def test_a_push_into_a_folder_shared_read_only(emulator, proxy, tmp_path):
    # Drive's capabilities say so before any write ("is shared with you read-only":
    # test_messages_sharing); a server that does not report them answers the write with 403.
    proxy.on("GET", r"^/drive/v2/files", _without_capabilities)
    theirs = emulator.add_folder("Runs", owner=TEACHER, shared_with_me="reader")
    emulator.add_shortcut("Runs", theirs)
    line = error("push", _logs(tmp_path), "drive:Runs/me")
    shown("permission denied (", line)
    assert "permission denied (HTTP 403 forbidden: Insufficient permissions for the " \
           "specified parent.)" in line
    assert emulator.find("Runs/me", owner=TEACHER) is None


@renders("not found (no item named")
def test_a_path_that_does_not_exist(emulator, env):
    emulator.add_folder("data")
    line = error("ls", "drive:data/VOC07.zip")
    shown("not found (no item named", line)
    assert "no item named 'VOC07.zip' in drive:data" in line


@renders("not found on Drive (")
def test_an_id_that_does_not_exist(emulator, env, tmp_path):
    line = error("pull", "-q", "drive:id:0BwwA4oUTeiV1TGRPeTVjaWRDY1E", str(tmp_path / "d"))
    shown("not found on Drive (", line)
    assert "(HTTP 404 notFound" in line
