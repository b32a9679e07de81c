"""attack25: answers to a batch of deletes that are not Drive's (a proxy or look-alike in
front of Drive: tests/_proxy.py rewrites the emulator's multipart answer). Whatever shape the
answer has, a prune ends with exactly the planned files gone, reports none kept that went,
and never acts on a call's answer it cannot tie to that call."""
from __future__ import annotations

import re

import pytest

import _cli
from _proxy import Proxy, Reply
from test_prune24_twice import _live, env  # noqa: F401 (a fixture)


def _parts(headers: dict, body: bytes) -> tuple[bytes, list[bytes]]:
    ctype = {k.lower(): v for k, v in headers.items()}["content-type"]
    boundary = re.search(r'boundary="?([^";]+)', ctype).group(1).encode()
    return boundary, body.split(b"--" + boundary)[1:-1]


def _join(headers: dict, boundary: bytes, parts: list[bytes]) -> tuple[dict, bytes]:
    out = b"".join(b"--" + boundary + p for p in parts) + b"--" + boundary + b"--\r\n"
    kept = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    return {**kept, "Content-Length": str(len(out))}, out


def _html(headers, boundary, parts):
    body = b"<html><body>Service temporarily rerouted</body></html>"
    return {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body))}, body


def _missing(headers, boundary, parts):
    return _join(headers, boundary, parts[1:])


def _stranger(headers, boundary, parts):
    first = parts[0]
    cid = re.search(rb"Content-ID: <response-([^+>]*)\+", first).group(1)
    extra = (b"\r\nContent-Type: application/http\r\nContent-ID: <response-" + cid
             + b"+never-asked>\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Type: application/json"
             b'\r\n\r\n{"error": {"code": 404, "message": "File not found", "errors": '
             b'[{"domain": "global", "reason": "notFound", "message": "File not found"}]}}\r\n')
    return _join(headers, boundary, [extra] + parts)


@pytest.mark.parametrize("shape", [_html, _missing, _stranger],
                         ids=["html-200", "a-part-missing", "a-part-never-asked"])
def test_a_batch_of_deletes_answered_otherwise_than_drive_prunes_what_was_planned(
        emulator, env, monkeypatch, shape):
    ids = [emulator.add_file(f"Models/logs/epoch_{i:03d}.pt", b"w" * i) for i in range(1, 6)]

    def mutate(code: int, headers: dict, body: bytes) -> Reply:
        if b"HTTP/1.1 204" not in body:  # the batch of checks: as it is
            return Reply(code, headers, [body])
        boundary, parts = _parts(headers, body)
        h, out = shape(headers, boundary, parts)
        return Reply(code, h, [out])

    with Proxy(emulator.url) as proxy:
        proxy.on("POST", r"/batch/", mutate)
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        code, out, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert "Traceback" not in err
    assert _live(emulator) == {"epoch_005.pt"}
    assert emulator.read_bytes(ids[-1]) == b"w" * 5
