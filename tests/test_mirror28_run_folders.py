"""A push or mirror of ``./runs`` beside a training run whose own Drive push keeps
``./runs/exp1`` with its retention (the old Colab recipe: ``drivestage mirror ./runs drive:runs``
in the background, the trainer with ``drive.logs: drive:runs/exp1``).

The two writers undid each other: the push of ``runs`` sent again every epoch file the run's
``drive.keep_last`` had just deleted from Drive (still on the local disk), and the run
deleted it again, every period; and ``--delete`` trashed the checkpoints the run keeps on
Drive (the best one, the last N) once ``train.keep_local`` had removed them from the disk.
Now a run folder's checkpoints are left to its run (:mod:`drivestage.run_folders`); the
rest of it, and the other folders, are pushed as before."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil

from _envs import env_local_retries  # noqa: F401  (the env fixture)
from drivestage import sidecar
from drivestage.hooks import CheckpointSync
from drivestage.mirror import Mirror
from drivestage.retention import RetentionPolicy
from drivestage.sidecar import Sidecar
from trainer.drive import DriveFolder, retention_policy

from _cli import run
from _drive_state import live_md5s
from _signal_env import _cli_server  # noqa: F401  (an autouse fixture: the fork server)

SAID = "is a run folder (pushed from"


def _save(folder, epoch: int, map50: float) -> str:
    """``epoch_NNN.pt`` with the trainer's kind of sidecar (its run, epoch, md5, metric)."""
    path = os.path.join(folder, f"epoch_{epoch:03d}.pt")
    data = os.urandom(3000 + epoch)
    with open(path, "wb") as fh:
        fh.write(data)
    sidecar.write(path, Sidecar(epoch=epoch, metrics={"map50": map50}, run="run-a",
                                md5=hashlib.md5(data).hexdigest(), size=len(data)))
    return path


def _md5(path) -> str:
    with open(path, "rb") as fh:
        return hashlib.md5(fh.read()).hexdigest()


def _runs(tmp_path):
    """``runs/exp1`` (the training run's folder, with a log) and ``runs/exp2`` (an old run no
    hook pushed: the push of ``runs`` sends its checkpoints)."""
    runs = tmp_path / "runs"
    (runs / "exp1").mkdir(parents=True)
    (runs / "exp1" / "results.csv").write_text("epoch,map50\n")
    (runs / "exp2").mkdir()
    _save(str(runs / "exp2"), 1, 0.1)
    return runs


def test_a_push_of_runs_sends_none_of_the_epochs_the_run_pruned(emulator, env, tmp_path):
    runs = _runs(tmp_path)
    exp1 = str(runs / "exp1")
    sync = CheckpointSync("drive:runs/exp1", RetentionPolicy(keep_last=2), local_dir=exp1)
    try:
        for epoch in range(1, 5):
            sync.on_save(_save(exp1, epoch, epoch / 10), epoch)
            sync.flush(60)
    finally:
        sync.on_train_end(60)
    kept = {"epoch_003.pt", "epoch_003.json", "epoch_004.pt", "epoch_004.json", "results.csv"}
    assert set(live_md5s(emulator, "runs/exp1")) == kept

    code, _, err = run("push", str(runs), "drive:runs")

    assert code == 0, err
    assert set(live_md5s(emulator, "runs/exp1")) == kept      # epochs 1, 2 not sent again
    assert live_md5s(emulator, "runs/exp2") == {               # the rest of runs is pushed
        n: [_md5(runs / "exp2" / n)] for n in ("epoch_001.pt", "epoch_001.json")}
    assert err.count(SAID) == 1, err
    assert (f"drive:runs/exp1 is a run folder (pushed from {os.path.realpath(exp1)} with its "
            "own retention); its checkpoints are left to that push here: none it pruned is "
            "sent again, none it keeps is deleted. The rest of exp1 is pushed") in err


def test_a_mirror_of_runs_leaves_them_every_period_and_says_so_once(emulator, env, store,
                                                                    tmp_path, caplog):
    runs = _runs(tmp_path)
    exp1 = str(runs / "exp1")
    for epoch in range(1, 4):
        _save(exp1, epoch, epoch / 10)
    # The trainer's own Drive push (drive.keep_last 1): epochs 1 and 2 stay on the disk.
    DriveFolder("drive:runs/exp1", exp1, retention_policy(1, 0, None)).push()
    kept = {"epoch_003.pt", "epoch_003.json", "results.csv"}
    assert set(live_md5s(emulator, "runs/exp1")) == kept
    (runs / "exp1" / "train.log").write_text("epoch 3\n")
    # What the run never sends: last.pt (and its sidecar), a state --resume auto passed over.
    shutil.copy(os.path.join(exp1, "epoch_003.pt"), os.path.join(exp1, "last.pt"))
    shutil.copy(os.path.join(exp1, "epoch_003.json"), os.path.join(exp1, "last.json"))
    (runs / "exp1" / "epoch_002.pt.bad-1764900000").write_bytes(b"torn")

    caplog.set_level(logging.WARNING, logger="drivestage")
    mirror = Mirror(str(runs), (store, "runs"), None).start()
    try:
        for _ in range(3):
            mirror.flush(60)
    finally:
        mirror.stop(60)

    assert set(live_md5s(emulator, "runs/exp1")) == kept | {"train.log"}
    assert sum(SAID in r.getMessage() for r in caplog.records) == 1


def test_delete_keeps_the_checkpoints_the_run_keeps_on_drive(emulator, env, tmp_path):
    runs = _runs(tmp_path)
    exp1 = str(runs / "exp1")
    best = _save(exp1, 1, 0.9)
    for epoch in range(2, 5):
        _save(exp1, epoch, epoch / 10)
    (runs / "exp1" / "old.log").write_text("x\n")
    # The trainer's push, drive.keep_last 2 and keep_best 1: Drive keeps 1 (best), 3 and 4.
    DriveFolder("drive:runs/exp1", exp1, retention_policy(2, 1, None)).push()
    on_drive = live_md5s(emulator, "runs/exp1")
    assert set(on_drive) == {"epoch_001.pt", "epoch_001.json", "epoch_003.pt",
                             "epoch_003.json", "epoch_004.pt", "epoch_004.json",
                             "results.csv", "old.log"}
    # train.keep_local 1 removes the older epoch files from the disk once Drive holds them.
    for epoch in (1, 2, 3):
        os.remove(os.path.join(exp1, f"epoch_{epoch:03d}.pt"))
        os.remove(os.path.join(exp1, f"epoch_{epoch:03d}.json"))
    assert not os.path.exists(best)
    os.remove(runs / "exp1" / "old.log")

    code, _, err = run("push", str(runs), "drive:runs", "--delete")

    assert code == 0, err
    after = live_md5s(emulator, "runs/exp1")
    del on_drive["old.log"]   # the rest of the run folder is mirrored: this one goes
    assert after == on_drive, err


def test_delete_leaves_a_run_folder_the_disk_no_longer_has(emulator, env, tmp_path):
    runs = _runs(tmp_path)
    exp1 = str(runs / "exp1")
    for epoch in range(1, 3):
        _save(exp1, epoch, epoch / 10)
    DriveFolder("drive:runs/exp1", exp1, retention_policy(0, 0, None)).push()
    on_drive = live_md5s(emulator, "runs/exp1")
    shutil.rmtree(exp1)   # the run is over: the disk is freed, Drive holds it

    code, _, err = run("push", str(runs), "drive:runs", "--delete")

    assert code == 0, err
    assert live_md5s(emulator, "runs/exp1") == on_drive
    assert "epoch_001.pt" in live_md5s(emulator, "runs/exp2")


def test_a_folder_with_the_run_folder_s_name_made_anew_is_no_run_folder(emulator, env,
                                                                        tmp_path):
    """The record is of the folder (its id): a folder made again under the name after the
    run's was deleted from Drive is pushed whole."""
    runs = _runs(tmp_path)
    exp1 = str(runs / "exp1")
    for epoch in range(1, 4):
        _save(exp1, epoch, epoch / 10)
    DriveFolder("drive:runs/exp1", exp1, retention_policy(1, 0, None)).push()
    emulator.store.update_meta(emulator.find("runs/exp1")["id"], {"labels": {"trashed": True}})

    code, _, err = run("push", str(runs), "drive:runs")

    assert code == 0, err
    assert SAID not in err
    assert set(live_md5s(emulator, "runs/exp1")) == {
        f"epoch_00{e}.{s}" for e in (1, 2, 3) for s in ("pt", "json")} | {"results.csv"}


# ------------------------------------------- the trainer's own saves and writer, the CLI mirror

def _trained(emulator, tiny_config, runs, keep_local: int) -> dict:
    """Epochs 1-4 saved by the trainer's Checkpointer through its writer, which pushes
    ``runs/exp1`` to ``drive:runs/exp1`` with ``drive.keep_last`` 2 and deletes local epoch
    files past ``train.keep_local``. What is on Drive after (name -> md5s): at least one
    checkpoint there is not on the disk, or (``keep_local`` 0) one on the disk is not there."""
    from test_keeplocal25 import _saver
    from trainer.state import Position

    exp1 = str(runs / "exp1")
    run, writer, saver = _saver(tiny_config, exp1, keep_local,
                                DriveFolder("drive:runs/exp1", exp1, retention_policy(2, 0, None)))
    for e in (1, 2, 3, 4):
        run.state.pos = Position(e, 2 * e, 0)   # (its sidecar says the epoch it reached)
        saver.on_fit_epoch_end(run, run.state.pos, {})
    writer.close()
    assert writer.last_error is None
    assert os.path.exists(os.path.join(exp1, "last.pt"))   # kept on this machine only
    local = {n for n in os.listdir(exp1) if n.startswith("epoch_")}
    on_drive = live_md5s(emulator, "runs/exp1")
    epochs = {n for n in on_drive if n.startswith("epoch_")}
    assert epochs - local if keep_local else local - epochs, (local, on_drive)
    return on_drive


def test_the_trainer_s_pruned_epochs_and_last_pt_are_not_sent_by_a_push_of_runs(
        emulator, env, tiny_config, tmp_path):
    runs = _runs(tmp_path)
    on_drive = _trained(emulator, tiny_config, runs, 0)

    code, _, err = run("push", str(runs), "drive:runs")

    assert code == 0, err
    assert live_md5s(emulator, "runs/exp1") == on_drive, err
    assert SAID in err


def test_a_mirror_cli_with_delete_keeps_what_the_trainer_keeps_on_drive(
        emulator, env, tiny_config, tmp_path):
    """``drivestage mirror ./runs drive:runs --delete`` (a real process, stopped with
    SIGTERM after its first period): the checkpoints ``train.keep_local`` 1 removed from the
    disk while ``drive.keep_last`` 2 keeps them on Drive stay there; said once in two pushes."""
    import signal
    from _cli import child_env
    from _forkcli import DEVNULL, PIPE, cli_server
    from test_push_cli import _Lines

    runs = _runs(tmp_path)
    on_drive = _trained(emulator, tiny_config, runs, 1)

    proc = cli_server().popen(
        ["mirror", str(runs), "drive:runs", "--every", "3600", "--delete"],
        env={**child_env(emulator), "DRIVESTAGE_STATE_DIR": os.environ["DRIVESTAGE_STATE_DIR"]},
        stdout=DEVNULL, stderr=PIPE, text=True)
    try:
        lines = _Lines(proc.stderr)
        lines.wait_for(proc, r" pushed: ", timeout=60)     # the first period (exp2 sent)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        err = lines.text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "pushing once more" in err
    assert err.count(SAID) == 1, err
    assert live_md5s(emulator, "runs/exp1") == on_drive, err
    assert set(live_md5s(emulator, "runs/exp2")) == {"epoch_001.pt", "epoch_001.json"}


def test_a_run_folder_s_checkpoint_of_another_run_is_not_refused_by_the_push_above(
        emulator, env, tmp_path):
    """The local ``epoch_001.pt`` of another run than Drive's (a run started again in the
    folder): the push of ``runs`` sends neither, so it neither fails naming it nor warns;
    that is the run's own push's to say."""
    runs = _runs(tmp_path)
    exp1 = str(runs / "exp1")
    _save(exp1, 1, 0.1)
    DriveFolder("drive:runs/exp1", exp1, retention_policy(2, 0, None)).push()
    on_drive = live_md5s(emulator, "runs/exp1")
    path = _save(exp1, 1, 0.2)
    side = sidecar.read(sidecar.name_for(path))
    sidecar.write(path, Sidecar(epoch=1, metrics={"map50": 0.2}, run="run-b", md5=side.md5,
                                size=side.size))

    code, _, err = run("push", str(runs), "drive:runs")

    assert code == 0, err
    assert "another run" not in err and "left as it is" not in err, err
    assert live_md5s(emulator, "runs/exp1") == on_drive
