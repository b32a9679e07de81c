"""attack23drive: the batched checks before deletions (drive/batches.py, store_deletes.py) as
a hostile server and a hostile second process see them. Real PyDrive2/googleapiclient over
HTTP against the emulator, a mutating proxy (tests/_proxy.py) where the server lies; time is
a fake clock advanced by the retry loop's waits, never a sleep."""
from __future__ import annotations

import re
import types

import pytest

import _cli
from _envs import env  # noqa: F401  (a fixture)
from _proxy import Proxy, Reply
from drivestage.drive import connect, retry, store_deletes


def _seed(emulator, n: int) -> list[str]:
    return [emulator.add_file(f"Models/logs/epoch_{i:03d}.pt", b"w" * i) for i in range(1, n + 1)]


def _live(emulator) -> dict[str, str]:
    rec = emulator.find("Models/logs")
    return {c["title"]: c["id"] for c in emulator.store.children(rec["id"])
            if not c.get("trashed")}


def _parts(headers: dict, body: bytes) -> tuple[bytes, list[bytes]]:
    ctype = {k.lower(): v for k, v in headers.items()}["content-type"]
    boundary = re.search(r'boundary="?([^";]+)', ctype).group(1).encode()
    return boundary, body.split(b"--" + boundary)[1:-1]


def _truncated(status: int, headers: dict, body: bytes) -> Reply:
    """The batch's answer cut off inside its first part (no length: it ends with the
    connection, as a proxy's cut answer does)."""
    boundary, parts = _parts(headers, body)
    first = b"--" + boundary + parts[0]
    cut = first[:first.index(b"HTTP/1.1 200") + 30]  # inside the call's answer's headers
    return Reply(status, {k: v for k, v in headers.items() if k.lower() != "content-length"},
                 [cut])


def _empty_content_id(status: int, headers: dict, body: bytes) -> Reply:
    """A part whose Content-ID is empty (googleapiclient reads ``header[0]``)."""
    boundary, parts = _parts(headers, body)
    parts[0] = re.sub(rb"Content-ID: [^\r\n]+", b"Content-ID: ", parts[0], count=1)
    out = b"".join(b"--" + boundary + p for p in parts) + b"--" + boundary + b"--\r\n"
    kept = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    return Reply(status, {**kept, "Content-Length": str(len(out))}, [out])


@pytest.mark.parametrize("mutate", [_truncated, _empty_content_id], ids=["cut", "empty-id"])
def test_a_batch_answer_googleapiclient_cannot_read_is_no_traceback(emulator, env, monkeypatch,
                                                                     mutate):
    """It ended the prune with an IndexError out of googleapiclient's parser (a traceback,
    nothing more deleted): such an answer is not Drive's, and the items are read alone."""
    ids = _seed(emulator, 4)
    with Proxy(emulator.url) as proxy:
        proxy.on("POST", r"/batch/", mutate, times=1)
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        code, _, err = _cli.run("-v", "prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert "each item is read alone before its deletion" in err
    assert _live(emulator) == {"epoch_004.pt": ids[3]}


def _rebuilt(boundary: bytes, parts: list[bytes], headers: dict) -> Reply:
    out = b"".join(b"--" + boundary + p for p in parts) + b"--" + boundary + b"--\r\n"
    kept = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    return Reply(200, {**kept, "Content-Length": str(len(out))}, [out])


def _reversed(status: int, headers: dict, body: bytes) -> Reply:
    boundary, parts = _parts(headers, body)
    return _rebuilt(boundary, parts[::-1], headers)


def _with_a_stranger(status: int, headers: dict, body: bytes) -> Reply:
    """One more part, for an id no call asked about (another item's answer)."""
    boundary, parts = _parts(headers, body)
    stranger = re.sub(rb"(Content-ID: <response-[^+]*\+ )[^>]+>", rb"\1someone-else>", parts[0],
                      count=1)
    return _rebuilt(boundary, [stranger] + parts, headers)


@pytest.mark.parametrize("mutate", [_reversed, _with_a_stranger], ids=["reversed", "stranger"])
def test_a_batch_answer_is_read_by_content_id(emulator, env, monkeypatch, mutate):
    """Parts in another order, or one more part for an id nobody asked about: each call
    still gets its own answer (by Content-ID), and nothing is read twice."""
    ids = _seed(emulator, 4)
    with Proxy(emulator.url) as proxy:
        proxy.on("POST", r"/batch/", mutate, times=1)
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        emulator.clear_requests()
        code, _, err = _cli.run("-v", "prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert "read alone" not in err
    assert _live(emulator) == {"epoch_004.pt": ids[3]}
    assert emulator.api_calls()["files.get"] == 4  # (the kept epoch_004.pt too: attack25)


def _clock(monkeypatch) -> list[float]:
    """A fake monotonic clock for store_deletes that the retry loop's waits advance."""
    now = [1000.0]
    monkeypatch.setattr(store_deletes, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_the_first_answer_of_a_batch_retried_past_fresh_for_is_read_again(emulator, env,
                                                                         monkeypatch):
    """The first item's answer came in the batch's first attempt; another call's rate limit
    (Retry-After 60) held the batch past FRESH_FOR; the user renamed that item meanwhile. Its
    answer, a minute old, was acted on as fresh: the renamed file was deleted."""
    ids = _seed(emulator, 4)
    now = _clock(monkeypatch)

    def wait(seconds: float) -> None:
        now[0] += seconds
        emulator.store.update_meta(ids[0], {"title": "keep_me.pt"})  # during the wait

    monkeypatch.setattr(retry, "_sleep", wait)
    emulator.faults.lag_listing(updated=5)
    emulator.faults.inject("GET", ids[1], reason="userRateLimitExceeded", retry_after=60)
    code, _, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert "epoch_001.pt was renamed 'keep_me.pt' on Drive since it was listed; not deleted" \
        in err
    assert _live(emulator) == {"keep_me.pt": ids[0], "epoch_004.pt": ids[3]}


def test_a_batch_whose_every_call_answers_404_is_asked_once_alone(emulator, env, monkeypatch):
    """A proxy that takes the batch endpoint but not its calls (here: it forwards them under
    a path prefix the server does not know) answers each call 404. Each item was taken as
    gone: the prune deleted nothing, said "already deleted" for every file, exit 0 (what
    batch23 fixed for a 404 of the batch request itself). Every call 404 while the listing
    just showed the items: one of them is read alone; found, the batch is not Drive's."""
    ids = _seed(emulator, 4)
    with Proxy(emulator.url) as proxy:
        proxy.mangle("POST", r"/batch/", lambda body: body.replace(
            b" /drive/v2/files/", b" /prefix/drive/v2/files/"))
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        code, _, err = _cli.run("-v", "prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert "already deleted" not in err
    assert "each item is read alone before its deletion" in err
    assert _live(emulator) == {"epoch_004.pt": ids[3]}


def test_a_batch_whose_every_call_answers_404_for_files_really_gone(emulator, env):
    """The other side: another machine's prune deleted them all since the listing; the kept
    epoch_004.pt, read in the same batch (attack25), shows the batch is Drive's (else one lone
    files.get confirms it), and nothing more is asked or sent."""
    ids = _seed(emulator, 4)
    emulator.faults.lag_listing(deleted=5)
    for fid in ids[:3]:
        emulator.store.delete(fid)
    emulator.clear_requests()
    code, _, err = _cli.run("-v", "prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert err.count("was already deleted") == 3
    kinds = [(r.kind, r.in_batch) for r in emulator.requests if r.kind != "files.list"]
    assert kinds == [("batch", False)] + [("files.get", True)] * 4


def test_a_token_expiring_mid_batch_is_refreshed_once_and_its_calls_sent_again(
        emulator_factory, tmp_path, monkeypatch):
    """A call in a batch answered 401 (the token expired between calls): googleapiclient
    refreshes the credentials (one token request) and sends those calls again; every file
    is read and deleted once. (batch23 left this untested.)"""
    from test_auth import FRESH, TokenServer, _token_file

    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.001")
    server = TokenServer()
    try:
        emu = emulator_factory(token=FRESH)
        ids = [emu.add_file(f"M/e{i}.pt", b"x" * i) for i in range(1, 5)]
        path = _token_file(tmp_path / "token.json", server.uri, token=FRESH, expired=False)
        store = connect(api_root=emu.url, credentials=path)
        listed = store.list(store.resolve("M"))
        emu.faults.inject("GET", ids[1], status=401)
        emu.clear_requests()
        assert store.delete_many(listed) == {e.id: None for e in listed}
    finally:
        server.stop()
    assert [c["grant_type"] for c in server.calls] == ["refresh_token"]
    assert [(r.kind, r.status) for r in emu.requests if r.in_batch and r.kind == "files.get"] \
        == [("files.get", 200), ("files.get", 401), ("files.get", 200), ("files.get", 200),
            ("files.get", 200)]
    assert sum(1 for r in emu.requests if r.kind == "files.delete") == 4
    assert not [c for c in emu.store.children(emu.find("M")["id"]) if not c.get("trashed")]


def _batch_sizes(emulator) -> list[int]:
    """The calls of each batch request, in order (each logged after its batch)."""
    sizes: list[int] = []
    for r in emulator.requests:
        if r.kind == "batch" and not r.in_batch:
            sizes.append(0)
        elif r.in_batch:
            sizes[-1] += 1
    return sizes


def test_a_batch_reads_ahead_only_what_is_deleted_within_seconds(emulator, env, monkeypatch):
    """The window between an item's check and its deletion: one round trip with a lone
    files.get, up to 99 deletions (30 s on Drive's ~0.3 s deletes) when a batch read 100
    ahead: a rename in that window was not seen. Since prune24 the deletes go in a batch
    too, sent as soon as the batch of their checks is answered: one round trip again.
    Each delete here takes 1 s (a fake clock): nothing is read twice."""
    now = _clock(monkeypatch)

    def slow_delete(status: int, headers: dict, body: bytes) -> Reply:
        now[0] += 1.0
        return Reply(status, headers, [body])

    _seed(emulator, 40)
    with Proxy(emulator.url) as proxy:
        proxy.on("DELETE", r"/files/", slow_delete)
        monkeypatch.setenv("DRIVESTAGE_API_ROOT", proxy.url)
        emulator.clear_requests()
        _cli.ok("prune", "drive:Models/logs", "--keep-last", "1")
    assert list(_live(emulator)) == ["epoch_040.pt"]
    # The checks (and the kept epoch_040.pt, attack25), then at once their deletes.
    assert _batch_sizes(emulator) == [40, 39]
    calls = emulator.api_calls()
    assert calls["files.get"] == 40 and calls["files.delete"] == 39  # nothing read twice


def test_a_batch_request_that_never_gets_through_falls_back_to_a_get_each(emulator, env):
    """A proxy that resets every batch request (one that cannot pass multipart answers)
    while lone requests go through: each prune failed "still failing after N attempts",
    nothing deleted, every time, where one files.get per item works. The batch request's
    own retries spent, the items are read alone."""
    ids = _seed(emulator, 4)
    emulator.faults.drop("POST", r"/batch/", times=None)
    code, _, err = _cli.run("-v", "prune", "drive:Models/logs", "--keep-last", "1")
    assert code == 0, err
    assert "each item is read alone before its deletion" in err
    assert _live(emulator) == {"epoch_004.pt": ids[3]}
    assert len([r for r in emulator.requests if r.kind == "batch"]) == 8  # its retries


def test_an_outage_that_resets_every_request_leaves_batches_for_a_later_run(emulator, env):
    """The other side: Drive (or the link) resets every request, lone ones too. The lone
    files.get fails as it did before batching, and the store keeps batching for the next
    run once the outage is over (a mirror's store lives for hours)."""
    from drivestage.errors import RetriesExhaustedError

    _seed(emulator, 4)
    store = connect(api_root=emulator.url, token="test-token")
    listed = sorted(store.list(store.resolve("Models/logs")), key=lambda e: e.name)
    emulator.faults.drop("POST", r"/batch/", times=None)
    emulator.faults.drop("GET", r"/files/", times=None)
    failed = store.delete_many(listed[:3])
    assert isinstance(failed[listed[0].id], RetriesExhaustedError), failed
    emulator.faults.clear()
    emulator.clear_requests()
    assert store.delete_many(listed[:3]) == {e.id: None for e in listed[:3]}
    assert list(_live(emulator)) == ["epoch_004.pt"]
    assert [r.kind for r in emulator.requests if not r.in_batch] == ["batch", "batch"]
