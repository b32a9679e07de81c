"""Attack 21 on ``drivestage push``: what attack 20 (push) and retain20 left alone. A saved
upload session that Drive answers 5xx for ever; the one-request window between the folder
check and a sidecar's in-place update. Each test asserts what is live under the path (bytes,
md5), what is left on disk, what was deleted, and the exit code or the error."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from _drive_state import live_md5s

KiB = 1024
CHUNK = 256 * KiB


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- 1. a saved upload session whose status query fails for ever --------------------------

def _broken_session(emulator, path: str, folder, name: str) -> str:
    """A session record as a push killed mid-upload leaves it, for a session Drive now
    answers 503 to every request of (a session it broke): returns its upload_id."""
    from drivestage.state import UploadSessions

    st = os.stat(path)
    upload_id = "broken-for-ever"
    UploadSessions().put(UploadSessions.key(path, folder, name, None), {
        "uri": f"{emulator.url}upload/drive/v2/files?uploadType=resumable&upload_id={upload_id}",
        "size": st.st_size, "mtime_ns": st.st_mtime_ns, "chunk": CHUNK, "created": time.time()})
    emulator.faults.inject("PUT", rf"upload_id={upload_id}", status=503, times=None)
    return upload_id


def test_a_saved_session_drive_fails_for_ever_is_replaced_not_kept_for_a_week(
        emulator, store, local_state, tmp_path, monkeypatch):
    """A push killed mid-upload saved its session; Drive now answers 503 to every request of
    that session (and takes every other upload). Each push asked it, gave up after its
    retries and kept the record: that checkpoint failed push after push for a week, until
    the record aged out. Once the status query gives up, a new session is opened: the file
    goes, and the record of the broken one is gone."""
    from drivestage.upload_tree import push

    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    src = tmp_path / "run"
    src.mkdir()
    data = os.urandom(3 * CHUNK + 7)
    (src / "epoch_003.pt").write_bytes(data)
    folder = store.make_folders("runs/a")
    upload_id = _broken_session(emulator, str(src / "epoch_003.pt"), folder, "epoch_003.pt")
    emulator.clear_requests()
    res = push(str(src), (store, "runs/a"), jobs=1, chunk_size=CHUNK)
    assert res.uploaded == ["epoch_003.pt"]
    assert live_md5s(emulator, "runs/a") == {"epoch_003.pt": [md5(data)]}
    asked = [r for r in emulator.requests if r.query.get("upload_id") in (upload_id, [upload_id])]
    assert len(asked) == 3            # one status query through its retries, no more
    saved = json.loads((local_state / "state" / "upload-sessions.json").read_text())
    assert saved == {}


def test_a_saved_session_is_kept_while_drive_fails_every_upload(
        emulator, store, local_state, tmp_path, monkeypatch):
    """Drive down for every upload (not only that session): the record is worth keeping for
    the push after the outage, which resumes it. The push fails; the record stays."""
    from drivestage.errors import RemoteError
    from drivestage.upload_tree import push

    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    src = tmp_path / "run"
    src.mkdir()
    (src / "epoch_003.pt").write_bytes(os.urandom(3 * CHUNK + 7))
    folder = store.make_folders("runs/a")
    _broken_session(emulator, str(src / "epoch_003.pt"), folder, "epoch_003.pt")
    emulator.faults.inject("POST", r"^/upload/", status=503, times=None)
    with pytest.raises(RemoteError):
        push(str(src), (store, "runs/a"), jobs=1, chunk_size=CHUNK)
    saved = json.loads((local_state / "state" / "upload-sessions.json").read_text())
    assert [r["uri"].rsplit("=", 1)[1] for r in saved.values()] == ["broken-for-ever"]


# --- 2. dedupe in the one-request window between the folder check and the sidecar ---------
# (the test is tests/test_messages_push_trashed.py's, which shows its message)

def _dedupe_any(emulator, tmp_path) -> subprocess.CompletedProcess:
    """`drivestage dedupe drive:runs/a` in another process (on Drive, not through the proxy),
    whatever it ends with."""
    env = dict(os.environ, DRIVESTAGE_API_ROOT=emulator.url, DRIVESTAGE_TOKEN="test-token",
               DRIVESTAGE_STATE_DIR=str(tmp_path / "state-user"))
    return subprocess.run([sys.executable, "-m", "drivestage", "dedupe", "drive:runs/a"],
                          env=env, capture_output=True, text=True, timeout=60)


def _vouched(emulator) -> tuple[bool, bool]:
    """Whether ``runs/a`` (the path: the oldest folder of that name) holds a live last.pt,
    and whether its live last.json names that last.pt's md5 (what a resume from Drive, on
    any machine, takes as the verified checkpoint)."""
    found = emulator.find("runs/a")
    if found is None:
        return False, False
    live, top = live_md5s(emulator, "runs/a"), found["id"]
    side = [f for f in emulator.files() if f["title"] == "last.json"
            and not f["labels"]["trashed"] and any(p["id"] == top for p in f["parents"])]
    if len(side) != 1:
        return bool(live.get("last.pt")), False
    said = json.loads(emulator.read_bytes(side[0]["id"]))["md5"]
    return bool(live.get("last.pt")), said in live.get("last.pt", [])


# --- 3. a server that answers an in-place update 200 with a stale md5 ----------------------

from _proxy import Proxy, Reply  # noqa: E402


@pytest.fixture
def proxy(emulator):
    with Proxy(emulator.url) as p:
        yield p


def _pair(folder, data: bytes, epoch: int) -> None:
    from drivestage import sidecar

    (folder / "last.pt").write_bytes(data)
    sidecar.write(str(folder / "last.pt"), sidecar.Sidecar(epoch=epoch, md5=md5(data),
                                                            size=len(data), run="r1"))


@pytest.mark.parametrize("lie", ["every answer", "the first answer"])
def test_an_update_answered_with_the_old_md5_never_deletes_the_sidecar(
        emulator, proxy, local_state, tmp_path, monkeypatch, lie):
    """Drive (or a cache on the way) answers the in-place update of last.json 200 with the
    md5 the file had before: the stored bytes are the new ones. The push saw a mismatch,
    sent it again, saw it again, and deleted last.json for good: the path held two last.pt
    and no sidecar, no checkpoint verified, where Drive had stored exactly what was sent.
    A fresh files.get settles what Drive holds before anything is deleted."""
    from drivestage.drive import connect
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    old, new = os.urandom(3000), os.urandom(4000)
    _pair(src, old, 1)
    store = connect(api_root=proxy.url, token="test-token")
    push(str(src), (store, "runs/a"), jobs=1)
    side = emulator.find("runs/a/last.json")
    stale = side["md5Checksum"]
    _pair(src, new, 2)

    def stale_md5(status, headers, body):
        if status in (200, 201):
            res = json.loads(body)
            res["md5Checksum"] = stale
            body = json.dumps(res).encode()
            headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        return Reply(status, headers, [body])
    proxy.on("PUT", rf"^/upload/drive/v2/files/{side['id']}\?.*upload_id=", stale_md5,
             times=None if lie == "every answer" else 1)
    push(str(src), (store, "runs/a"), jobs=1)
    assert live_md5s(emulator, "runs/a") == {
        "last.pt": [md5(new)], "last.json": [md5((src / "last.json").read_bytes())]}
    assert emulator.find("runs/a/last.json")["id"] == side["id"]


def test_an_update_drive_never_applied_leaves_the_old_sidecar_and_its_checkpoint(
        emulator, proxy, local_state, tmp_path):
    """The update of last.json is answered 200 with the file as it was, and Drive really
    kept the old bytes (the update never took), twice. The file is whole, vouching for the
    old last.pt: the push fails naming it, deletes neither, and the path still holds a
    checkpoint its sidecar vouches for."""
    import urllib.request

    from drivestage.drive import connect
    from drivestage.errors import ChecksumMismatchError
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    old, new = os.urandom(3000), os.urandom(4000)
    _pair(src, old, 1)
    store = connect(api_root=proxy.url, token="test-token")
    push(str(src), (store, "runs/a"), jobs=1)
    side = emulator.find("runs/a/last.json")
    before = emulator.read_bytes(side["id"])
    _pair(src, new, 2)

    def as_it_was(status, headers, body):
        ask = urllib.request.Request(f"{emulator.url}drive/v2/files/{side['id']}",
                                     headers={"Authorization": "Bearer test-token"})
        with urllib.request.urlopen(ask) as answer:
            return Reply(200, {"Content-Type": "application/json"}, [answer.read()])
    proxy.on("PUT", rf"^/upload/drive/v2/files/{side['id']}\?.*upload_id=", as_it_was,
             forward=False)
    with pytest.raises(ChecksumMismatchError, match="Drive kept the old version of last.json"):
        push(str(src), (store, "runs/a"), jobs=1)
    assert emulator.read_bytes(side["id"]) == before
    assert live_md5s(emulator, "runs/a") == {"last.pt": sorted([md5(old), md5(new)]),
                                             "last.json": [md5(before)]}
