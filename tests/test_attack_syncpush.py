"""Attacks: a training loop's :class:`drivestage.hooks.CheckpointSync` mirroring a run folder
while ``drivestage push`` / ``mirror`` / ``prune`` of the same folder into the same Drive
folder runs in another process: a Colab cell pushing logs while training goes on (same
machine: the same state folder, so pushes take turns on the place lock), or a second runtime
(its own state folder, no lock in common). Either side is stopped at a real moment (a step of
the sync's push reached, a file on Drive, a request the emulator saw) or SIGKILLed there.

What users rely on, asserted after every interleaving: Drive holds a verified checkpoint of
the run (its bytes' md5 is its sidecar's), the newest one the trainer saved is never deleted
before a newer one is verified, no sidecar names bytes that are not there, a name has at most
two copies (one being replaced), and both sides end with exit code 0."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import tempfile
import threading

import pytest

from _cli import child_env
from _drive_state import live_md5s
from _forkcli import PIPE, cli_server
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture)

FOLDER = "Models/logs"


_STARTED: list = []   # every sync a test made, with its gate: stopped after the test


@pytest.fixture(autouse=True)
def _fast(fast_retries, local_state):
    """Backoffs of a millisecond, without jitter; drivestage's state in tmp_path. Every sync
    a test started is let go and stopped after it: no mirror thread outlives its test."""
    yield
    while _STARTED:
        sync, gate = _STARTED.pop()
        gate.release()
        sync.mirror.stop(30, flush=False)
        assert not sync.mirror._thread.is_alive()


def _live(emu) -> dict:
    return live_md5s(emu, FOLDER)


def _live_files(emu) -> list[dict]:
    top = emu.find(FOLDER)["id"]
    return [f for f in emu.files() if not f["labels"]["trashed"]
            and any(p["id"] == top for p in f.get("parents") or [])]


def _verified(emu) -> dict:
    """Checkpoint name -> epoch, for every checkpoint on Drive whose sidecar vouches for a copy
    of it that is there; asserts no sidecar there names bytes that are not there."""
    live = _live_files(emu)
    out = {}
    for side in [f for f in live if f["title"].endswith(".json")]:
        said = json.loads(emu.read_bytes(side["id"]))
        stem = side["title"][:-len(".json")]
        copies = {f.get("md5Checksum") for f in live if f["title"] == stem + ".pt"}
        assert said["md5"] in copies, (side["title"], "vouches for bytes not on Drive",
                                       _live(emu))
        out[stem + ".pt"] = said["epoch"]
    return out


def _bounded(emu) -> None:
    for name, md5s in _live(emu).items():
        assert len(md5s) <= 2, (name, _live(emu))


def _atomic(path: str, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=os.path.dirname(path))
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _save(sync, run: str, epoch: int, *, last: bool = False, stem: str = "") -> str:
    """The loop's save of ``epoch``: ``epoch_NNN.pt`` (or ``last.pt`` with ``last``), then
    ``on_save``. Returns the md5 of the bytes written."""
    data = os.urandom(2000) + f"epoch {epoch}".encode()
    name = "last.pt" if last else f"{stem or 'epoch_'}{epoch:03d}.pt"
    path = os.path.join(run, name)
    _atomic(path, data)
    sync.on_save(path, epoch, {"map50": epoch / 100})
    return hashlib.md5(data).hexdigest()


class _Gated:
    """CheckpointSync's store: the emulator through the real stack, stopped at its first
    ``op`` of ``name`` (``"upload"``: before sending it, ``"uploaded"``: once it is verified,
    ``"delete"``: before deleting it) until :meth:`release`. ``own_lock``: another runtime
    (no place lock in common with this machine's pushes)."""

    def __init__(self, emulator, op: str = "", name: str = "", own_lock: bool = False):
        from drivestage.drive import connect

        self._store = connect(api_root=emulator.url, token="test-token")
        self.op, self.name, self.own_lock = op, name, own_lock
        self.reached, self._go = threading.Event(), threading.Event()

    def __getattr__(self, attr):
        return getattr(self._store, attr)

    def place(self, path) -> str:
        return ("sync|" if self.own_lock else "") + self._store.place(path)

    def _gate(self, op: str, name: str) -> None:
        if op == self.op and name == self.name and not self.reached.is_set():
            self.reached.set()
            assert self._go.wait(60), "the sync was never released"

    def upload(self, local_path, folder, name, **kw):
        self._gate("upload", name)
        entry = self._store.upload(local_path, folder, name, **kw)
        self._gate("uploaded", name)
        return entry

    def delete(self, entry, **kw):
        self._gate("delete", entry.name)
        return self._store.delete(entry, **kw)

    def delete_many(self, entries, **kw):  # (prune24: a pass of deletions in batches)
        for e in entries:
            self._gate("delete", e.name)
        return self._store.delete_many(entries, **kw)

    def release(self) -> None:
        self._go.set()


def _sync(emulator, run: str, keep_last: int, gate: _Gated | None = None):
    from drivestage.hooks import CheckpointSync
    from drivestage.retention import RetentionPolicy

    store = gate if gate is not None else _Gated(emulator)
    sync = CheckpointSync((store, FOLDER), RetentionPolicy(keep_last=keep_last), local_dir=run)
    _STARTED.append((sync, store))
    return sync


def _cli(*args: str, state: str | None = None, emulator=None) -> subprocess.CompletedProcess:
    """``drivestage ARGS`` in a child process (``state``: another runtime's state folder),
    forked with its imports done (tests/_forkcli.py: a fresh interpreter cost 0.5 s of CPU
    to start, 2-3 s on a loaded machine)."""
    env = child_env(emulator)
    if state is not None:
        env["DRIVESTAGE_STATE_DIR"] = state
    return cli_server().run(list(args), env=env, text=True, timeout=120)


# ------------------------------------------------------------ 1. push beside the sync

@pytest.mark.parametrize("where", ["same machine", "second runtime"])
def test_push_keep_last_1_while_the_sync_is_between_a_checkpoint_and_its_sidecar(
        emulator, tmp_path, where):
    """The sync (keep 3) has sent epoch 4 and not yet its sidecar when the user's cell runs
    ``push --keep-last 1`` of the same folder (on the same machine it waits for the sync's
    push on the place lock; from a second runtime it runs through). Epoch 3 (the newest
    verified) stays until epoch 4 is verified; both end well; the sync's next push leaves
    its 3 newest, each once."""
    run = str(tmp_path / "run")
    sync = _sync(emulator, run, 3)
    for e in (1, 2, 3):
        _save(sync, run, e)
    sync.flush(60)
    gate = _Gated(emulator, "upload", "epoch_004.json", own_lock=where == "second runtime")
    sync = _sync(emulator, run, 3, gate)
    e4 = _save(sync, run, 4)
    assert gate.reached.wait(60)
    assert _live(emulator)["epoch_004.pt"] == [e4]
    assert _verified(emulator) == {"epoch_001.pt": 1, "epoch_002.pt": 2, "epoch_003.pt": 3}
    env = child_env(emulator)
    if where == "second runtime":   # (its own state folder: no lock in common with the sync)
        env["DRIVESTAGE_STATE_DIR"] = str(tmp_path / "other-runtime")
    proc = cli_server().popen(["push", run, f"drive:{FOLDER}", "--keep-last", "1"], env=env,
                              stdout=PIPE, stderr=PIPE, text=True)
    if where == "same machine":
        # It waits for the sync's push: nothing of epoch 3 goes meanwhile.
        line = proc.stderr.readline()
        assert "another push into" in line and "waiting for it" in line, line
        assert 3 in _verified(emulator).values()
        gate.release()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert max(_verified(emulator).values()) == 4
    assert where == "same machine" or "waiting for it" not in err, err   # (ran through)
    gate.release()
    sync.flush(60)
    _save(sync, run, 5)
    sync.on_train_end(60)
    _bounded(emulator)
    assert _verified(emulator) == {"epoch_003.pt": 3, "epoch_004.pt": 4, "epoch_005.pt": 5}
    assert sorted(_live(emulator)) == ["epoch_003.json", "epoch_003.pt", "epoch_004.json",
                                       "epoch_004.pt", "epoch_005.json", "epoch_005.pt"]
    assert all(len(v) == 1 for v in _live(emulator).values()), _live(emulator)


# ------------------------------------------------------------ 2. push --delete beside it

def test_push_delete_from_a_second_runtime_while_the_sync_replaces_last_pt(emulator,
                                                                          tmp_path):
    """A loop that saves only ``last.pt``: the sync has sent the new copy of ``last.pt`` and
    not yet its sidecar when a second runtime runs ``push --delete`` of its own folder (logs
    only) into the same Drive folder. ``--delete`` spares the newest verified checkpoint,
    but it took only the copy the old sidecar vouches for: the new copy went, then the sync
    updated the sidecar and deleted the old copy: no checkpoint at all. A copy the sidecar
    on Drive vouches for stays at every step."""
    run = str(tmp_path / "run")
    sync = _sync(emulator, run, 3)
    _save(sync, run, 1, last=True)
    sync.flush(60)
    gate = _Gated(emulator, "upload", "last.json", own_lock=True)
    sync = _sync(emulator, run, 3, gate)
    new = _save(sync, run, 2, last=True)
    assert gate.reached.wait(60)
    assert new in _live(emulator)["last.pt"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.csv").write_text("epoch,map50\n")
    done = _cli("push", str(other), f"drive:{FOLDER}", "--delete", emulator=emulator,
                state=str(tmp_path / "state2"))
    assert done.returncode == 0, done.stderr
    assert _verified(emulator) == {"last.pt": 1}
    gate.release()
    _runs_done(sync, 1)     # the sync's push that was stopped, and no other since
    _bounded(emulator)
    assert _verified(emulator) == {"last.pt": 2}
    assert _live(emulator)["last.pt"] == [new]
    sync.on_train_end(60)
    assert _verified(emulator) == {"last.pt": 2}
    assert _live(emulator)["last.pt"] == [new]


def _runs_done(sync, n: int) -> None:
    """Wait until the sync's mirror finished ``n`` runs (and check it had no error)."""
    with sync.mirror._cond:
        assert sync.mirror._cond.wait_for(lambda: sync.mirror.runs >= n, 60), "never finished"
    assert sync.mirror.last_error is None, sync.mirror.last_error


# ------------------------------------------------------------ 3. SIGKILLs

def test_a_push_sigkilled_in_its_upload_beside_the_sync(emulator, tmp_path):
    """The user's cell ``push --keep-last 1`` (same machine) is SIGKILLed in its upload of
    epoch 3 (the loop saved it, the sync has not pushed it yet); the sync's next push then
    takes the place lock, sends epoch 3 and its sidecar, and ends 0."""
    from _kill import sigkill_push_in_its_upload

    run = str(tmp_path / "run")
    sync = _sync(emulator, run, 2)
    for e in (1, 2):
        _save(sync, run, e)
    sync.flush(60)
    # Written by the loop, not yet told to the sync.
    data = os.urandom(3000)
    _atomic(os.path.join(run, "epoch_003.pt"), data)
    sigkill_push_in_its_upload(emulator, child_env(emulator), run, f"drive:{FOLDER}",
                               "--keep-last", "1")
    assert {1, 2} <= set(_verified(emulator).values())
    sync.on_save(os.path.join(run, "epoch_003.pt"), 3, {"map50": 0.3})
    sync.on_train_end(60)
    _bounded(emulator)
    assert _verified(emulator) == {"epoch_002.pt": 2, "epoch_003.pt": 3}
    assert _live(emulator)["epoch_003.pt"] == [hashlib.md5(data).hexdigest()]


_SYNC_CHILD = r"""
import os, sys
from drivestage.hooks import CheckpointSync
from drivestage.retention import RetentionPolicy
run, epoch = sys.argv[1], int(sys.argv[2])
sync = CheckpointSync("drive:Models/logs", RetentionPolicy(keep_last=2), local_dir=run)
path = os.path.join(run, "last.pt")
tmp = path + ".tmp"
with open(tmp, "wb") as fh:
    fh.write(os.urandom(3000))
os.replace(tmp, path)
sync.on_save(path, epoch)
sync.on_train_end()
print("done")
"""


@pytest.mark.parametrize("then", ["push", "push --delete", "prune"])
def test_the_training_process_sigkilled_between_last_pt_and_its_sidecar(emulator, tmp_path,
                                                                         then):
    """The training process (CheckpointSync) is SIGKILLed once its new ``last.pt`` copy is on
    Drive, before the sidecar: Drive holds two copies, the sidecar still vouching for the old
    one. The user's cell then pushes (or prunes) the same folder: it ends 0 and leaves one
    verified ``last.pt`` (the new one, after a push), never none."""
    from _kill import sigkill_when

    run = str(tmp_path / "run")
    env = child_env(emulator)
    # (The training process: `python -c _SYNC_CHILD`, forked with drivestage imported.)
    first = cli_server().run([run, "1"], script=_SYNC_CHILD, env=env, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    # The sidecar is updated in place: its upload is refused (Drive's 503) until the
    # training process is killed at the first try.
    side_id = emulator.find(f"{FOLDER}/last.json")["id"]
    emulator.clear_requests()
    emulator.faults.inject(None, rf"^/upload/drive/v2/files/{side_id}\b", status=503,
                           reason="backendError", times=None)
    proc = cli_server().popen([run, "2"], script=_SYNC_CHILD, env=env, stdout=PIPE,
                              stderr=PIPE)
    # (The upload itself: the sync reads Drive's sidecar first, to tell whose it is.)
    sigkill_when(proc, lambda: any(r.path.startswith("/upload/") and r.path.endswith(side_id)
                                   for r in emulator.requests),
                 "the sync never began the upload of the sidecar")
    assert len(_live(emulator)["last.pt"]) == 2
    emulator.faults.clear()
    assert _verified(emulator) == {"last.pt": 1}
    with open(os.path.join(run, "last.pt"), "rb") as fh:
        new = hashlib.md5(fh.read()).hexdigest()
    args = {"push": ["push", run, f"drive:{FOLDER}"],
            "push --delete": ["push", run, f"drive:{FOLDER}", "--delete"],
            "prune": ["prune", f"drive:{FOLDER}", "--keep-last", "1"]}[then]
    done = _cli(*args, emulator=emulator)
    assert done.returncode == 0, done.stderr
    _bounded(emulator)
    if then == "prune":
        assert _verified(emulator) == {"last.pt": 1}
    else:
        assert _verified(emulator) == {"last.pt": 2}
        assert _live(emulator)["last.pt"] == [new]


def _delete_during_a_new_epoch(emulator, tmp_path):
    """The sync (keep 3) has sent epoch 3 and not yet its sidecar (an unverified file of a new
    name) when a second runtime's ``push --delete`` of another folder removes it; the sync is
    then let go and its push ends. Returns the sync and the md5 of epoch 3."""
    run = str(tmp_path / "run")
    sync = _sync(emulator, run, 3)
    for e in (1, 2):
        _save(sync, run, e)
    sync.flush(60)
    gate = _Gated(emulator, "upload", "epoch_003.json", own_lock=True)
    sync = _sync(emulator, run, 3, gate)
    e3 = _save(sync, run, 3)
    assert gate.reached.wait(60)
    # A run folder the second runtime knows nothing of: no record there, and (made by a
    # drivestage before run folders were marked on Drive, runmark30) no mark on Drive; a
    # marked one keeps its checkpoints against that --delete.
    emulator.store.set_properties(emulator.find(FOLDER)["id"], [])
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.csv").write_text("epoch,map50\n")
    done = _cli("push", str(other), f"drive:{FOLDER}", "--delete", emulator=emulator,
                state=str(tmp_path / "state2"))
    assert done.returncode == 0, done.stderr
    assert _verified(emulator) == {"epoch_002.pt": 2}
    gate.release()
    _runs_done(sync, 1)
    return sync, e3


def test_push_delete_of_a_new_epoch_in_flight_keeps_the_newest_verified_and_heals(emulator,
                                                                                  tmp_path):
    """Epoch 2, the newest verified, stays throughout; the sync's next push sends epoch 3
    again (it is local and not on Drive) and leaves it verified."""
    sync, e3 = _delete_during_a_new_epoch(emulator, tmp_path)
    assert _live(emulator)["epoch_002.json"] and _live(emulator)["epoch_002.pt"]
    sync.on_train_end(60)
    _bounded(emulator)
    # Epoch 1, which --delete removed too, is sent again: the sync's policy keeps 3.
    assert _verified(emulator) == {"epoch_001.pt": 1, "epoch_002.pt": 2, "epoch_003.pt": 3}
    assert _live(emulator)["epoch_003.pt"] == [e3]


def test_push_delete_of_a_new_epoch_in_flight_leaves_no_sidecar_without_its_checkpoint(
        emulator, tmp_path):
    """Once the sidecar is verified, the push looks whether the checkpoint it sent is still
    there, and sends it again when it is gone (push23). A deletion after that look still
    leaves a sidecar naming bytes that are gone until the next push: Drive has no
    conditional upload, so the window is one files.get, not none."""
    sync, e3 = _delete_during_a_new_epoch(emulator, tmp_path)
    try:
        assert _verified(emulator) == {"epoch_002.pt": 2, "epoch_003.pt": 3}  # (asserts too
        assert _live(emulator)["epoch_003.pt"] == [e3]    # that every sidecar names bytes
    finally:                                              # that are there)
        sync.on_train_end(60)


# ------------------------------------------------------------ 4. the policies disagree

@pytest.mark.slow
def test_push_keep_last_1_and_the_sync_keeping_3_take_turns_without_losing_the_newest(
        emulator, tmp_path):
    """The sync keeps 3; the user's cell pushes the same folder with ``--keep-last 1`` after
    every save (same machine). Each side applies its own policy when it runs: the cell's push
    leaves the newest only, the sync's next push sends the two before it again (its policy
    keeps them). At every moment the newest checkpoint saved is verified on Drive, no name
    has two copies, and each sync push re-sends at most the 2 the cell removed."""
    run = str(tmp_path / "run")
    sync = _sync(emulator, run, 3)
    for e in range(1, 6):
        md5 = _save(sync, run, e)
        sync.flush(60)
        assert _verified(emulator)[f"epoch_{e:03d}.pt"] == e
        assert len(_verified(emulator)) == min(e, 3)
        emulator.clear_requests()
        done = _cli("push", run, f"drive:{FOLDER}", "--keep-last", "1", emulator=emulator)
        assert done.returncode == 0, done.stderr
        assert _verified(emulator) == {f"epoch_{e:03d}.pt": e}
        assert _live(emulator)[f"epoch_{e:03d}.pt"] == [md5]
        assert not any(r.path.startswith("/upload/") for r in emulator.requests)
        assert all(len(v) == 1 for v in _live(emulator).values()), _live(emulator)
    emulator.clear_requests()
    sync.on_train_end(60)
    # Epochs 3 and 4 and their sidecars, again. (Each create names the id its first one
    # was made with, kept an hour for a listing that lags: refused, 409, as that file was
    # deleted; then made with another.)
    sent = [r for r in emulator.requests if r.method == "POST"
            and r.path.startswith("/upload/") and r.status != 409]
    assert len(sent) == 4
    assert _verified(emulator) == {"epoch_003.pt": 3, "epoch_004.pt": 4, "epoch_005.pt": 5}


def test_mirror_keep_last_1_beside_the_sync_ends_0_on_sigterm(emulator, tmp_path):
    """``drivestage mirror --keep-last 1`` of the same folder runs in another process (same
    machine) while the loop saves with the sync keeping 3; on SIGTERM the mirror pushes once
    more and exits 0, and Drive holds the newest epoch verified."""
    run = str(tmp_path / "run")
    sync = _sync(emulator, run, 3)
    _save(sync, run, 1)
    sync.flush(60)
    proc = cli_server().popen(["mirror", run, f"drive:{FOLDER}", "--every", "3600",
                               "--keep-last", "1"], env=child_env(emulator), stdout=PIPE,
                              stderr=PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert line.startswith("mirroring "), line
        for e in (2, 3):
            _save(sync, run, e)
            sync.flush(60)
            assert max(_verified(emulator).values()) == e
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "final push in" in err, err
    assert _verified(emulator) == {"epoch_003.pt": 3}
    sync.on_train_end(60)
    _bounded(emulator)
    assert _verified(emulator) == {"epoch_001.pt": 1, "epoch_002.pt": 2, "epoch_003.pt": 3}


# ------------------------------------------------------------ 5. prune beside the sync

def test_prune_while_the_sync_is_deleting_what_its_policy_retires(emulator, tmp_path):
    """``prune --keep-last 1`` runs while the sync's push (keep 2) has sent epoch 3 and its
    sidecar and is about to delete epoch 1: prune leaves epoch 3 (the newest verified) and
    the sync's deletions of what prune already took end well."""
    run = str(tmp_path / "run")
    sync = _sync(emulator, run, 2)
    for e in (1, 2):
        _save(sync, run, e)
    sync.flush(60)
    gate = _Gated(emulator, "delete", "epoch_001.pt")
    sync = _sync(emulator, run, 2, gate)
    _save(sync, run, 3)
    assert gate.reached.wait(60)
    assert _verified(emulator) == {"epoch_001.pt": 1, "epoch_002.pt": 2, "epoch_003.pt": 3}
    done = _cli("prune", f"drive:{FOLDER}", "--keep-last", "1", emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert _verified(emulator) == {"epoch_003.pt": 3}
    gate.release()
    _runs_done(sync, 1)
    assert _verified(emulator) == {"epoch_003.pt": 3}
    sync.on_train_end(60)
    _bounded(emulator)
    assert _verified(emulator) == {"epoch_002.pt": 2, "epoch_003.pt": 3}


@pytest.mark.parametrize("delete", [False, True])
def test_push_keep_last_1_between_the_loops_save_and_its_on_save(emulator, tmp_path, delete):
    """The loop has written epoch 3 and not yet called ``on_save`` (no sidecar here yet) when
    the user's cell pushes the same folder with ``--keep-last 1`` (and ``--delete``): epoch 3
    goes up unverified, so epoch 2, the newest verified, stays; once ``on_save`` runs, the
    sync sends the sidecar and keeps its 2."""
    run = str(tmp_path / "run")
    sync = _sync(emulator, run, 2)
    for e in (1, 2):
        _save(sync, run, e)
    sync.flush(60)
    data = os.urandom(3000)
    path = os.path.join(run, "epoch_003.pt")
    _atomic(path, data)
    args = ["push", run, f"drive:{FOLDER}", "--keep-last", "1"] + (["--delete"] if delete else [])
    done = _cli(*args, emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert _verified(emulator) == {"epoch_002.pt": 2}
    assert _live(emulator)["epoch_003.pt"] == [hashlib.md5(data).hexdigest()]
    sync.on_save(path, 3, {"map50": 0.3})
    sync.on_train_end(60)
    _bounded(emulator)
    assert _verified(emulator) == {"epoch_002.pt": 2, "epoch_003.pt": 3}
    assert all(len(v) == 1 for v in _live(emulator).values()), _live(emulator)


# ------------------------------------------------------------ 6. the loop saves during a push

def test_a_save_between_a_push_sending_last_pt_and_its_sidecar_leaves_a_verified_copy(
        emulator, tmp_path):
    """The user's cell pushes the folder (same machine, one upload at a time) and has sent
    the loop's ``last.pt`` of epoch 2; while it sends ``results.csv`` the loop saves epoch 3
    (``last.pt`` and, through ``on_save``, its sidecar). The push then sent the sidecar it
    found, epoch 3's, beside epoch 2's bytes, and deleted epoch 1's copy, which the sidecar
    on Drive had vouched for: no verified ``last.pt`` until the sync's next push. A push
    sends a sidecar only when it vouches for the copy that push sent."""
    from _checkpoints import sidecar_json

    run = str(tmp_path / "run")
    gate = _Gated(emulator)
    sync = _sync(emulator, run, 3, gate)
    csv = os.path.join(run, "results.csv")
    _save(sync, run, 1, last=True)
    with open(csv, "a") as fh:
        fh.write("1,0.01\n")
    sync.flush(60)
    # Epoch 2, saved by the loop with its own sidecar (as the trainer does); no on_save yet.
    b1 = os.urandom(3000)
    _atomic(os.path.join(run, "last.pt"), b1)
    _atomic(os.path.join(run, "last.json"), sidecar_json(2, b1))
    with open(csv, "a") as fh:
        fh.write("2,0.02\n")
    csv_id = emulator.find(f"{FOLDER}/results.csv")["id"]
    emulator.clear_requests()
    # results.csv's upload is held until the loop has saved epoch 3 (let go below: it used
    # to wait out 3 s, whatever the save took).
    emulator.faults.latency(120.0, path=rf"^/upload/drive/v2/files/{csv_id}\b", times=1)
    proc = cli_server().popen(["push", run, f"drive:{FOLDER}", "-j", "1"],
                              env=child_env(emulator), stdout=PIPE, stderr=PIPE, text=True)
    try:
        deadline = threading.Event()
        while not any(r.path.endswith(csv_id) for r in emulator.requests):
            assert proc.poll() is None, proc.communicate()
            deadline.wait(0.01)
        assert hashlib.md5(b1).hexdigest() in _live(emulator)["last.pt"]
        # The sync's push waits for the cell's (the place lock), then stops before a byte.
        gate.op, gate.name = "upload", "last.pt"
        b2 = _save(sync, run, 3, last=True)
        # results.csv's upload goes on now: every latency ends until serving() below, so it
        # also ends when its thread had not yet begun to wait (a set-and-clear let that one
        # wait out its 120 s on a loaded machine).
        emulator.faults.release_holds()
        out, err = proc.communicate(timeout=120)
    finally:
        emulator.faults.release_holds()
        if proc.poll() is None:
            proc.kill()
        emulator.faults.serving()
    assert proc.returncode == 0, err
    assert (f"{run}/last.json changed while the push ran (its checkpoint was saved again); not "
            "sent, and the copy the sidecar on the store vouches for stays: the next push sends "
            "both") in err
    assert gate.reached.wait(60)
    try:
        assert "last.pt" in _verified(emulator), _live(emulator)
    finally:
        gate.release()
    sync.on_train_end(60)
    _bounded(emulator)
    assert _verified(emulator) == {"last.pt": 3}
    assert _live(emulator)["last.pt"] == [b2]


def test_a_loop_saving_during_every_push_leaves_at_most_two_copies(emulator, store, tmp_path):
    """The loop saves ``last.pt`` again during each of several pushes (each time right after
    the push sent the copy it had): each push leaves the new sidecar for the next one, and
    the copies do not pile up: the one the sidecar on Drive vouches for and the one just
    sent, no more. A last push with no save during it leaves one verified copy."""
    from _checkpoints import sidecar_json
    from drivestage.upload_tree import push

    run = str(tmp_path / "run")
    os.makedirs(run)
    epoch = [1]

    def save() -> None:
        data = os.urandom(3000)
        _atomic(os.path.join(run, "last.pt"), data)
        _atomic(os.path.join(run, "last.json"), sidecar_json(epoch[0], data))
        epoch[0] += 1

    class Saving:
        """The store; the loop saves again once a push's copy of last.pt is on Drive."""

        def __getattr__(self, attr):
            return getattr(store, attr)

        def upload(self, local_path, folder, name, **kw):
            entry = store.upload(local_path, folder, name, **kw)
            if name == "last.pt":
                save()
            return entry

    save()
    push(run, FOLDER, store=store)
    save()
    for _ in range(4):
        push(run, FOLDER, store=Saving())
        _bounded(emulator)
        assert _verified(emulator) == {"last.pt": 1}, _live(emulator)
    push(run, FOLDER, store=store)
    assert _verified(emulator) == {"last.pt": epoch[0] - 1}
    assert [len(v) for v in _live(emulator).values()] == [1, 1], _live(emulator)


def test_prune_of_a_managed_last_pt_while_the_sync_replaces_it(emulator, tmp_path):
    """``prune --pattern 'last' --keep-last 1`` (``last.pt`` managed) runs while the sync has
    sent the new copy of ``last.pt`` and not yet its sidecar: both copies stay (the plan
    keeps the name of the newest verified), and the sync then leaves its new copy, verified."""
    run = str(tmp_path / "run")
    sync = _sync(emulator, run, 3)
    _save(sync, run, 1, last=True)
    sync.flush(60)
    gate = _Gated(emulator, "upload", "last.json")
    sync = _sync(emulator, run, 3, gate)
    new = _save(sync, run, 2, last=True)
    assert gate.reached.wait(60)
    done = _cli("prune", f"drive:{FOLDER}", "--pattern", r"^last\.pt$", "--keep-last", "1",
                emulator=emulator)
    assert done.returncode == 0, done.stderr
    assert "0 to delete" in done.stdout, done.stdout
    assert len(_live(emulator)["last.pt"]) == 2, _live(emulator)
    gate.release()
    _runs_done(sync, 1)
    assert _verified(emulator) == {"last.pt": 2}
    assert _live(emulator)["last.pt"] == [new]
    sync.on_train_end(60)
