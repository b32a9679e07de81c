"""One training process per run folder (trainer/run_lock.py).

Two runs in one ``train.out_dir`` at once (a notebook cell run again while the first run
still trains in the background) both resumed from the same checkpoint and overwrote each
other's ``last.pt``, ``epoch_NNN.pt`` and autosaves, mirroring both to Drive. The second
run now refuses before it stages data or builds a model, in one line naming the first."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from trainer.cli import cli
from trainer.config import load_config
from trainer.errors import RunFolderBusyError
from trainer.run_lock import RunFolderLock

HOLD = ("import sys; from trainer.run_lock import RunFolderLock; "
        "RunFolderLock(sys.argv[1]).acquire(); print('held', flush=True); sys.stdin.read()")


def _holder(logs) -> subprocess.Popen:
    """Another process that holds the lock of ``logs`` once this returns (it said so), until
    its stdin closes."""
    logs.mkdir(exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(logs)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert proc.stdout.readline() == "held\n"     # an event: it holds the lock now
    return proc


@pytest.fixture
def held(tmp_path):
    """Another process holding the lock of ``tmp_path/logs`` (its pid), until the test ends."""
    proc = _holder(tmp_path / "logs")
    try:
        yield proc.pid
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()


def test_a_second_run_in_a_busy_folder_refuses_in_one_line_and_writes_nothing(
        held, tiny_config, tmp_path):
    logs = tmp_path / "logs"
    r = CliRunner().invoke(cli, ["train", "-c", tiny_config(**{"train.epochs": 1})])
    assert r.exit_code == 1, r.output
    line = r.output.strip().splitlines()[-1]
    assert line.startswith(
        f"Error: {logs} is in use by another training run (pid {held} on "
        f"{socket.gethostname()}, since "), line
    assert line.endswith("): two runs in one folder overwrite each other's checkpoints. Stop "
                         "that run first, or give this one a folder of its own "
                         "(--set train.out_dir=...)"), line
    assert os.listdir(logs) == []              # no checkpoint, no log, no plot, no lock file


def test_the_lock_goes_with_its_process_however_it_ends(tmp_path):
    """A SIGKILLed run leaves no stale lock: the kernel drops an flock with its process."""
    logs = tmp_path / "logs"
    proc = _holder(logs)
    with pytest.raises(RunFolderBusyError):
        RunFolderLock(str(logs)).acquire()
    proc.kill()
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stdin.close()
    lock = RunFolderLock(str(logs))
    lock.acquire()                             # the file stayed; the lock did not
    lock.release()


def test_runs_one_after_another_in_one_process_each_take_the_folder(tiny_config, tmp_path):
    """A notebook: fit, then fit again (the first let its lock go, also when it failed);
    while one holds the folder, another in the same process is refused too."""
    from trainer.engine import fit

    cfg = load_config(tiny_config(**{"train.epochs": 1, "train.freeze_epochs": 0,
                                     "train.eval_period": 100, "train.mosaic": False,
                                     "train.mixup": False}))
    first = fit(cfg, resume="none")
    assert first.epochs_run == 1
    holder = RunFolderLock(cfg.train.out_dir)
    holder.acquire()
    try:
        with pytest.raises(RunFolderBusyError):
            fit(cfg, resume="auto")
    finally:
        holder.release()
    # The refused run let go of nothing it did not hold, and took nothing: this one goes on
    # (from the end of the first: nothing left to train, which is all this needs).
    assert fit(cfg, resume="auto").resumed_from is not None



def test_a_state_folder_that_cannot_be_written_is_a_warning_not_a_refusal(
        tmp_path, monkeypatch, caplog):
    """The lock is a safeguard: a machine that cannot take it still trains (one warning)."""
    import logging

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(blocker / "state"))
    lock = RunFolderLock(str(tmp_path / "logs"))
    with caplog.at_level(logging.WARNING, logger="trainer.run_lock"):
        lock.acquire()
    lock.release()
    (record,) = caplog.records
    assert record.getMessage().startswith(f"cannot lock the run folder {tmp_path / 'logs'} (")
    assert record.getMessage().endswith("): another training run started in it now would "
                                        "not be refused")
