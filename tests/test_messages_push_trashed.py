"""A folder a push writes into goes to the trash while it runs: `drivestage dedupe` trashing
a duplicate folder it has just emptied, or the user cleaning up Drive while a mirror runs.
Drive takes uploads into a trashed folder without a word (the new file is not even marked
trashed), so a push that only looked at each upload's answer reported its files verified
while they sat in the trash; a training run then counted a checkpoint as safe on Drive that
no listing of the path shows. docs/troubleshooting.md, "Duplicate names and paths"."""
from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from _drive_state import live_md5s
from _messages import renders, shown
from _proxy import Proxy, Reply
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)


def _push(proxy: Proxy, tmp_path, src, dest: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DRIVESTAGE_API_ROOT=proxy.url, DRIVESTAGE_TOKEN="test-token",
               DRIVESTAGE_STATE_DIR=str(tmp_path / "state"), DRIVESTAGE_RETRY_BASE="0.01",
               DRIVESTAGE_RETRY_CAP="0.05")
    return cli_server().run(["push", str(src), dest,
                             "--jobs", "1"], env=env, text=True,
                            timeout=120)


def _trash_after_first_upload(emulator, folder_id: str):
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        if status in (200, 201):
            emulator.store.set_trashed(folder_id, True)
        return Reply(status, headers, [body])
    return mutate


@renders("went to the trash while this push wrote into it")
@pytest.mark.parametrize("where", ["runs/a", "runs/a/sub"])
def test_a_folder_trashed_while_a_push_writes_into_it_ends_with_every_file_live(
        emulator, proxy, tmp_path, where):
    """The first upload lands, then the folder goes to the trash: the push sees it, pushes
    again into the folder the path leads to now (made anew), and ends 0 with every file
    live under the path, bytes equal."""
    emulator.add_file(f"{where}/old.txt", b"old")
    folder_id = emulator.find(where)["id"]
    src = tmp_path / "run"
    sub = src / "sub" if where.endswith("sub") else src
    sub.mkdir(parents=True)
    (sub / "old.txt").write_bytes(b"old")
    files = {f"f{i}.txt": b"new %d" % i for i in range(3)}
    for name, data in files.items():
        (sub / name).write_bytes(data)
    proxy.on("PUT", r"^/upload/", _trash_after_first_upload(emulator, folder_id), times=1)
    proxy.on("POST", r"^/upload/", _trash_after_first_upload(emulator, folder_id), times=1)
    res = _push(proxy, tmp_path, src, "drive:runs/a")
    assert res.returncode == 0, res.stderr[-2000:]
    shown("went to the trash while this push wrote into it", res.stderr)
    assert "pushing again into the folder the path leads to now" in res.stderr, res.stderr
    want = {n: [hashlib.md5(d).hexdigest()] for n, d in files.items()}
    want["old.txt"] = [hashlib.md5(b"old").hexdigest()]
    assert live_md5s(emulator, where) == want
    assert emulator.find(where)["id"] != folder_id


@renders("went to the trash while this push wrote into it")
def test_a_folder_trashed_again_and_again_ends_the_push_after_one_more_try(emulator, proxy,
                                                                         tmp_path):
    """Whatever folder the path leads to goes to the trash after each upload: the push tries
    once more, then stops with one line saying so (exit 1); nothing is deleted for good."""
    emulator.add_file("runs/a/old.txt", b"old")

    def trash_live(status: int, headers: dict, body: bytes) -> Reply:
        live = emulator.find("runs/a")
        if status in (200, 201) and live is not None:
            emulator.store.set_trashed(live["id"], True)
        return Reply(status, headers, [body])
    proxy.on("PUT", r"^/upload/", trash_live)
    proxy.on("POST", r"^/upload/", trash_live)
    src = tmp_path / "run"
    src.mkdir()
    (src / "new.txt").write_bytes(b"new")
    res = _push(proxy, tmp_path, src, "drive:runs/a")
    assert res.returncode == 1, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    shown("went to the trash while this push wrote into it", last)
    assert last.startswith("Error: drive:runs/a went to the trash while this push wrote into "
                           "it"), last
    assert last.endswith(", twice; stop what trashes it (a dedupe running?) and push again")
    folder = "application/vnd.google-apps.folder"
    assert sorted(f["title"] for f in emulator.files() if f["mimeType"] != folder) \
        == ["new.txt", "new.txt", "old.txt"]   # each attempt's upload, and nothing deleted
    assert emulator.find("runs/a") is None   # both folders in the trash, restorable


@renders("was deleted for good while this push wrote into it")
def test_a_folder_deleted_again_and_again_says_so_and_names_no_trash(emulator, proxy,
                                                                   tmp_path):
    """Whatever folder the path leads to is deleted for good after each upload: the push
    tries once more, then stops with one line (exit 1) that says deleted, not trashed."""
    emulator.add_file("runs/a/old.txt", b"old")

    def delete_live(status: int, headers: dict, body: bytes) -> Reply:
        live = emulator.find("runs/a")
        if status in (200, 201) and live is not None:
            emulator.store.delete(live["id"])
        return Reply(status, headers, [body])
    proxy.on("PUT", r"^/upload/", delete_live)
    proxy.on("POST", r"^/upload/", delete_live)
    src = tmp_path / "run"
    src.mkdir()
    (src / "new.txt").write_bytes(b"new")
    res = _push(proxy, tmp_path, src, "drive:runs/a")
    assert res.returncode == 1, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    shown("was deleted for good while this push wrote into it", last)
    assert last.startswith("Error: drive:runs/a was deleted for good while this push wrote "
                           "into it"), last
    assert last.endswith(", twice; stop what deletes it and push again"), last
    # The first time too, as a warning: nothing the push sent is in the trash.
    assert "was deleted for good while this push wrote into it (or is no longer shared with " \
           "you); pushing again into the folder the path leads to now" in res.stderr
    assert "trash" not in res.stderr, res.stderr


# --- a dedupe between the folder check and the sidecar's update (attack 21) ---------------

from test_attack20_push import _duplicate_folders, _save, machine_b  # noqa: E402,F401
from test_attack21_push import _dedupe_any, _vouched, md5  # noqa: E402


@renders("and its sidecar were moved apart on Drive while this push replaced it")
def test_a_dedupe_right_after_the_folder_check_never_leaves_the_path_without_last_pt(
        emulator, proxy, machine_b, tmp_path, caplog):
    """The dedupe lands exactly between the push's folder check (before the sidecar batch)
    and the sidecar's in-place update. The new last.pt already in the push's folder makes
    the name a conflict there: dedupe moves the old last.pt and last.json into the folder
    it keeps, leaves the new last.pt where it is, and trashes nothing (exit 1). The folder
    check after the sidecar passes (the folder is live), so the push deleted the old last.pt
    (now under the path) for good and ended 0: the path held a last.json naming bytes that
    were only in the duplicate folder, and no last.pt at all. The old copy must stay until
    a copy its sidecar vouches for is beside the sidecar under the path."""
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    old, new = os.urandom(4000), os.urandom(5000)
    kept, written = _duplicate_folders(emulator, machine_b, tmp_path, src, old)
    old_id = next(f["id"] for f in emulator.files() if f["title"] == "last.pt")
    _save(src, new, 2)
    state = {"uploaded": False, "deduped": False}
    after: list[tuple[str, bool, bool]] = []   # each request after the dedupe, the path then
    deduped: list = []

    def seen(method):
        def mutate(status, headers, body):
            path = proxy.requests[-1][1]
            if method == "POST" and path.startswith("/upload/"):
                state["uploaded"] = True
            if (method == "GET" and state["uploaded"] and not state["deduped"]
                    and path.startswith(f"/drive/v2/files/{written}")):
                deduped.append(_dedupe_any(emulator, tmp_path))  # right after the check
                state["deduped"] = True
            elif state["deduped"]:
                after.append((f"{method} {path.split('?')[0]}", *_vouched(emulator)))
            return Reply(status, headers, [body])
        return mutate
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        proxy.on(method, "", seen(method))
    push(str(src), (machine_b, "runs/a"), jobs=1)
    shown("and its sidecar were moved apart on Drive while this push replaced it",
          caplog.text)
    assert "pushing again into the folder the path leads to now" in caplog.text
    assert state["deduped"] and deduped[0].returncode == 1   # the conflict it leaves
    assert emulator.find("runs/a")["id"] == kept
    assert all(has for _, has, _ in after), after          # a last.pt under the path always
    removed = [vouched for what, _, vouched in after  # (a files.get of it comes first)
               if what.startswith("DELETE") and what.endswith(old_id)]
    assert removed == [True], after       # the old one went once the new one was vouched for
    assert live_md5s(emulator, "runs/a")["last.pt"] == [md5(new)]
    assert _vouched(emulator) == (True, True)
    unvouched = [what for what, _, vouched in after if not vouched]
    # Measured: from the sidecar's update to the second run's upload of last.pt into the
    # path's folder (no conditional write on Drive closes it; the old bytes stay there).
    assert len(unvouched) <= 10, unvouched
