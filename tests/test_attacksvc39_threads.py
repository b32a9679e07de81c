"""Attacks on googleapiclient's Drive service built once per process and API root and
copied per connection and thread (drive/services.py, session 38), by threads and a second
server: httplib2 is not thread-safe, so no request may go out on another thread's
connection, and a service for one root (an emulator's port) must never send to another's.

Proof is the emulator's request log: each request names the TCP connection that carried it
(``RequestRecord.connection``), so a connection that carried two threads' requests (each
thread works on files of its own) is one shared between threads. The real PyDrive2 +
googleapiclient + httplib2 stack against emulators on 127.0.0.1."""
from __future__ import annotations

import hashlib
import threading
from collections import defaultdict

import pytest

from drivestage.drive import connect


@pytest.fixture(autouse=True)
def _fast(fast_retries, monkeypatch):
    """Backoffs of a millisecond, and a request that gets no answer (two threads' on one
    socket) fails in 5 s, not 120."""
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "5")


def _at_once(n: int, work) -> list[BaseException]:
    """``work(i)`` in ``n`` threads released together; what each raised (None: nothing)."""
    start = threading.Barrier(n)
    out: list = [None] * n

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:   # (kept for the test to assert)
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    return out


def _file_ids_by_connection(emu) -> dict[int, set[str]]:
    """The files each TCP connection's requests named (``/files/<id>``)."""
    named: dict[int, set[str]] = defaultdict(set)
    for r in emu.requests:
        if "/files/" in r.path:
            named[r.connection].add(r.path.split("/files/")[1].split("/")[0])
    return dict(named)


N = 4


def test_threads_that_find_their_files_changed_look_them_up_each_on_its_own_connection(
        emulator, env, tmp_path):
    """A pull's streams that each find their file replaced since the listing (another
    size) look its size up by id: that look-up went out on the service's own connection,
    one for every thread (the requests of two threads on one keep-alive socket: a look-up
    timed out, another raised AttributeError from inside httplib2)."""
    store, other = connect(api_root=emulator.url, token="t"), connect(api_root=emulator.url,
                                                                        token="t")
    for i in range(N):
        emulator.add_file(f"f/x{i}.bin", bytes([i]) * 1000)
    listed = [store.resolve(f"f/x{i}.bin") for i in range(N)]
    folder = other.resolve("f")
    for i in range(N):
        (tmp_path / f"n{i}").write_bytes(bytes([i]) * 1500)
        other.upload(str(tmp_path / f"n{i}"), folder, f"x{i}.bin",
                     replace=other.resolve(f"f/x{i}.bin"))
    emulator.clear_requests()

    raised = _at_once(N, lambda i: store.fetch_range(listed[i], 0, 1000))
    assert [str(e) for e in raised] == [
        f"drive:f/x{i}.bin changed on Drive while downloading (size 1000 became 1500); run "
        "again" for i in range(N)]
    named = _file_ids_by_connection(emulator)
    assert all(len(ids) == 1 for ids in named.values()), named
    assert len(emulator.requests) == 2 * N   # (a download and a look-up each: no retry)


def test_the_services_own_requests_go_out_on_the_calling_threads_connection(
        emulator, env):
    """``store.service`` (public) sends a request executed without a connection named
    (googleapiclient's ``execute()``) through this thread's, not one all threads share."""
    store = connect(api_root=emulator.url, token="t")
    ids = [emulator.add_file(f"f/x{i}.bin", bytes([i])) for i in range(N)]
    emulator.clear_requests()

    def look(i: int) -> None:
        for _ in range(3):
            assert store.service.files().get(fileId=ids[i]).execute()["id"] == ids[i]

    assert _at_once(N, look) == [None] * N
    named = _file_ids_by_connection(emulator)
    assert sorted(len(ids) for ids in named.values()) == [1] * N, named


def test_two_servers_used_at_once_from_threads_each_get_their_own_requests(
        emulator_factory, env, tmp_path, monkeypatch):
    """Two emulators (two API roots), their services built at once from nothing (the
    second made from the first's), each used by threads together: every upload (a
    resumable session), read and batch of deletes reaches the server it was for."""
    from drivestage.drive import services

    monkeypatch.setattr(services, "_BUILT", {})
    emus = [emulator_factory(), emulator_factory()]
    stores: list = [None, None]
    connected = _at_once(2, lambda k: stores.__setitem__(
        k, connect(api_root=emus[k].url, token="t")))
    assert connected == [None, None]
    folders = [s.make_folders("runs") for s in stores]
    for k, emu in enumerate(emus):
        emu.clear_requests()
    data = {(k, i): f"{k}-{i}".encode() * 5000 for k in range(2) for i in range(N)}

    def work(j: int) -> None:
        k, i = divmod(j, N)
        path = tmp_path / f"{k}-{i}.bin"
        path.write_bytes(data[k, i])
        entry = stores[k].upload(str(path), folders[k], f"{k}-{i}.bin")
        assert stores[k].fetch_range(entry, 0, entry.size) == data[k, i]

    assert _at_once(2 * N, work) == [None] * (2 * N)
    for k, emu in enumerate(emus):
        mine = {f["title"]: f["md5Checksum"] for f in emu.files() if f["title"].endswith(".bin")}
        assert mine == {f"{k}-{i}.bin": hashlib.md5(data[k, i]).hexdigest() for i in range(N)}
        assert sum(r.kind == "media.upload" or "upload" in r.path for r in emu.requests) >= N

    doomed = [[e for e in s.list(f)] for s, f in zip(stores, folders)]
    assert _at_once(2, lambda k: stores[k].delete_many(doomed[k])) == [None, None]
    for k, emu in enumerate(emus):
        assert [f["title"] for f in emu.files() if f["title"].endswith(".bin")
                and not f["labels"]["trashed"]] == []
        assert sum(r.kind == "batch" for r in emu.requests) == 2   # (the checks, the deletes)


def test_a_service_evicted_while_its_threads_send_still_sends_to_its_own_server(
        emulator_factory, env, monkeypatch):
    """The services kept per root are few (``_BUILT_KEPT``): threads building services for
    other roots at once evict the one other threads are using; those go on sending to
    their server, each on its own connection, and a connection made after the eviction
    (the service made again, from another root's) too."""
    import httplib2

    from drivestage.drive import services

    monkeypatch.setattr(services, "_BUILT", {})
    emu, other = emulator_factory(), emulator_factory()
    ids = [emu.add_file(f"f/x{i}.bin", bytes([i]) * 10) for i in range(N)]
    store = connect(api_root=emu.url, token="t")
    entries = [store.resolve(f"f/x{i}.bin") for i in range(N)]
    emu.clear_requests()
    roots = [f"http://127.0.0.1:{1000 + j}/" for j in range(3 * services._BUILT_KEPT)]

    def work(j: int) -> None:
        if j >= N:   # (another root's service built: the kept ones turn over)
            for root in roots[j - N::N]:
                services.drive_service(root, httplib2.Http())
            return
        for _ in range(3):
            assert store.stat(entries[j]).id == ids[j]
            assert store.fetch_range(entries[j], 0, 10) == bytes([j]) * 10

    assert _at_once(2 * N, work) == [None] * (2 * N)
    assert (emu.url, None) not in services._BUILT   # (evicted)
    named = _file_ids_by_connection(emu)
    assert sorted(len(f) for f in named.values()) == [1] * len(named) and len(named) >= N
    assert other.requests == []
    again = connect(api_root=emu.url, token="t")
    assert again.stat(entries[0]).id == ids[0] and other.requests == []


def test_a_refresh_of_the_credentials_under_way_in_threads_is_made_once(
        emulator_factory, env, tmp_path, monkeypatch):
    """Threads whose token Drive refuses at once (401) refresh it once between them, each
    sends its request again on its own connection, and the service's own requests
    (``execute()`` without a connection named) carry the new token too."""
    from test_auth import FRESH, TokenServer, _token_file

    server = TokenServer()
    try:
        emu = emulator_factory(token=FRESH)
        ids = [emu.add_file(f"f/x{i}.bin", bytes([i])) for i in range(N)]
        path = _token_file(tmp_path / "token.json", server.uri, expired=False)
        store = connect(api_root=emu.url, credentials=path)
        emu.clear_requests()
        server.calls.clear()

        def work(i: int) -> None:
            assert store.service.files().get(fileId=ids[i]).execute()["id"] == ids[i]
            assert store.resolve(f"id:{ids[i]}").id == ids[i]

        assert _at_once(N, work) == [None] * N
        assert [c["grant_type"] for c in server.calls] == ["refresh_token"]
        assert sum(r.status == 401 for r in emu.requests) <= N
        named = _file_ids_by_connection(emu)
        assert all(len(f) == 1 for f in named.values()), named
    finally:
        server.stop()
