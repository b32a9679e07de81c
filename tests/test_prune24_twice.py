"""prune24: a batch answer that names one call's Content-ID twice. googleapiclient keeps
the last of the two silently, so a delete Drive did not do could be taken as done (the
file stayed, reported pruned), or one it did as refused (the prune failed over a file it
had deleted). Such a call's answer is not believed: the item is read again (a files.get)
before anything is done about it. A mutating proxy (tests/_proxy.py) forges the repeat."""
from __future__ import annotations

import re

import _cli
from _envs import env  # noqa: F401  (a fixture)
from _proxy import Proxy, Reply

FORBIDDEN = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
             b'{"error": {"code": 403, "message": "The user does not have sufficient '
             b'permissions for this file.", "errors": [{"domain": "global", "reason": '
             b'"insufficientFilePermissions", "message": "no"}]}}\r\n')
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n\r\n"


def _live(emulator) -> set[str]:
    rec = emulator.find("Models/logs")
    return {c["title"] for c in emulator.store.children(rec["id"]) if not c.get("trashed")}


def _twice(status: bytes, forged: bytes):
    """Rewrite the first batch answer holding a call answered ``status``: that call's part
    again, after all the others, with the ``forged`` answer (other answers as they are)."""
    done: list[bool] = []

    def mutate(code: int, headers: dict, body: bytes) -> Reply:
        ctype = {k.lower(): v for k, v in headers.items()}["content-type"]
        boundary = re.search(r'boundary="?([^";]+)', ctype).group(1).encode()
        parts = body.split(b"--" + boundary)[1:-1]
        real = next((p for p in parts if b"HTTP/1.1 " + status in p), None)
        if real is None or done:
            return Reply(code, headers, [body])
        done.append(True)
        parts.append(real[:real.index(b"HTTP/1.1 ")] + forged)
        out = b"".join(b"--" + boundary + p for p in parts) + b"--" + boundary + b"--\r\n"
        kept = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        return Reply(code, {**kept, "Content-Length": str(len(out))}, [out])
    return mutate


def _gets_alone(emulator, fid: str) -> int:
    return sum(1 for r in emulator.requests
               if r.kind == "files.get" and not r.in_batch and r.path.endswith(fid))


def test_a_delete_answered_done_twice_after_its_failure_is_read_again_and_deleted(
        emulator, env, monkeypatch):
    """Drive's answer to epoch_002.pt's delete: 500 (not done); then a second part for the
    same call says 204. It was taken as deleted: the file stayed on Drive, reported pruned."""
    ids = [emulator.add_file(f"Models/logs/epoch_{i:03d}.pt", b"w" * i) for i in range(1, 5)]
    emulator.faults.inject("DELETE", ids[1], status=500)
    with Proxy(emulator.url) as proxy:
        proxy.on("POST", r"/batch/", _twice(b"500", NO_CONTENT))
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        emulator.clear_requests()
        code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert _live(emulator) == {"epoch_004.pt"}
    assert _gets_alone(emulator, ids[1]) == 1  # read again before acting
    lone = [r for r in emulator.requests if r.kind == "files.delete" and not r.in_batch]
    assert [r.path.rsplit("/", 1)[1] for r in lone] == [ids[1]]


def test_a_delete_answered_refused_twice_after_it_was_done_is_read_again_and_gone(
        emulator, env, monkeypatch):
    """Drive deleted epoch_002.pt (204); a second part for the same call says 403
    insufficientFilePermissions. It was taken as refused: a trash tried (404), and the
    prune failed over a file it had deleted."""
    ids = [emulator.add_file(f"Models/logs/epoch_{i:03d}.pt", b"w" * i) for i in range(1, 5)]
    with Proxy(emulator.url) as proxy:
        proxy.on("POST", r"/batch/", _twice(b"204", FORBIDDEN))
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        emulator.clear_requests()
        code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert "permission" not in err.lower(), err
    assert _live(emulator) == {"epoch_004.pt"}
    assert _gets_alone(emulator, ids[0]) == 1  # (the first 204 is the one repeated)
    assert not [r for r in emulator.requests if r.kind in ("files.trash", "files.delete")
                and not r.in_batch]


def test_a_check_answered_gone_twice_after_its_resource_is_read_again(emulator, env,
                                                                     monkeypatch):
    """The batch of checks: epoch_001.pt's files.get answered 200 with its resource, then a
    second part says 404. It was taken as gone already: the file stayed, said deleted."""
    gone = (b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            b'{"error": {"code": 404, "message": "File not found", "errors": [{"domain": '
            b'"global", "reason": "notFound", "message": "File not found"}]}}\r\n')
    ids = [emulator.add_file(f"Models/logs/epoch_{i:03d}.pt", b"w" * i) for i in range(1, 5)]
    with Proxy(emulator.url) as proxy:
        proxy.on("POST", r"/batch/", _twice(b"200 OK", gone))
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        emulator.clear_requests()
        code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert _live(emulator) == {"epoch_004.pt"}
    assert _gets_alone(emulator, ids[0]) == 1
