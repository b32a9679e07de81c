"""Attacks on run folders (attackds29): what a push of a folder above a training run's
folder does when the run folder is not a direct child, or the record lies."""
from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from _envs import env_local_retries as env  # noqa: F401  (a fixture; others import it here)
from drivestage import sidecar
from drivestage.sidecar import Sidecar
from trainer.drive import DriveFolder, retention_policy

from _cli import run
from _drive_state import live_md5s


def _save(folder, epoch: int) -> str:
    """A checkpoint of run-a's epoch ``epoch`` in ``folder`` with its sidecar; its path."""
    path = os.path.join(folder, f"epoch_{epoch:03d}.pt")
    data = os.urandom(3000 + epoch)
    with open(path, "wb") as fh:
        fh.write(data)
    sidecar.write(path, Sidecar(epoch=epoch, metrics={"map50": epoch / 10}, run="run-a",
                                md5=hashlib.md5(data).hexdigest(), size=len(data)))
    return path


def test_delete_leaves_a_run_folder_inside_a_folder_the_disk_no_longer_has(emulator, env,
                                                                          tmp_path):
    """``runs/train/exp1`` (a project/name layout): the run is over, ``./runs/train`` is
    removed from the disk to free it; ``push ./runs drive:runs --delete`` trashed
    ``drive:runs/train`` whole, and with it the checkpoints the run kept on Drive."""
    runs = tmp_path / "runs"
    exp1 = runs / "train" / "exp1"
    exp1.mkdir(parents=True)
    (runs / "notes.txt").write_text("n\n")
    for epoch in range(1, 3):
        _save(str(exp1), epoch)
    DriveFolder("drive:runs/train/exp1", str(exp1), retention_policy(0, 0, None)).push()
    on_drive = live_md5s(emulator, "runs/train/exp1")
    assert set(on_drive) == {"epoch_001.pt", "epoch_001.json", "epoch_002.pt",
                             "epoch_002.json"}
    shutil.rmtree(runs / "train")

    code, _, err = run("push", str(runs), "drive:runs", "--delete")

    assert code == 0, err
    assert live_md5s(emulator, "runs/train/exp1") == on_drive, err


@pytest.mark.parametrize("garbage", [b"[\"x\"]", b"\"drive\"", b"{\"a\": 5}", b"\x00\xff" * 50,
                                     b"{" * 100000])
def test_a_corrupt_record_file_is_no_record(emulator, env, tmp_path, garbage):
    runs = tmp_path / "runs"
    (runs / "exp1").mkdir(parents=True)
    _save(str(runs / "exp1"), 1)
    (env / "state").mkdir(exist_ok=True)
    (env / "state" / "run-folders.json").write_bytes(garbage)

    code, _, err = run("push", str(runs), "drive:runs")

    assert code == 0, err
    assert set(live_md5s(emulator, "runs/exp1")) == {"epoch_001.pt", "epoch_001.json"}


def test_delete_leaves_a_run_folder_inside_a_folder_the_disk_no_longer_has_local_dest(
        env, tmp_path):
    """The same into a local DEST (a backup disk; the store's ids are paths), the run
    folder marked by a push with a policy (a cron ``push --keep-last``)."""
    runs, backup = tmp_path / "runs", tmp_path / "backup"
    exp1 = runs / "train" / "exp1"
    exp1.mkdir(parents=True)
    backup.mkdir()
    for epoch in range(1, 3):
        _save(str(exp1), epoch)
    code, _, err = run("push", str(exp1), str(backup / "train" / "exp1"), "--keep-last", "5")
    assert code == 0, err
    kept = sorted(os.listdir(backup / "train" / "exp1"))
    # (.drivestage: the run-folder mark another machine reads: nasmark34)
    assert kept == [".drivestage", "epoch_001.json", "epoch_001.pt", "epoch_002.json",
                    "epoch_002.pt"]
    shutil.rmtree(runs / "train")

    code, _, err = run("push", str(runs), str(backup), "--delete")

    assert code == 0, err
    assert sorted(os.listdir(backup / "train" / "exp1")) == kept, err

