"""Attacks on the sixteenth session's guard of another run's checkpoints and on the trainer's
save that drops the old sidecar before the rename.

1. ``CheckpointSync`` (the hooks API a training loop calls) still replaced another run's
   newest verified checkpoint of the same name: the CLI and the trainer leave it.
2. A trainer save SIGKILLed after ``last.pt``'s rename and before its new sidecar left the
   folder's most advanced checkpoint undescribed: ``--resume auto`` went back to an older
   one (before the old sidecar was dropped first, it resumed from the new bytes).

Through the real stack against the emulator, and real SIGKILLs at exact audit events."""
from __future__ import annotations

import os
import signal
import sys
import time
from types import SimpleNamespace

import pytest

from _checkpoints import md5, sidecar_json
from _drive_state import live_md5s

FOLDER = "Models/logs"
DEST = f"drive:{FOLDER}"
THEIRS = "run-B"
T0 = time.time() - 3600


def _on_drive(emu, stem: str, epoch: int, run_id: str = THEIRS) -> dict:
    """Run B's checkpoint and its sidecar on Drive (name -> [md5])."""
    data = os.urandom(3000)
    side = sidecar_json(epoch, data, run_id, T0 + 100)
    emu.add_file(f"{FOLDER}/{stem}.pt", data)
    emu.add_file(f"{FOLDER}/{stem}.json", side)
    return {f"{stem}.pt": [md5(data)], f"{stem}.json": [md5(side)]}


# --- 1. CheckpointSync and another run's checkpoint ----------------------------------------

def test_checkpoint_sync_never_replaces_another_runs_checkpoint(emulator, drive_env,
                                                                local_state, fast_retries,
                                                                tmp_path):
    """A loop's ``last.pt`` (its sidecar, written by CheckpointSync, names no run) mirrored
    into a folder where run B's ``last.pt`` is verified: B's copy and sidecar stay byte for
    byte, the rest goes, and ``on_train_end`` raises naming B's file. Before: B's newest
    verified checkpoint was replaced, and the loop was told all went well."""
    from drivestage.errors import MirrorError
    from drivestage.hooks import CheckpointSync

    theirs = _on_drive(emulator, "last", 5)
    src = tmp_path / "a"
    src.mkdir()
    (src / "last.pt").write_bytes(os.urandom(3000))
    (src / "results.csv").write_text("epoch\n1\n")
    sync = CheckpointSync(DEST, local_dir=str(src))
    sync.on_save(str(src / "last.pt"), 1, {"map50": 0.1})
    with pytest.raises(MirrorError) as err:
        sync.on_train_end()
    assert str(err.value).endswith(
        f"{DEST}/last.pt is another run's checkpoint (run {THEIRS}, epoch 5), left as it is; "
        "the rest was pushed. Push into another folder, or pass replace_other_runs=True to "
        "replace it"), str(err.value)
    assert live_md5s(emulator, FOLDER) == {
        **theirs, "results.csv": [md5(b"epoch\n1\n")]}


def test_checkpoint_sync_replaces_another_runs_checkpoint_when_told(emulator, drive_env,
                                                                    local_state, fast_retries,
                                                                    tmp_path):
    from drivestage.hooks import CheckpointSync

    _on_drive(emulator, "last", 5)
    src = tmp_path / "a"
    src.mkdir()
    data = os.urandom(3000)
    (src / "last.pt").write_bytes(data)
    sync = CheckpointSync(DEST, local_dir=str(src), replace_other_runs=True)
    sync.on_save(str(src / "last.pt"), 1)
    sync.on_train_end()
    on_drive = live_md5s(emulator, FOLDER)
    assert on_drive["last.pt"] == [md5(data)] and len(on_drive["last.json"]) == 1


def test_push_delete_never_removes_the_sidecar_of_a_checkpoint_it_left(emulator, drive_env,
                                                                       local_state,
                                                                       fast_retries, tmp_path):
    """Run B's ``epoch_001.pt`` described by 0.1.0's ``epoch_001.pt.json`` (not B's newest):
    ``push --delete`` of run A's ``epoch_001.pt``/``epoch_001.json`` said it was left as it
    is, yet deleted its sidecar (not a local name), and the next push, exit 0 without
    ``--force``, replaced B's checkpoint that nothing vouched for any more."""
    from _checkpoints import save
    from _cli import run

    theirs: dict = {}
    for i in (1, 2):
        data = os.urandom(3000)
        side = sidecar_json(i, data, THEIRS, T0 + i)
        emulator.add_file(f"{FOLDER}/epoch_00{i}.pt", data)
        emulator.add_file(f"{FOLDER}/epoch_00{i}.pt.json", side)
        theirs.update({f"epoch_00{i}.pt": [md5(data)], f"epoch_00{i}.pt.json": [md5(side)]})
    src = str(tmp_path / "a")
    save(src, "epoch_001", 1, T0 + 400, run="run-A", saved=T0 + 400)
    for _ in range(2):
        code, out, err = run("push", src, DEST, "--delete")
        assert code == 1, err
        assert err.splitlines()[-1] == (
            f"Error: {DEST}/epoch_001.pt is another run's checkpoint (run {THEIRS}, epoch 1), "
            "left as it is; the rest was pushed. Push into another folder, or add --force to "
            "replace it")
        assert live_md5s(emulator, FOLDER) == theirs


# --- 2. a trainer save killed between last.pt's rename and its sidecar ---------------------

_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def _state(epoch: int) -> dict:
    import torch

    return {"format_version": 2, "model": {"w": torch.full((64,), float(epoch))},
            "optimizer": {}, "epoch": epoch, "iteration": 10 * epoch, "epoch_iteration": 0,
            "config": {}, "run": "r1", "best_map50": 0.5, "best_epoch": 1,
            "history": [{"epoch": e, "map50": 0.5 if e == 1 else 0.4}
                        for e in range(1, epoch + 1)]}


def _killed_save(folder: str, moment: str) -> None:
    """In a forked child: epoch 1 saved as ``last.pt`` and its copy ``best.pt`` (the best
    epoch), then epoch 2 (no better) as ``last.pt``, SIGKILLed at the audit event
    ``event:needle`` of that save (just before the operation)."""
    from trainer import checkpoint as ckpt

    pid = os.fork()
    if pid == 0:
        try:
            ckpt.save_checkpoint(_state(1), os.path.join(folder, "last.pt"))
            ckpt.copy_checkpoint(os.path.join(folder, "last.pt"), os.path.join(folder, "best.pt"))
            event, needle = moment.split(":", 1)

            def hook(name, args):
                if name == "open" and not (isinstance(args[2], int) and args[2] & _WRITE):
                    return
                if name == event and needle in repr(args):
                    os.kill(os.getpid(), signal.SIGKILL)

            sys.addaudithook(hook)
            ckpt.save_checkpoint(_state(2), os.path.join(folder, "last.pt"))
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (moment, status)


#: Just before last.pt's rename (its old sidecar gone: last.pt holds epoch 1), at its new
#: sidecar's temporary file and at that file's rename (last.pt holds epoch 2).
_MOMENTS = {"os.rename:.last.pt.": 1, "open:.last.json.": 2, "os.rename:.last.json.": 2}


@pytest.mark.parametrize("moment", sorted(_MOMENTS))
def test_resume_after_a_save_killed_around_the_rename_continues_from_the_newest_bytes(
        tmp_path, moment):
    """``--resume auto`` continues from the most advanced complete checkpoint the killed
    save left (``last.pt``, epoch 2 once renamed), not from ``best.pt`` (epoch 1); the
    sidecar it gets describes those bytes, so a push of the folder verifies them."""
    from drivestage import sidecar as sidecars
    from trainer import checkpoint as ckpt
    from trainer.resume import _decide

    folder = str(tmp_path / "run")
    os.makedirs(folder)
    _killed_save(folder, moment)
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=folder))
    start = _decide(cfg, "auto", None)
    held = ckpt.load_checkpoint(start.path)
    assert held["epoch"] == _MOMENTS[moment], (start.path, held["epoch"])
    for stem in ("last", "best"):  # every sidecar describes its checkpoint's bytes
        path = os.path.join(folder, f"{stem}.pt")
        side = sidecars.read(ckpt.sidecar_path(path))
        with open(path, "rb") as fh:
            data = fh.read()
        if side is not None or (stem == "last" and _MOMENTS[moment] == 2):
            assert side is not None and (side.epoch, side.md5, side.size, side.run) == (
                ckpt.load_checkpoint(path)["epoch"], md5(data), len(data), "r1"), stem
