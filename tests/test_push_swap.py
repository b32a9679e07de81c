"""push's checkpoint swap attacked: a SIGKILL at each step of it, readers during it (resume,
retention, the trainer's listing), two machines at once. The promise under test: at every
moment Drive holds a copy of the checkpoint that its sidecar vouches for."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

import pytest

from _kill import sigkill_when
from _forkcli import cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)
from drivestage.upload_tree import push

FOLDER = "Models/logs"


def _write(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _live(emu, folder=FOLDER):
    """name -> [file resources] of the live files directly in ``folder``."""
    top = emu.find(folder)["id"]
    out = {}
    for f in emu.files():
        if f["labels"]["trashed"] or not any(p["id"] == top for p in f.get("parents") or []):
            continue
        out.setdefault(f["title"], []).append(f)
    return out


def _save(src, name: str, epoch: int, data: bytes, run: str = "r1"):
    """What the trainer (or CheckpointSync) writes: the checkpoint, then its sidecar."""
    _write(os.path.join(src, name), data)
    stem = os.path.splitext(name)[0]
    _write(os.path.join(src, stem + ".json"), json.dumps(
        {"epoch": epoch, "iteration": epoch * 10, "run": run, "md5": _md5(data),
         "size": len(data)}).encode())


def _vouched(emu, name="model.pt"):
    """The md5s of the copies of ``name`` on Drive that its sidecar vouches for."""
    live = _live(emu)
    sides = live.get(os.path.splitext(name)[0] + ".json", [])
    named = {json.loads(emu.read_bytes(s["id"]))["md5"] for s in sides}
    return {f["md5Checksum"] for f in live.get(name, [])} & named


def _wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the server never did it"
        time.sleep(0.01)


# --------------------------------------------------------------------------- kills

@pytest.mark.parametrize("moment", ["sidecar-update", "old-copy-delete"])
def test_a_sigkill_at_any_step_of_the_swap_leaves_a_vouched_copy(emulator, drive_env, env,
                                                                  moment):
    """A loop that saves one name every epoch (``model.pt``, CheckpointSync's usual use):
    killed between two requests of its replacement, Drive must still hold a copy its sidecar
    vouches for, or a resume starts from nothing."""
    from drivestage.hooks import CheckpointSync

    src = str(env / "run")
    old, new = os.urandom(40_000), os.urandom(40_000)
    _save(src, "model.pt", 1, old)
    push(src, f"drive:{FOLDER}")
    side_id = emulator.find(f"{FOLDER}/model.json")["id"]
    old_id = emulator.find(f"{FOLDER}/model.pt")["id"]
    _save(src, "model.pt", 2, new)
    # The step stalls (after the server acted on it) until the child is killed.
    path = {"sidecar-update": rf"^/upload/drive/v2/files/{side_id}",
            "old-copy-delete": rf"^/drive/v2/files/{old_id}"}[moment]
    method = {"sidecar-update": "PUT", "old-copy-delete": "DELETE"}[moment]
    emulator.faults.latency(60, method=method, path=path)
    proc = cli_server().popen(["push", src, f"drive:{FOLDER}"],
                              env={**os.environ, **drive_env}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    sigkill_when(proc, lambda: any(r.method == method and r.path.startswith(path.lstrip("^"))
                                   for r in emulator.requests), f"no {moment} request came")
    emulator.faults.clear()
    if moment == "old-copy-delete":  # the server acts on a request it logged a moment ago
        _wait_for(lambda: old_id not in {f["id"] for f in emulator.files()
                                         if not f["labels"]["trashed"]})
    assert _vouched(emulator), {n: [f["md5Checksum"] for f in fs] for n, fs in _live(emulator).items()}
    sync = CheckpointSync(f"drive:{FOLDER}", local_dir=str(env / "fresh"))
    try:
        entry = sync.latest_remote_checkpoint()
        assert entry is not None and entry.md5 in (_md5(old), _md5(new))
    finally:
        sync.on_train_end()
    # The next push finishes the job: one copy, the new one, vouched for.
    push(src, f"drive:{FOLDER}")
    live = _live(emulator)
    assert [f["md5Checksum"] for f in live["model.pt"]] == [_md5(new)]
    assert _vouched(emulator) == {_md5(new)}


def test_a_sidecar_that_fails_to_upload_keeps_the_old_copy_it_vouches_for(emulator, store, env):
    from drivestage.errors import DriveStageError

    src = str(env / "run")
    old, new = os.urandom(30_000), os.urandom(30_000)
    _save(src, "model.pt", 1, old)
    push(src, FOLDER, store=store)
    side_id = emulator.find(f"{FOLDER}/model.json")["id"]
    _save(src, "model.pt", 2, new)
    emulator.faults.inject(method="PUT", path=rf"^/upload/drive/v2/files/{side_id}", status=400,
                           times=None)
    with pytest.raises(DriveStageError):
        push(src, FOLDER, store=store)
    emulator.faults.clear()
    assert sorted(f["md5Checksum"] for f in _live(emulator)["model.pt"]) == \
        sorted([_md5(old), _md5(new)])
    assert _vouched(emulator) == {_md5(old)}
    push(src, FOLDER, store=store)
    assert [f["md5Checksum"] for f in _live(emulator)["model.pt"]] == [_md5(new)]
    assert _vouched(emulator) == {_md5(new)}


# --------------------------------------------------------------------------- readers

def _swap_window(emu, name: str, epoch: int, *, step: int = 0, run: str = "r1"):
    """Another machine's push between the new file's arrival and its sidecar's update: two
    copies of ``name``, the sidecar vouching for the older. Returns (old md5, new md5)."""
    old, new = os.urandom(2000), os.urandom(2000)
    old_id = emu.add_file(f"{FOLDER}/{name}", old)
    emu.add_file(f"{FOLDER}/{os.path.splitext(name)[0]}.json", json.dumps(
        {"epoch": epoch, "iteration": epoch * 10 + step, "epoch_iteration": step, "run": run,
         "md5": _md5(old), "size": len(old)}).encode())
    emu.add_file(f"{FOLDER}/{name}", new)
    # Made in one millisecond, the two would share a modifiedDate: the new one is newer.
    emu.store.update_meta(old_id, {"modifiedDate": "2020-01-01T00:00:00.000Z"}, set_modified=True)
    return _md5(old), _md5(new)


def _verified(emu, name: str, epoch: int, run: str = "r1"):
    data = os.urandom(1000)
    emu.add_file(f"{FOLDER}/{name}", data)
    emu.add_file(f"{FOLDER}/{os.path.splitext(name)[0]}.json", json.dumps(
        {"epoch": epoch, "iteration": epoch * 10, "run": run, "md5": _md5(data)}).encode())


def test_prune_during_another_machines_swap_keeps_the_vouched_copy(emulator, store, env):
    """keep_last=1 while epoch_002.pt is being replaced elsewhere: the copy its sidecar vouches
    for is the newest verified checkpoint and stays (the swap itself removes it later)."""
    from drivestage.pruning import prune
    from drivestage.retention import RetentionPolicy

    _verified(emulator, "epoch_001.pt", 1)
    old, new = _swap_window(emulator, "epoch_002.pt", 2)
    prune(FOLDER, RetentionPolicy(keep_last=1), store=store)
    assert old in _vouched(emulator, "epoch_002.pt")


def test_the_trainers_listing_during_a_swap_takes_the_vouched_copy(emulator, drive_env, env):
    """A resume on a new machine while the old one is mid-swap must continue from the newest
    verified checkpoint (the autosave being replaced), not from an older one."""
    from trainer.drive import DriveFolder, newest_of_current_run

    _verified(emulator, "epoch_002.pt", 2)
    old, new = _swap_window(emulator, "autosave_00000025.pt", 2, step=5)
    found = DriveFolder(f"drive:{FOLDER}", str(env / "logs")).checkpoints()
    chosen = newest_of_current_run(found)
    assert chosen is not None and chosen.name == "autosave_00000025.pt"
    assert chosen.entry.md5 == old


# --------------------------------------------------------------------------- retention

def test_a_checkpoint_whose_sidecar_is_not_written_yet_does_not_retire_the_verified_one(
        emulator, store, env):
    """A push lands between a loop writing epoch_005.pt and writing its sidecar (a mirror on a
    timer, `drivestage mirror --every`): keep_last=1 must not delete epoch_004, the newest
    checkpoint Drive can vouch for, for a file that is not verified yet."""
    from drivestage.retention import RetentionPolicy

    src = str(env / "run")
    # CheckpointSync's sidecars name no run: the two checkpoints are one run.
    _save(src, "epoch_004.pt", 4, os.urandom(3000), run=None)
    push(src, FOLDER, RetentionPolicy(keep_last=1), store=store)
    _write(os.path.join(src, "epoch_005.pt"), os.urandom(3000))   # its sidecar comes next
    push(src, FOLDER, RetentionPolicy(keep_last=1), store=store)
    assert _vouched(emulator, "epoch_004.pt")
    _save(src, "epoch_005.pt", 5, open(os.path.join(src, "epoch_005.pt"), "rb").read(),
          run=None)
    push(src, FOLDER, RetentionPolicy(keep_last=1), store=store)
    assert sorted(_live(emulator)) == ["epoch_005.json", "epoch_005.pt"]
    assert _vouched(emulator, "epoch_005.pt")
