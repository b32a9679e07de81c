"""A server that says it has every byte of an upload but never completes it (attackhs31).

Each chunk of a resumable upload is answered "308 Resume Incomplete" with a ``Range`` that
covers the whole file: the server kept every byte, yet never answers with the file. A broken
proxy or a server that lost the session's completion does this. Counted as progress each
time, it made a push send requests without end (hundreds a second, for ever); it must stop
after a few answers, in one line that says what the server did. In-process against the
emulator behind tests/_proxy.py.
"""
from __future__ import annotations

import itertools
import os

import pytest

from _proxy import Reply
from drivestage.errors import RemoteError

#: The proxy stops answering 308 after this many, so a client that never ends fails the test
#: instead of hanging it.
LIMIT = 60


@pytest.fixture
def hostile_store(proxy, local_state, monkeypatch):
    from drivestage.drive import connect

    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "5")
    return connect(api_root=proxy.url, token="test-token")


def _all_kept_never_done(size: int):
    """Every chunk (and status query) answered "resume incomplete, bytes 0..size-1 kept"."""
    counter = itertools.count(1)

    def mutate(status, headers, body):
        if next(counter) > LIMIT:
            return Reply(400, {"Content-Length": "0"}, [b""])
        return Reply(308, {"Content-Length": "0", "Range": f"bytes=0-{size - 1}"}, [b""])
    return mutate


def _completion_lost(size: int):
    """The emulator stores every chunk; its answer that completes the upload (200, and 200
    to every status query after it) reaches the client as "resume incomplete, all kept"."""
    all_kept = _all_kept_never_done(size)

    def mutate(status, headers, body):
        return all_kept(status, headers, body) if status in (200, 201) \
            else Reply(status, headers, [body])
    return mutate


@pytest.mark.parametrize("forward", [True, False], ids=["stored-then-308", "never-stored"])
def test_an_upload_the_server_has_whole_but_never_completes_is_given_up(
        emulator, proxy, hostile_store, tmp_path, forward):
    from drivestage.drive.upload import MAX_STALLED_CHUNKS

    size = 600 << 10
    path = tmp_path / "epoch_001.pt"
    path.write_bytes(os.urandom(size))
    folder = hostile_store.make_folders("Models/logs")
    if forward:
        proxy.on("PUT", r"upload_id=", _completion_lost(size))
    else:
        proxy.on("PUT", r"upload_id=", _all_kept_never_done(size), forward=False)
    with pytest.raises(RemoteError) as caught:
        hostile_store.upload(str(path), folder, "epoch_001.pt", chunk_size=256 << 10)
    line = str(caught.value)
    assert "\n" not in line
    assert f"epoch_001.pt: Drive says it has all {size} bytes of it" in line, line
    assert "never completes the upload" in line and "Try the push again later" in line
    # A few answers, not hundreds: the file's 3 chunks, then the stalled answers.
    assert proxy.count("PUT", "upload_id=") <= 3 + MAX_STALLED_CHUNKS + 1


def _last_answer(body: bytes):
    """The answer that completes the upload (200) reaches the client with ``body`` instead
    of the File resource (a proxy's page, nothing, an object that is no file)."""
    def mutate(status, headers, old):
        if status not in (200, 201):
            return Reply(status, headers, [old])
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(body))
        return Reply(status, out, [body])
    return mutate


@pytest.mark.parametrize("body", [b"<html><body>Upload complete</body></html>", b"", b"{}",
                                  b'{"id": 5}'], ids=["html", "empty", "object", "bad-id"])
def test_an_upload_completed_with_no_file_in_the_answer_is_one_line_naming_it(
        emulator, proxy, local_state, monkeypatch, tmp_path, body):
    import _cli
    from _messages import error_line

    monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
    monkeypatch.setenv("DRIVESTAGE_TOKEN", "test-token")
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(os.urandom(600 << 10))
    proxy.on("PUT", r"upload_id=", _last_answer(body))
    code, out, err = _cli.run("push", str(src), "drive:Models/logs", "--chunk-size", "256KiB")
    assert code == 1, err[-2000:]
    assert "Traceback" not in err
    line = error_line(err)
    assert line.startswith("Error: uploading ") and "epoch_001.pt" in line, line
    assert "is --api-root / DRIVESTAGE_API_ROOT a Drive API?" in line, line
