"""Bounds on the push side's server loops (issue 10): listings that never end, uploads that
never progress. In-process against the emulator behind tests/_proxy.py; the CLI forms are in
tests/test_hostile_server.py."""
from __future__ import annotations

import itertools
import json
import os

import pytest

from drivestage.drive import paging, places

import _proxy
from _proxy import Reply
from drivestage.errors import RemoteError


@pytest.fixture
def hostile_store(proxy, local_state, monkeypatch):
    from drivestage.drive import connect

    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "5")
    return connect(api_root=proxy.url, token="test-token")


def _fresh_page_tokens():
    """Every listing page says there is one more, each time with a new token."""
    counter = itertools.count()

    def mutate(status, headers, body):
        obj = json.loads(body)
        obj["nextPageToken"] = f"token-{next(counter)}"
        data = json.dumps(obj).encode()
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(data))
        return Reply(status, out, [data])
    return mutate


def test_a_listing_of_ever_new_page_tokens_ends_after_max_pages(emulator, proxy, hostile_store,
                                                                monkeypatch):
    monkeypatch.setattr(paging, "MAX_PAGES", 7)
    emulator.add_file("data/f.txt", b"x")
    folder = hostile_store.resolve("data")
    proxy.on("GET", r"^/drive/v2/files\?", _fresh_page_tokens())
    proxy.rewrite(r"pageToken=token-\d+", "")
    before = proxy.count("GET", r"^/drive/v2/files\?")
    with pytest.raises(RemoteError, match="more than 7 pages"):
        hostile_store.list(folder)
    assert proxy.count("GET", r"^/drive/v2/files\?") - before == 7


def test_shared_drive_lookup_detects_a_repeating_page_token(emulator, proxy, hostile_store):
    emulator.add_shared_drive("Team")
    proxy.on("GET", r"^/drive/v2/drives\?", _proxy.repeat_page_token)
    proxy.rewrite(r"pageToken=" + _proxy.REPEATED_TOKEN, "")
    with pytest.raises(RemoteError, match="same page token twice"):
        places.find_shared_drive(hostile_store, "Team")
    assert proxy.count("GET", r"^/drive/v2/drives") == 2


def _creeping_308():
    """Every upload chunk answered "resume incomplete", the server keeping one byte more."""
    kept = itertools.count()

    def mutate(status, headers, body):
        return Reply(308, {"Content-Length": "0", "Range": f"bytes=0-{next(kept)}"}, [b""])
    return mutate


def _forgetful_308():
    """Every other answer keeps one chunk, the ones between forget it again."""
    turn = itertools.count()

    def mutate(status, headers, body):
        out = {"Content-Length": "0"}
        if next(turn) % 2 == 0:
            out["Range"] = f"bytes=0-{(256 << 10) - 1}"
        return Reply(308, out, [b""])
    return mutate


@pytest.mark.parametrize("answer", [_proxy.no_progress_308, _creeping_308(), _forgetful_308()],
                         ids=["nothing-kept", "one-byte-a-time", "forgets-again"])
def test_an_upload_the_server_never_moves_forward_is_given_up(emulator, proxy, hostile_store,
                                                              tmp_path, answer):
    from drivestage.drive.upload import MAX_STALLED_CHUNKS

    path = tmp_path / "epoch_001.pt"
    path.write_bytes(os.urandom(1 << 20))
    folder = hostile_store.make_folders("Models/logs")
    proxy.on("PUT", r"upload_id=", answer, forward=False)
    with pytest.raises(RemoteError, match="Drive kept little or none of the last"):
        hostile_store.upload(str(path), folder, "epoch_001.pt", chunk_size=256 << 10)
    assert proxy.count("PUT", "upload_id=") <= MAX_STALLED_CHUNKS + 1
    assert emulator.find("Models/logs/epoch_001.pt") is None


def _every_item_twice(status, headers, body):
    obj = json.loads(body)
    obj["items"] = obj.get("items", []) * 2
    data = json.dumps(obj).encode()
    out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    out["Content-Length"] = str(len(data))
    return Reply(status, out, [data])


def test_a_listing_that_names_a_file_twice_deletes_nothing(emulator, proxy, hostile_store, env):
    """One file listed twice (a page repeated by a broken server) is one file, not a
    duplicate to repair."""
    from drivestage.upload_tree import push

    src = env / "logs"
    src.mkdir()
    (src / "best.pt").write_bytes(b"weights")
    (src / "results.csv").write_bytes(b"epoch\n1\n")
    push(str(src), "Models/logs", store=hostile_store)
    proxy.on("GET", r"^/drive/v2/files\?", _every_item_twice)
    result = push(str(src), "Models/logs", store=hostile_store)
    assert result.unchanged == 2 and result.uploaded == [] and result.replaced_duplicates == []
    assert emulator.find("Models/logs/best.pt") is not None
    assert emulator.find("Models/logs/results.csv") is not None
    (src / "best.pt").write_bytes(b"new weights")
    result = push(str(src), "Models/logs", store=hostile_store)
    assert result.uploaded == ["best.pt"]
    assert emulator.read_bytes(emulator.find("Models/logs/best.pt")["id"]) == b"new weights"


def _beyond_the_end_308(growing: bool):
    """Every chunk answered "resume incomplete" with a Range past the end of the file (the same
    one, or one that grows). After 50 answers it gives up itself, so a client that never ends
    fails the test instead of hanging it."""
    counter = itertools.count(1)

    def mutate(status, headers, body):
        k = next(counter)
        if k > 50:
            return Reply(400, {"Content-Length": "0"}, [b""])
        end = (k if growing else 1) * (10 << 20)
        return Reply(308, {"Content-Length": "0", "Range": f"bytes=0-{end}"}, [b""])
    return mutate


@pytest.mark.parametrize("growing", [False, True], ids=["same", "growing"])
def test_an_upload_the_server_says_went_past_the_end_is_given_up(emulator, proxy,
                                                                 hostile_store, tmp_path,
                                                                 growing):
    path = tmp_path / "epoch_001.pt"
    path.write_bytes(os.urandom(1 << 20))
    folder = hostile_store.make_folders("Models/logs")
    proxy.on("PUT", r"upload_id=", _beyond_the_end_308(growing), forward=False)
    with pytest.raises(RemoteError, match="past the end"):
        hostile_store.upload(str(path), folder, "epoch_001.pt", chunk_size=256 << 10)
    assert proxy.count("PUT", "upload_id=") <= 3
    assert emulator.find("Models/logs/epoch_001.pt") is None
