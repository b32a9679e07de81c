"""Surviving a vanished machine with Drive (the emulator) holding the state: a real SIGKILL in
the middle of an epoch, then a resume from Drive alone; a real SIGTERM whose checkpoint reaches
Drive before the process exits; runs told apart; a damaged newest checkpoint on Drive."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import threading
import time

import pytest
import torch
from click.testing import CliRunner

from drivestage import sidecar as sidecars
from trainer import checkpoint as ckpt
from trainer.callbacks import Callback
from trainer.cli import cli
from trainer.config import load_config
from trainer.engine import fit
from trainer.errors import TrainingInterrupted

# Whole training runs, killed and resumed: slow end-to-end tests.
pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]

FOLDER = "Models/t/logs"
#: 18 training images in batches of 4: 4 steps per epoch.
SMALL_BATCH = {"train.batch_size": 4, "train.freeze_batch_size": 4, "train.eval_period": 100}


@pytest.fixture
def drive(emulator, drive_env, tmp_path, monkeypatch):
    """The emulator, with drivestage's state and retry timings kept inside the test."""
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "ds-state"))
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    monkeypatch.setenv("DRIVESTAGE_RETRY_CAP", "0.05")
    return emulator


def _remote(emu, folder=FOLDER):
    """{name: File resource} of the live files directly in ``folder``."""
    parent = emu.find(folder)
    if parent is None:
        return {}
    return {f["title"]: f for f in emu.files()
            if not f["labels"]["trashed"] and any(p["id"] == parent["id"] for p in f.get("parents", []))
            and not f["mimeType"].endswith(".folder")}


def _md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def _killed_when(proc, ready, log) -> bool:
    """SIGKILL ``proc`` as soon as ``ready()`` (as :func:`_kill.sigkill_when` does); False when it
    ended on its own first, as a finished run does (exit 0)."""
    deadline = time.monotonic() + 120
    try:
        while not ready():
            if proc.poll() is not None:
                assert proc.returncode == 0, log.read_text()[-3000:]
                return False
            assert time.monotonic() < deadline, "the child never got there"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=10)   # 0: it ended between the check and the signal
        assert code in (0, -signal.SIGKILL), log.read_text()[-3000:]
        return code == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()


def _child(path, log, env):
    """``trainer -v train -c PATH`` in a process of its own, forked with torch imported
    (tests/_trainer_proc.py)."""
    from _trainer_proc import start_trainer

    open(log, "w").close()
    return start_trainer(["-v", "train", "-c", path], env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
                         stderr=str(log))


def test_sigkill_mid_epoch_then_resume_from_drive_alone_is_bit_identical(drive, drive_env, tiny_config,
                                                                        tmp_path, caplog):
    kw = {**SMALL_BATCH, "train.epochs": 3, "train.freeze_epochs": 1, "train.save_period": 100}
    fit(load_config(tiny_config(**kw, **{"train.out_dir": str(tmp_path / "ref")})), resume="none")

    # A checkpoint is due after every iteration; the writer drops the ones it cannot keep up with.
    path = tiny_config(**kw, **{"drive.logs": f"drive:{FOLDER}", "train.save_minutes": 1e-6})

    def mid_epoch_autosave_on_drive():
        for name, f in _remote(drive).items():
            if name.startswith("autosave_") and name.endswith(".json"):
                side = sidecars.parse(drive.read_bytes(f["id"]))
                if side.epoch_iteration not in (0, 4):
                    return True
        return False

    for _ in range(3):
        proc = _child(path, tmp_path / "child.log", drive_env)
        if _killed_when(proc, mid_epoch_autosave_on_drive, tmp_path / "child.log"):
            break
        # The run ended first: on a loaded machine each of its few uploads happened to carry
        # an epoch's last autosave (the writer sends the newest one when it is free). Again,
        # from nothing: what is tested needs a mid-epoch checkpoint on Drive.
        drive.store.delete(drive.find(FOLDER)["id"])
        shutil.rmtree(tmp_path / "logs")
    else:
        pytest.fail("3 runs ended before a mid-epoch checkpoint reached Drive")
    shutil.rmtree(tmp_path / "logs")                  # a fresh runtime: only Drive has the state

    # The resume saves as a run usually does (no checkpoint, and upload, after every
    # iteration: what is tested is where it starts and what it reaches).
    with caplog.at_level("INFO", logger="trainer"):
        result = fit(load_config(path, ["train.save_minutes=10"]), resume="auto")
    found = re.search(r"resumed from drive:Models/t/logs/(autosave_(\d{8})\.pt) at epoch (\d+), "
                      r"iteration (\d+) \(run ", caplog.text)
    assert found, caplog.text[-3000:]
    assert int(found.group(2)) == int(found.group(4))
    assert result.resumed_from == f"drive:{FOLDER}/{found.group(1)}"
    ref = ckpt.load_checkpoint(str(tmp_path / "ref" / "last.pt"))
    got = ckpt.load_checkpoint(str(tmp_path / "logs" / "last.pt"))
    for k, v in ref["model"].items():
        assert torch.equal(v, got["model"][k]), k
    assert got["iteration"] == 12 and got["ema"]["updates"] == ref["ema"]["updates"]


def test_sigterm_saves_a_checkpoint_that_reaches_drive_before_exit_143(drive, drive_env, tiny_config,
                                                                      tmp_path):
    path = tiny_config(**{**SMALL_BATCH, "train.epochs": 30, "train.freeze_epochs": 0,
                          "train.save_period": 100, "drive.logs": f"drive:{FOLDER}",
                          "train.grace_seconds": 60})
    log = tmp_path / "child.log"
    proc = _child(path, log, drive_env)
    signalled = []
    sigkill_free = time.monotonic() + 120
    while not signalled:                          # the first step of epoch 2 is done: signal now
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < sigkill_free, "the child never reached epoch 2"
        if "epoch 2/30 iter 1/4 (iteration 5)" in log.read_text():
            # Frozen while the log is read, so the parent's own delay (seconds on a loaded
            # machine) cannot move where the signal lands: after the iteration logged last.
            proc.send_signal(signal.SIGSTOP)
            seen = max(int(n) for n in re.findall(r"\(iteration (\d+)\)", log.read_text()))
            proc.send_signal(signal.SIGTERM)
            signalled.append(time.monotonic())
            proc.send_signal(signal.SIGCONT)
        else:
            time.sleep(0.01)
    assert proc.wait(timeout=120) == 143
    took = time.monotonic() - signalled[0]
    text = log.read_text()
    last = text.strip().splitlines()[-1]
    m = re.fullmatch(r"Error: stopped by SIGTERM at epoch (\d+), iteration (\d+): (autosave_(\d{8})\.pt) "
                     r"is saved and verified on drive:Models/t/logs \(([\d.]+) s after the signal\); "
                     r"resume with --resume auto", last)
    assert m, text[-3000:]
    epoch, iteration, name = int(m.group(1)), int(m.group(2)), m.group(3)
    assert iteration in (seen, seen + 1) and int(m.group(4)) == iteration  # at most one more
    assert epoch == (iteration - 1) // 4 + 1                               # 4 iterations an epoch
    assert float(m.group(5)) <= took < 60
    remote = _remote(drive)
    local = tmp_path / "logs" / name
    assert remote[name]["md5Checksum"] == _md5(local)
    side = sidecars.parse(drive.read_bytes(remote[name[:-3] + ".json"]["id"]))
    assert (side.epoch, side.iteration, side.epoch_iteration) == \
        (epoch - 1, iteration, iteration - 4 * (epoch - 1))
    assert side.md5 == _md5(local) and side.run == ckpt.load_checkpoint(str(local))["run"]


def test_status_names_what_is_safe_and_a_new_run_in_that_folder_is_refused(drive, tiny_config, tmp_path,
                                                                         monkeypatch):
    first = tiny_config(**{"train.epochs": 1, "train.freeze_epochs": 0, "drive.logs": f"drive:{FOLDER}"})
    none = CliRunner().invoke(cli, ["status", "-c", first])
    assert none.exit_code == 1
    # (No run made the folder yet: named as not found, walk20.)
    assert none.output == (f"Error: drive.logs drive:{FOLDER}: drive:Models not found (no item named 'Models' "
                           "in drive:; names are case-sensitive); no run has saved there yet: a "
                           "run makes it at its first save, or drive.logs names the wrong "
                           "folder\n")
    fit(load_config(first), resume="none")
    old = ckpt.read_sidecar(str(tmp_path / "logs" / "epoch_001.pt")).run

    # trainer status: the newest verified checkpoint, its age and position.
    res = CliRunner().invoke(cli, ["status", "-c", first])
    assert res.exit_code == 0, res.output
    logs = re.escape(str(tmp_path / "logs"))
    assert re.fullmatch(rf"drive:{FOLDER}/epoch_001\.pt: epoch 1, iteration 2, verified on Drive \d+ s "
                        rf"ago \(run {old}\)\n{logs}: 1 epoch file on this machine "
                        r"\(epoch_001\.pt\); train\.keep_local 0: every one is kept\n",
                        res.stdout), res.output
    data = json.loads(CliRunner().invoke(cli, ["status", "-c", first, "--json"]).stdout)
    assert data["name"] == "epoch_001.pt" and data["run"] == old and data["iteration"] == 2
    assert data["md5"] == _md5(tmp_path / "logs" / "epoch_001.pt") and 0 <= data["age_s"] < 600
    off = CliRunner().invoke(cli, ["status", "-c", first, "--set", "drive.logs=null"])
    assert off.exit_code == 2
    assert off.output.startswith(f"Error: drive.logs is not set in {first}; trainer status")
    before = {n: f["md5Checksum"] for n, f in _remote(drive).items()}
    # A fresh runtime (empty local folder), the same drive.logs, --resume none.
    second = tiny_config(**{"train.epochs": 1, "train.freeze_epochs": 0, "drive.logs": f"drive:{FOLDER}",
                            "train.out_dir": str(tmp_path / "new")})
    res = CliRunner().invoke(cli, ["train", "-c", second, "--resume", "none"])
    assert res.exit_code == 1
    assert re.search(rf"Error: drive:{FOLDER} already holds checkpoints of run {old} \(newest: "
                     rf"epoch_001\.pt, epoch 1, iteration 2\); starting run \d{{8}}-\d{{6}}-[0-9a-f]{{4}} "
                     rf"there would mix the two runs\. Continue the old run with --resume auto, or give "
                     rf"the new run its own folders: --set train\.out_dir=<a new folder> --set "
                     rf"drive\.logs=<a new Drive folder>", res.output), res.output
    assert {n: f["md5Checksum"] for n, f in _remote(drive).items()} == before
    # --resume auto continues the run that is there. (The bar as wide as a wide terminal: tqdm
    # before 4.70, as Colab has it, takes COLUMNS for a file that is not one; pytest-xdist sets 80.)
    monkeypatch.setenv("COLUMNS", "200")
    again = CliRunner().invoke(cli, ["train", "-c", second, "--resume", "auto", "--set", "train.epochs=2"])
    assert again.exit_code == 0, again.output
    assert ckpt.load_checkpoint(str(tmp_path / "new" / "last.pt"))["run"] == old
    # The epoch line and the progress bar say what is safe on Drive (here: what it resumed from).
    assert re.search(r"epoch 2/2 done in .*; Drive: \d+ s ago, epoch 1 iteration 2 \(epoch_001\.pt\)",
                     again.output), again.output
    assert re.search(r"drive=\d+ s ago, epoch 1 iteration 2, loss=", again.output), again.output


def test_an_unreadable_newest_checkpoint_on_drive_falls_back_to_the_older_one(drive, tiny_config, tmp_path,
                                                                             caplog):
    path = tiny_config(**{"train.epochs": 2, "train.freeze_epochs": 0, "drive.logs": f"drive:{FOLDER}",
                          "train.save_period": 1})
    fit(load_config(path), resume="none")
    logs = tmp_path / "logs"
    run = ckpt.read_sidecar(str(logs / "epoch_002.pt")).run
    # A damaged "newest" checkpoint, uploaded for real with a sidecar that vouches for its bytes.
    bad = tmp_path / "bad"
    bad.mkdir()
    data = (logs / "epoch_002.pt").read_bytes()[:5000]
    (bad / "autosave_00000005.pt").write_bytes(data)
    sidecars.write(str(bad / "autosave_00000005.pt"), sidecars.Sidecar(
        epoch=2, iteration=5, epoch_iteration=1, run=run, md5=hashlib.md5(data).hexdigest(), size=len(data)))
    from _cli import ok

    ok("push", str(bad), f"drive:{FOLDER}")             # in this process, as most tests
    assert "autosave_00000005.json" in _remote(drive)
    shutil.rmtree(logs)

    with caplog.at_level("INFO", logger="trainer"):
        result = fit(load_config(tiny_config(**{"train.epochs": 3, "train.freeze_epochs": 0,
                                                "drive.logs": f"drive:{FOLDER}", "train.save_period": 1})),
                     resume="auto")
    assert (f"the newest verified checkpoint on Drive, drive:{FOLDER}/autosave_00000005.pt, cannot be used "
            f"(checkpoint {logs / 'autosave_00000005.pt'} cannot be read") in caplog.text
    assert "falling back to the next older one" in caplog.text
    assert result.resumed_from == f"drive:{FOLDER}/epoch_002.pt" and result.epochs_run == 1
    assert not (logs / "autosave_00000005.pt").exists()
    assert "autosave_00000005.pt" in _remote(drive)        # left on Drive, not deleted


class _StopAtTheEnd(Callback):
    """A SIGTERM just as training ends, while the last checkpoints are being uploaded (once
    the writer has written them: on a loaded machine that can take longer than the grace,
    and a stop before then is another case, see test_messages_attack18.py)."""

    def on_fit_end(self, run):
        epoch = run.state.pos.epoch
        last = "best.json" if run.checkpointer.best_epoch == epoch else f"epoch_{epoch:03d}.json"
        side = os.path.join(run.out_dir, last)       # the last file of the epoch's save
        deadline = time.monotonic() + 60
        while not os.path.exists(side):
            assert time.monotonic() < deadline, f"{side} never appeared"
            time.sleep(0.01)
        run.stop.request(signal.SIGTERM)


class _SlowUploads(Callback):
    """Every upload 3 s from the fit's start on: none can finish within a grace of 1 s. Set
    once the run holds its lease, whose claim (two upload requests) took 6 s of the test
    before training when the latency was set before the fit."""

    def __init__(self, emulator):
        self.emulator = emulator

    def on_fit_start(self, run):
        self.emulator.faults.latency(3.0, path=r"^/upload/")


def test_a_stop_during_the_final_upload_is_bounded_by_the_grace_and_says_so(drive, tiny_config, tmp_path):
    path = tiny_config(**{"train.epochs": 1, "train.freeze_epochs": 0, "drive.logs": f"drive:{FOLDER}",
                          "train.grace_seconds": 1})
    with pytest.raises(TrainingInterrupted) as stopped:     # no upload can finish within the grace
        fit(load_config(path), resume="none", callbacks=[_SlowUploads(drive), _StopAtTheEnd()])
    assert stopped.value.exit_code == 143
    assert str(stopped.value) == (f"stopped by SIGTERM while the last checkpoints were uploaded; they are "
                                  f"complete in {tmp_path / 'logs'}: run the same command again to upload "
                                  f"them (it trains nothing more)")
    drive.faults.clear()
    again = fit(load_config(path), resume="auto")
    assert again.epochs_run == 0
    assert _remote(drive)["epoch_001.pt"]["md5Checksum"] == _md5(tmp_path / "logs" / "epoch_001.pt")


class _StopAt(Callback):
    def __init__(self, iteration):
        self.iteration = iteration

    def on_train_batch_end(self, run, pos, logs):
        if pos.iteration == self.iteration:
            run.stop.request(signal.SIGTERM)


def test_a_stop_save_that_cannot_reach_drive_in_time_stays_local_and_says_so(drive, tiny_config, tmp_path):
    path = tiny_config(**{"train.epochs": 3, "train.freeze_epochs": 0, "drive.logs": f"drive:{FOLDER}",
                          "train.grace_seconds": 1, "train.save_period": 100})
    with pytest.raises(TrainingInterrupted) as stopped:     # Drive too slow for the grace period
        fit(load_config(path), resume="none", callbacks=[_SlowUploads(drive), _StopAt(3)])
    logs = tmp_path / "logs"
    # Epoch 1's best.pt, queued behind the same slow upload, is not on Drive either: named
    # too (trainer23; before, the line named the stop save alone). Unless its upload ended
    # before the stop (a machine slow enough to take 6 s over two iterations): then not.
    head = (f"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt is saved in {logs} "
            f"but did not reach drive:{FOLDER} within train.grace_seconds (1 s); ")
    assert str(stopped.value) in (
        f"{head}2 files of this run are not on drive:{FOLDER}: autosave_00000003.pt, best.pt; "
        f"--resume auto on this machine continues from autosave_00000003.pt, elsewhere upload "
        f"them first: drivestage push {logs} drive:{FOLDER}",
        f"{head}--resume auto on this machine continues from it, elsewhere upload it first: "
        f"drivestage push {logs} drive:{FOLDER}"), str(stopped.value)
    assert ckpt.position_of(ckpt.load_checkpoint(str(logs / "autosave_00000003.pt"))) == (1, 3, 1)
    assert "autosave_00000003.json" not in _remote(drive)
    # In-process (a notebook) the upload goes on after fit gave up waiting; once Drive answers
    # again it ends, with the checkpoint there. Waited for here (its end, not a time), so it
    # neither outlives the test nor meets a stopped emulator with default retry timings.
    drive.faults.clear()
    for t in [t for t in threading.enumerate() if t.name in ("trainer-upload", "drivestage-up")]:
        t.join(60)
        assert not t.is_alive(), t.name
    assert "autosave_00000003.json" in _remote(drive)


def test_resume_from_drive_takes_the_run_written_last_and_its_most_advanced_checkpoint():
    from drivestage.sidecar import Described, Sidecar
    from drivestage.store import RemoteEntry
    from trainer.drive import RemoteCheckpoint, newest_of_current_run

    def remote(name, run, epoch, modified):
        return RemoteCheckpoint(RemoteEntry(name, name, False, 10, None, modified),
                                Described(name, Sidecar(epoch=epoch, iteration=epoch * 10, run=run), None,
                                          modified), f"drive:x/{name}")

    # trainer 0.1.0 let a second run into an old run's folder: the old one went further, the new
    # one was written last and is the one to continue.
    found = [remote("epoch_050.pt", "old", 50, 100.0), remote("epoch_048.pt", "old", 48, 90.0),
             remote("epoch_001.pt", "new", 1, 200.0), remote("epoch_002.pt", "new", 2, 300.0)]
    assert newest_of_current_run(found).name == "epoch_002.pt"
    assert newest_of_current_run(found, "old").name == "epoch_050.pt"
    assert newest_of_current_run(found, skip=["epoch_002.pt"]).name == "epoch_001.pt"
    assert newest_of_current_run([]) is None
