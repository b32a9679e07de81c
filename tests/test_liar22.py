"""A Drive server that lies about *which* item it answers for (liar22): a listing of one folder
that holds another folder's items, a files.get answered for another id, an upload whose answer
names another file. Each would have prune, push or pull act on files the user never named;
each now ends in one ``Error:`` line with nothing deleted.

In-process CLI (tests/_cli.py) against the emulator behind tests/_proxy.py.
"""
from __future__ import annotations

import hashlib
import json
import os
import re

import pytest

import _cli
from _drive_state import live_md5s
from _liar import liar_env, one_error_line  # noqa: F401 (fixtures)
from _proxy import Reply


def _checkpoints(emulator, folder: str, n: int = 3) -> dict[str, str]:
    ids = {}
    for i in range(1, n + 1):
        name = f"epoch_{i:03d}.pt"
        ids[name] = emulator.add_file(f"{folder}/{name}", f"{folder} {i}".encode())
    return ids


def _live(emulator, folder: str) -> set[str]:
    rec = emulator.find(folder)
    return {c["title"] for c in emulator.store.children(rec["id"]) if not c.get("trashed")}


def test_a_listing_that_answers_with_another_folders_items_prunes_nothing(
        emulator, proxy, liar_env):
    """prune drive:Models/logs; the server lists Models/other's checkpoints instead (a query
    answered for another parent). Before: Models/other lost two checkpoints it never named."""
    _checkpoints(emulator, "Models/logs")
    _checkpoints(emulator, "Models/other")
    logs, other = emulator.find("Models/logs")["id"], emulator.find("Models/other")["id"]
    proxy.rewrite(rf"(?<=%27){re.escape(logs)}(?=%27)", other)
    code, out, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    line = one_error_line(code, err)
    assert "drive:Models/logs" in line and "another folder" in line
    assert _live(emulator, "Models/other") == {"epoch_001.pt", "epoch_002.pt", "epoch_003.pt"}
    assert _live(emulator, "Models/logs") == {"epoch_001.pt", "epoch_002.pt", "epoch_003.pt"}


def test_a_files_get_answered_for_another_id_prunes_nothing(emulator, proxy, liar_env):
    """prune drive:id:<logs>; files.get of that id is answered for Models/other (a cache keyed
    wrongly). Before: the other folder's checkpoints were pruned."""
    _checkpoints(emulator, "Models/logs")
    _checkpoints(emulator, "Models/other")
    logs, other = emulator.find("Models/logs")["id"], emulator.find("Models/other")["id"]
    proxy.rewrite(rf"^/drive/v2/files/{re.escape(logs)}\?", f"/drive/v2/files/{other}?")
    code, out, err = _cli.run("prune", f"drive:id:{logs}", "--keep-last", "1")
    line = one_error_line(code, err)
    assert logs in line and other in line
    assert _live(emulator, "Models/other") == {"epoch_001.pt", "epoch_002.pt", "epoch_003.pt"}
    assert _live(emulator, "Models/logs") == {"epoch_001.pt", "epoch_002.pt", "epoch_003.pt"}


def _answer_as(resource: dict):
    """A completed upload answered with ``resource`` (another file's) instead of the new one,
    the upload itself never reaching the emulator."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        data = json.dumps(resource).encode()
        return Reply(200, {"Content-Type": "application/json", "Content-Length": str(len(data))},
                     [data])
    return mutate


def test_an_upload_answered_with_another_folders_file_keeps_the_old_copy(
        emulator, proxy, liar_env, tmp_path):
    """push replaces best.pt; the server answers the upload with the resource of a file with
    those very bytes in another folder (md5 and size right) and stores nothing. Before: the
    old best.pt was deleted as replaced, Models/logs held no best.pt at all."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "best.pt").write_bytes(b"old weights")
    assert _cli.run("push", str(src), "drive:Models/logs")[0] == 0
    new = b"new weights"
    (src / "best.pt").write_bytes(new)
    twin = emulator.add_file("Models/other/best.pt", new)
    resource = emulator.find("Models/other/best.pt")
    assert resource["md5Checksum"] == hashlib.md5(new).hexdigest()
    proxy.on("PUT", r"upload_id=", _answer_as(resource), forward=False)
    code, out, err = _cli.run("push", str(src), "drive:Models/logs")
    line = one_error_line(code, err)
    assert "best.pt" in line
    kept = emulator.find("Models/logs/best.pt")
    assert kept is not None and emulator.read_bytes(kept["id"]) == b"old weights"
    assert emulator.read_bytes(twin) == new


def test_a_sidecar_update_answered_as_another_runs_sidecar_keeps_the_vouched_checkpoint(
        emulator, proxy, local_state, tmp_path):
    """last.pt is replaced by a new file and last.json updated in place; the update is
    answered with the resource of runs/b/last.json, which holds those very bytes (md5 right),
    and nothing is stored. Before: the push ended as a success (the moved-apart guard kept the
    old last.pt and pushed once more, lied to again) while last.json on Drive still held the
    old sidecar: a resume from Drive went back an epoch, and nothing said so."""
    from drivestage import sidecar
    from drivestage.drive import connect
    from drivestage.upload_tree import push

    def pair(folder, data: bytes, epoch: int) -> None:
        (folder / "last.pt").write_bytes(data)
        sidecar.write(str(folder / "last.pt"), sidecar.Sidecar(
            epoch=epoch, md5=hashlib.md5(data).hexdigest(), size=len(data), run="r1"))

    src = tmp_path / "run"
    src.mkdir()
    old, new = os.urandom(3000), os.urandom(4000)
    pair(src, old, 1)
    store = connect(api_root=proxy.url, token="test-token")
    push(str(src), (store, "runs/a"), jobs=1)
    side = emulator.find("runs/a/last.json")
    side_bytes = emulator.read_bytes(side["id"])
    pair(src, new, 2)
    emulator.add_file("runs/b/last.json", (src / "last.json").read_bytes())
    proxy.on("PUT", rf"^/upload/drive/v2/files/{side['id']}\?.*upload_id=",
             _answer_as(emulator.find("runs/b/last.json")), forward=False)
    with pytest.raises(Exception, match="answered for another item"):
        push(str(src), (store, "runs/a"), jobs=1)
    assert hashlib.md5(old).hexdigest() in live_md5s(emulator, "runs/a")["last.pt"]
    assert emulator.read_bytes(emulator.find("runs/a/last.json")["id"]) == side_bytes


def _listing_with(extra: dict):
    """Listing answers with ``extra`` added to their items."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        obj = json.loads(body)
        if isinstance(obj.get("items"), list):
            obj["items"].append(extra)
        data = json.dumps(obj).encode()
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(data))
        return Reply(status, out, [data])
    return mutate


def test_a_folder_listed_inside_itself_ends_the_pull_in_one_line(emulator, proxy, liar_env,
                                                                 tmp_path):
    """The listing of data holds data itself, its parents naming data too (a folder that is
    its own parent). The pull stops in one line. Before: it did too, but called the folder a
    shortcut and said to remove that shortcut on Drive."""
    emulator.add_file("data/a.txt", b"a")
    data = emulator.find("data")
    me = dict(data, parents=list(data["parents"]) + [{"id": data["id"], "isRoot": False}])
    proxy.on("GET", rf"^/drive/v2/files\?.*%27{re.escape(data['id'])}%27",
             _listing_with(me))
    code, out, err = _cli.run("pull", "drive:data", str(tmp_path / "dest"))
    line = one_error_line(code, err)
    assert "drive:data/data" in line and "listed inside itself" in line
    assert "shortcut" not in line
    assert proxy.count("GET", r"^/drive/v2/files\?") <= 6


@pytest.fixture
def hostile_store(proxy, local_state, monkeypatch):
    from drivestage.drive import connect

    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("DRIVESTAGE_HTTP_TIMEOUT", "5")
    return connect(api_root=proxy.url, token="test-token")


def _answer_changed(**fields):
    """The emulator's answer to a completed upload with ``fields`` changed."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        if status not in (200, 201):
            return Reply(status, headers, [body])
        obj = dict(json.loads(body), **fields)
        data = json.dumps(obj).encode()
        out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        out["Content-Length"] = str(len(data))
        return Reply(status, out, [data])
    return mutate


@pytest.mark.parametrize("how", ["title", "id"])
def test_an_update_answered_as_another_file_is_never_taken_for_it(emulator, proxy,
                                                                  hostile_store, tmp_path, how):
    """An update in place of results.csv answered with another title, or another file's id
    (the md5 right: the bytes stored are the ones sent). The upload raises instead of handing
    the caller an entry of another file (whose copies it would then keep or delete)."""
    from drivestage.errors import WrongItemError

    fid = emulator.add_file("Models/logs/results.csv", b"epoch\n1\n")
    other = emulator.add_file("Models/logs/notes.txt", b"x")
    folder = hostile_store.resolve("Models/logs")
    old = hostile_store.resolve("Models/logs/results.csv")
    path = tmp_path / "results.csv"
    path.write_bytes(b"epoch\n1\n2\n")
    proxy.on("PUT", r"upload_id=",
             _answer_changed(**({"title": "notes.txt"} if how == "title" else {"id": other})))
    with pytest.raises(WrongItemError, match="answered for another item"):
        hostile_store.upload(str(path), folder, "results.csv", replace=old)
    assert emulator.read_bytes(other) == b"x"
    assert emulator.find("Models/logs/results.csv")["id"] == fid


def test_an_item_listed_twice_under_two_names_prunes_nothing(emulator, proxy, liar_env):
    """The listing of Models/logs holds best.pt twice: once as itself, once titled
    epoch_001.pt (one id, two names). Before: the second name won, and prune --keep-last 1
    deleted "epoch_001.pt": best.pt, which the policy never manages."""
    best = emulator.add_file("Models/logs/best.pt", b"best weights")
    emulator.add_file("Models/logs/epoch_002.pt", b"epoch 2")
    logs = emulator.find("Models/logs")["id"]
    proxy.on("GET", rf"^/drive/v2/files\?.*%27{re.escape(logs)}%27",
             _listing_with(dict(emulator.find("Models/logs/best.pt"), title="epoch_001.pt")))
    code, out, err = _cli.run("prune", "drive:Models/logs", "--keep-last", "1")
    line = one_error_line(code, err)
    assert best in line and "best.pt" in line and "epoch_001.pt" in line
    assert _live(emulator, "Models/logs") == {"best.pt", "epoch_002.pt"}


def test_an_upload_the_server_files_under_another_name_keeps_the_old_copy(
        emulator, proxy, liar_env, tmp_path):
    """The server takes the new session's metadata for another upload's (it files the bytes as
    `zzzz.pt`) and answers with that file, md5 right. Before: the push took it for best.pt and
    deleted the old best.pt as replaced: the folder held no best.pt."""
    src = tmp_path / "logs"
    src.mkdir()
    (src / "best.pt").write_bytes(b"old weights")
    assert _cli.run("push", str(src), "drive:Models/logs")[0] == 0
    (src / "best.pt").write_bytes(b"new weights")
    proxy.mangle("POST", r"^/upload/", lambda body: body.replace(b'"best.pt"', b'"zzzz.pt"'))
    line = one_error_line(*_cli.run("push", str(src), "drive:Models/logs")[::2])
    assert "named 'zzzz.pt'" in line
    kept = emulator.find("Models/logs/best.pt")
    assert kept is not None and emulator.read_bytes(kept["id"]) == b"old weights"


def test_a_move_answered_as_done_but_not_done_never_trashes_the_folder_holding_it(
        emulator, proxy, liar_env, store):
    """dedupe merges two runs/exp folders; the server answers the move of the newer one's
    x.pt with x.pt as it was (still in the newer folder: the move never happened). Before:
    x.pt counted as moved, the newer folder was trashed with it inside, and dedupe said
    "merged". The move's answer must show the item in the target, out of the source."""
    from test_messages_dedupe import folder, put, trashed

    root = emulator.add_folder("runs")
    old, new = folder(store, "exp", root), folder(store, "exp", root)
    put(emulator, store, old, "a.txt", b"a")
    x = put(emulator, store, new, "x.pt", b"only here")
    as_it_was = emulator.render(emulator.store.get(x))
    proxy.on("PUT", rf"^/drive/v2/files/{x}\?.*addParents", _answer_as(as_it_was),
             forward=False)
    proxy.on("PATCH", rf"^/drive/v2/files/{x}\?.*addParents", _answer_as(as_it_was),
             forward=False)
    code, out, err = _cli.run("dedupe", "drive:runs/exp")
    line = one_error_line(code, err)
    assert "x.pt" in line
    assert new not in trashed(emulator) and x not in trashed(emulator)
    assert emulator.read_bytes(x) == b"only here"
