"""Attack 21 on ``drivestage push``: what attack 20 (push) and retain20 left alone, and more.
A saved upload session that Drive answers 5xx for ever; an in-place update answered with a
stale md5; a prune in another process while a push replaces a checkpoint; a SIGKILL at each
request of a push with --delete and a retention policy. (The dedupe between the folder check
and the sidecar's update, and the folder deleted for good, are in
tests/test_messages_push_trashed.py, which shows their messages; the update Drive never
applies in tests/test_messages_checksums.py.) Each test asserts what is live under the path
(bytes, md5), what is left on disk, and the exit code or the error."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

import pytest

from _drive_state import live_md5s
from _forkcli import PIPE, cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)

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
    return cli_server().run(["dedupe", "drive:runs/a"], env=env, text=True, timeout=60)


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


def _pair(folder, data: bytes, epoch: int) -> None:
    from drivestage import sidecar

    (folder / "last.pt").write_bytes(data)
    sidecar.write(str(folder / "last.pt"), sidecar.Sidecar(epoch=epoch, md5=md5(data),
                                                            size=len(data), run="r1"))


def test_an_update_answered_with_the_old_md5_never_deletes_the_sidecar(
        emulator, proxy, local_state, tmp_path):
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
    proxy.on("PUT", rf"^/upload/drive/v2/files/{side['id']}\?.*upload_id=", stale_md5)
    push(str(src), (store, "runs/a"), jobs=1)
    assert live_md5s(emulator, "runs/a") == {
        "last.pt": [md5(new)], "last.json": [md5((src / "last.json").read_bytes())]}
    assert emulator.find("runs/a/last.json")["id"] == side["id"]


# --- 4. a prune in another process while a push replaces a checkpoint of the same name -----

def _epoch(folder, epoch: int, data: bytes, run: str = "r1") -> None:
    from drivestage import sidecar

    path = folder / f"epoch_{epoch:03d}.pt"
    path.write_bytes(data)
    sidecar.write(str(path), sidecar.Sidecar(epoch=epoch, md5=md5(data), size=len(data),
                                             run=run))


def _prune(emulator, tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DRIVESTAGE_API_ROOT=emulator.url, DRIVESTAGE_TOKEN="test-token",
               DRIVESTAGE_STATE_DIR=str(tmp_path / "state-other"))
    return cli_server().run(["prune", "drive:runs/a", *args], env=env, text=True, timeout=60)


@pytest.mark.parametrize("keep_last,which", [(1, 1)])
def test_a_prune_while_a_push_replaces_a_checkpoint_never_leaves_it_unvouched(
        emulator, proxy, local_state, tmp_path, keep_last, which):
    """A run sent back saves epoch_003.pt anew (other bytes under the old name); its push
    has sent the new copy and is about to update epoch_003.json when `drivestage prune`
    runs in another process. The prune sees two copies of epoch_003.pt, only the old one
    vouched for. Whatever it deletes, the push must not end 0 with the path holding a
    sidecar that names bytes no copy there has."""
    from drivestage.drive import connect
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    for e in (1, 2, 3):
        _epoch(src, e, os.urandom(2000 + e))
    store = connect(api_root=proxy.url, token="test-token")
    push(str(src), (store, "runs/a"), jobs=1)
    new = os.urandom(3333)
    _epoch(src, which, new)
    name = f"epoch_{which:03d}"
    side = emulator.find(f"runs/a/{name}.json")["id"]
    pruned: list = []

    def prune_now(status, headers, body):
        if not pruned:
            pruned.append(_prune(emulator, tmp_path, "--keep-last", str(keep_last)))
        return Reply(status, headers, [body])
    proxy.on("PUT", rf"^/upload/drive/v2/files/{side}\?", prune_now, times=1)
    try:
        push(str(src), (store, "runs/a"), jobs=1)
        ended = 0
    except Exception:   # noqa: BLE001 (a failure is fine; a lie is not)
        ended = 1
    assert pruned and pruned[0].returncode == 0, pruned[0].stderr[-2000:]
    live = live_md5s(emulator, "runs/a")
    top = emulator.find("runs/a")["id"]
    sides = [f for f in emulator.files() if f["title"] == f"{name}.json"
             and not f["labels"]["trashed"] and any(p["id"] == top for p in f["parents"])]
    said = json.loads(emulator.read_bytes(sides[0]["id"]))["md5"] if sides else None
    if said is not None:
        assert said in live.get(f"{name}.pt", []) or ended == 1, (live, said)
    if ended == 0:
        assert live.get(f"{name}.pt") == [md5(new)] and said == md5(new), (live, said)


# --- 5. a SIGKILL at each request of a push with --delete and a retention policy ----------

import threading  # noqa: E402

from _kill import sigkill_when  # noqa: E402
from _sweep import ALL  # noqa: E402


def _sweep_start(emulator, src) -> dict[str, bytes]:
    """Drive holds epochs 1-3, last.pt and a stray file; the run folder holds epochs 2-4 and
    a new last.pt. Returns what the run folder holds (name -> bytes)."""
    from drivestage.drive import connect
    from drivestage.upload_tree import push

    src.mkdir()
    for e in (1, 2, 3):
        _epoch(src, e, b"epoch %d " % e * 300)
    _pair(src, b"old last" * 300, 3)
    (src / "stray.txt").write_bytes(b"stray")
    push(str(src), (connect(api_root=emulator.url, token="test-token"), "runs/a"), jobs=1)
    for name in ("epoch_001.pt", "epoch_001.json", "stray.txt"):
        (src / name).unlink()
    _epoch(src, 4, b"epoch 4 " * 300)
    _pair(src, b"new last" * 333, 4)
    return {p.name: p.read_bytes() for p in src.iterdir()}


def _vouched_names(emulator) -> dict[str, str]:
    """checkpoint name -> its md5, for each live checkpoint under runs/a whose live sidecar
    names one of its copies' md5."""
    live = live_md5s(emulator, "runs/a")
    top = emulator.find("runs/a")["id"]
    out = {}
    for f in emulator.files():
        if f["title"].endswith(".json") and not f["labels"]["trashed"] \
                and any(p["id"] == top for p in f["parents"]):
            said = json.loads(emulator.read_bytes(f["id"]))["md5"]
            ckpt = f["title"][:-5] + ".pt"
            if said in live.get(ckpt, []):
                out[ckpt] = said
    return out


ARGS = ("--delete", "--keep-last", "2", "--jobs", "1")


def test_a_sigkill_at_any_request_of_a_push_with_delete_and_retention_loses_nothing(
        emulator, local_state, tmp_path):
    """`push --delete --keep-last 2` killed at the k-th request (the server did it, the push
    never saw the answer): epoch_003, and last.pt (old or new), stay vouched for by their
    sidecars under the path at every k; and the push run again ends with exactly what the
    policy keeps. Every request with DRIVESTAGE_TEST_SWEEP=all; by default the first
    deletion (where a kill could cost a checkpoint). Measured: about 40
    requests, every one of them held (DRIVESTAGE_TEST_SWEEP=all, 50 s)."""
    from drivestage.drive import connect
    from drivestage.upload_tree import push
    from drivestage.retention import RetentionPolicy

    first = tmp_path / "dry"
    _sweep_start(emulator, first)
    base = len(emulator.requests)
    with Proxy(emulator.url) as counting:
        env = dict(os.environ, DRIVESTAGE_API_ROOT=counting.url, DRIVESTAGE_TOKEN="test-token",
                   DRIVESTAGE_STATE_DIR=str(tmp_path / "state-dry"))
        cli_server().run(["push", str(first), "drive:runs/a", *ARGS], env=env,
                         timeout=120).check_returncode()
        seen = list(counting.requests)
    assert len(emulator.requests) > base
    # By default the first deletion (the old last.pt's, once its sidecar was updated).
    moments = list(range(1, len(seen) + 1)) if ALL else \
        [i for i, (m, _) in enumerate(seen, 1) if m == "DELETE"][:1]
    assert len(moments) == (len(seen) if ALL else 1)
    for k in moments:
        emulator.store.delete(emulator.find("runs")["id"])
        src = tmp_path / f"run{k}"
        want = _sweep_start(emulator, src)
        before = _vouched_names(emulator)
        held, release = threading.Event(), threading.Event()
        count = [0]

        def hold(status, headers, body):
            count[0] += 1
            if count[0] == k:
                held.set()
                release.wait(30)
            return Reply(status, headers, [body])
        with Proxy(emulator.url) as proxy:
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                proxy.on(method, "", hold)
            env = dict(os.environ, DRIVESTAGE_API_ROOT=proxy.url, DRIVESTAGE_TOKEN="test-token",
                       DRIVESTAGE_STATE_DIR=str(local_state / "state"))
            proc = cli_server().popen(["push", str(src), "drive:runs/a", *ARGS], env=env,
                                      stdout=PIPE, stderr=PIPE)
            try:
                sigkill_when(proc, held.is_set, f"request {k} never came")
            finally:
                release.set()
        now = _vouched_names(emulator)
        assert "epoch_003.pt" in now, (k, seen[k - 1], now)
        assert now.get("last.pt") in (before["last.pt"], md5(want["last.pt"])), (k, now)
        push(str(src), (connect(api_root=emulator.url, token="test-token"), "runs/a"),
             RetentionPolicy(keep_last=2), delete=True, jobs=1)
        names = {n for n in want if n != "epoch_002.pt" and n != "epoch_002.json"}
        assert live_md5s(emulator, "runs/a") == {n: [md5(want[n])] for n in names}, k


# --- 6. the folder trashed by hand in the window between the folder check and the sidecar --

def test_a_folder_trashed_right_after_the_check_is_found_before_anything_is_deleted(
        emulator, proxy, local_state, tmp_path):
    """The user trashes runs/a exactly between the push's folder check (after the new
    last.pt landed) and the sidecar's in-place update, which then lands in the trash too.
    The check before the old copy goes finds it: nothing is deleted, the push runs once
    more into the path (made anew) and ends with the new pair live and vouched for; the old
    pair is in the trash, restorable."""
    from drivestage.drive import connect
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    old, new = os.urandom(3000), os.urandom(4000)
    _pair(src, old, 1)
    store = connect(api_root=proxy.url, token="test-token")
    push(str(src), (store, "runs/a"), jobs=1)
    folder = emulator.find("runs/a")["id"]
    old_ids = {emulator.find("runs/a/last.pt")["id"], emulator.find("runs/a/last.json")["id"]}
    _pair(src, new, 2)
    state = {"uploaded": False, "trashed": False}

    def upload(status, headers, body):
        state["uploaded"] = True
        return Reply(status, headers, [body])

    def check(status, headers, body):
        if state["uploaded"] and not state["trashed"]:
            emulator.store.set_trashed(folder, True)   # right after the check's answer
            state["trashed"] = True
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/drive/v2/files\?", upload, times=1)
    proxy.on("GET", rf"^/drive/v2/files/{folder}\?", check)
    push(str(src), (store, "runs/a"), jobs=1)
    assert state["trashed"]
    assert live_md5s(emulator, "runs/a") == {
        "last.pt": [md5(new)], "last.json": [md5((src / "last.json").read_bytes())]}
    assert emulator.find("runs/a")["id"] != folder
    trashed = {f["id"] for f in emulator.files() if f["labels"]["trashed"]}
    assert old_ids <= trashed     # restorable, never deleted for good
