"""Attacks on today's ``drivestage push`` changes: the halt once one upload gave up, and the
folder trashed while a push wrote into it. A hostile proxy in front of the emulator, a dedupe
run in another process at one request of the push. Each test asserts what is live under the
path (bytes, md5), what is in the trash, what was deleted for good, and the exit code."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from _drive_state import live_md5s
from _proxy import Reply
from test_attack20_bounds import _one_error_line, _run, _unavailable


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- 1. one file that Drive fails for ever -------------------------------------------------

@pytest.mark.parametrize("jobs", [1, 3])
def test_one_file_drive_fails_for_ever_does_not_stop_the_rest(emulator, proxy, tmp_path, jobs):
    """Drive answers 500/503 to every update of one file (PyDrive's "HttpError 500 when
    overwriting files", a session Drive broke) and takes every other upload. The push gave up
    on the first file, then started no other: every push of the log folder stopped at the
    same file, and a new checkpoint behind it never reached Drive. The rest must go; the
    error names the one file (exit 1)."""
    emulator.add_file("runs/a/a_events.out", b"old events")
    broken = emulator.find("runs/a/a_events.out")["id"]
    src = tmp_path / "run"
    src.mkdir()
    (src / "a_events.out").write_bytes(b"new events")
    files = {f"f{i}.txt": b"new %d" % i for i in range(5)}
    files["epoch_002.pt"] = os.urandom(3000)
    for name, data in files.items():
        (src / name).write_bytes(data)
    proxy.on("PUT", rf"^/upload/drive/v2/files/{broken}\?", _unavailable, forward=False)
    res = _run(proxy, tmp_path, "push", str(src), "drive:runs/a", "--jobs", str(jobs))
    line = _one_error_line(res)
    assert "still failing after 3 attempts" in line and "a_events.out" in line, line
    want = {n: [md5(d)] for n, d in files.items()}
    want["a_events.out"] = [md5(b"old events")]
    assert live_md5s(emulator, "runs/a") == want


# --- 2. a dedupe in another process while a push writes into the duplicate folder ----------

@pytest.fixture
def machine_b(proxy, local_state, monkeypatch):
    """The second machine's store (through the proxy), as a CheckpointSync keeps it: the
    folders it made are remembered for its life."""
    from drivestage.drive import connect

    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    monkeypatch.setenv("DRIVESTAGE_RETRY_CAP", "0.05")
    return connect(api_root=proxy.url, token="test-token")


def _save(folder, data: bytes, epoch: int) -> None:
    """``last.pt`` and its sidecar, as the trainer writes them."""
    from drivestage import sidecar

    (folder / "last.pt").write_bytes(data)
    sidecar.write(str(folder / "last.pt"), sidecar.Sidecar(epoch=epoch, md5=md5(data),
                                                            size=len(data), run="r1"))


def _dedupe(emulator, tmp_path) -> None:
    """`drivestage dedupe drive:runs/a`, run by the user in another process (on Drive
    directly, not through the proxy)."""
    env = dict(os.environ, DRIVESTAGE_API_ROOT=emulator.url, DRIVESTAGE_TOKEN="test-token",
               DRIVESTAGE_STATE_DIR=str(tmp_path / "state-user"))
    res = subprocess.run([sys.executable, "-m", "drivestage", "dedupe", "drive:runs/a"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]


def _duplicate_folders(emulator, machine_b, tmp_path, src, old: bytes) -> tuple[str, str]:
    """Machine A made runs/a a moment before machine B, whose listing did not show it yet:
    B made its own and pushed last.pt into it. Returns (A's folder, B's folder)."""
    from test_messages_dedupe import folder

    from drivestage.upload_tree import push

    root = emulator.add_folder("runs")
    emulator.faults.lag_listing(created=6, titles=r"^a$")
    ours = folder(machine_b, "a", root)
    _save(src, old, 1)
    push(str(src), (machine_b, "runs/a"), jobs=1)
    emulator.faults.lag_listing()
    for _ in range(6):   # the lag is counted in answers: let it run out
        machine_b.list(machine_b.resolve("runs"))
    theirs = [f["id"] for f in emulator.files() if f["title"] == "a" and f["id"] != ours]
    assert len(theirs) == 1 and machine_b.make_folders("runs/a").id == theirs[0]
    return ours, theirs[0]


def test_a_dedupe_while_a_push_replaces_last_pt_never_leaves_the_path_without_it(
        emulator, proxy, machine_b, tmp_path):
    """The user runs `drivestage dedupe` while training goes on: it moves last.pt and its
    sidecar from machine B's duplicate folder into the oldest one and trashes the duplicate,
    just as B's push starts sending the new last.pt there. The push updated the sidecar
    (now in the oldest folder) and deleted the old last.pt (there too) for good before it
    found its folder in the trash: the path held a sidecar and no checkpoint, the new one
    only in the trash. A SIGKILL then, or a push again failing, lost the run's checkpoint.
    The old copy may go only once a copy its sidecar vouches for is live under the path."""
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    old, new = os.urandom(4000), os.urandom(5000)
    ours, theirs = _duplicate_folders(emulator, machine_b, tmp_path, src, old)
    old_id = next(f["id"] for f in emulator.files() if f["title"] == "last.pt")
    _save(src, new, 2)

    def dedupe_now(status, headers, body):
        _dedupe(emulator, tmp_path)
        return Reply(status, headers, [body])
    seen: list[dict] = []

    def at_delete(status, headers, body):
        seen.append(live_md5s(emulator, "runs/a"))
        return Reply(status, headers, [body])
    proxy.on("POST", r"^/upload/drive/v2/files\?", dedupe_now, times=1)
    proxy.on("DELETE", rf"^/drive/v2/files/{old_id}", at_delete)
    proxy.on("POST", rf"^/drive/v2/files/{old_id}/trash", at_delete)
    push(str(src), (machine_b, "runs/a"), jobs=1)
    assert seen, "the old last.pt was never removed"
    assert seen[0].get("last.pt") == [md5(new)], seen[0]   # its replacement live, verified
    assert theirs in {f["id"] for f in emulator.files() if f["labels"]["trashed"]}
    live = live_md5s(emulator, "runs/a")
    assert live["last.pt"] == [md5(new)]
    assert live["last.json"] == [md5((src / "last.json").read_bytes())]
    assert emulator.find("runs/a")["id"] == ours


# --- 3. DEST's parent trashed, or DEST deleted for good, while the push writes ---------------

@pytest.mark.parametrize("how", ["parent trashed", "deleted for good"])
def test_a_dest_gone_another_way_while_the_push_writes_ends_with_every_file_live(
        emulator, proxy, tmp_path, how):
    """After the first upload lands, DEST's parent goes to the trash (DEST with it, not
    explicitly), or DEST is deleted for good: the push finds it before it calls anything
    verified and pushes once more into the path, made anew; every file live, bytes equal."""
    from test_messages_push_trashed import _push

    emulator.add_file("runs/a/old.txt", b"old")
    parent, dest = emulator.find("runs")["id"], emulator.find("runs/a")["id"]
    src = tmp_path / "run"
    src.mkdir()
    files = {"old.txt": b"old", **{f"f{i}.txt": b"new %d" % i for i in range(3)}}
    for name, data in files.items():
        (src / name).write_bytes(data)

    def gone(status, headers, body):
        if status in (200, 201):
            if how == "parent trashed":
                emulator.store.set_trashed(parent, True)
            else:
                emulator.store.delete(dest)
        return Reply(status, headers, [body])
    proxy.on("PUT", r"^/upload/", gone, times=1)
    proxy.on("POST", r"^/upload/", gone, times=1)
    res = _push(proxy, tmp_path, src, "drive:runs/a")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "pushing again into the folder the path leads to now" in res.stderr, res.stderr
    assert live_md5s(emulator, "runs/a") == {n: [md5(d)] for n, d in files.items()}
