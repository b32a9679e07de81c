"""train28: the end of training when the final push to drive.logs fails. Before, the last line
was ``Error: mirror of … to … failed: <why>`` (exit 1) whatever had reached Drive: when Drive
only refused retention's deletions (a folder shared with this account as a writer that may
not delete), every checkpoint was verified there and the user could not tell; when a
checkpoint was not sent, nothing said which one was safe. Now the last line says which
checkpoint is verified on Drive and what is not there, and the exit code says whether the
machine may go: 0 when every file of the run folder is verified there, 1 otherwise.

``trainer train`` in this process (a real run of a tiny model on synthetic images), the real
PyDrive2 stack against the emulator."""
from __future__ import annotations

import os
import re

from click.testing import CliRunner

from test_trainer22_uploads import _remote_in
from trainer.cli import cli

FOLDER = "Models/t28/final"
REFUSED = "insufficientFilePermissions"


def _train(tiny_config, **overrides):
    cfg = tiny_config(**{"drive.logs": f"drive:{FOLDER}", "train.freeze_epochs": 0,
                         "train.mosaic": False, "train.mixup": False, **overrides})
    return CliRunner().invoke(cli, ["train", "-c", cfg, "--resume", "none"])


def refused_deletions(emulator, tiny_config):
    """A run with drive.keep_last 1 into a folder where Drive refuses every deletion."""
    emulator.faults.inject("DELETE", None, reason=REFUSED, times=None)
    emulator.faults.inject(None, r"/trash", reason=REFUSED, times=None)
    return _train(tiny_config, **{"drive.keep_last": 1})


def test_drive_refusing_only_the_deletions_leaves_every_checkpoint_verified_exit_0(
        emulator, drive_env, local_state, fast_retries, tiny_config, one_torch_thread, tmp_path):
    r = refused_deletions(emulator, tiny_config)
    remote = _remote_in(emulator, FOLDER)
    assert {"epoch_001.pt", "epoch_002.pt", "epoch_002.json", "best.pt"} <= set(remote)
    last = r.output.strip().splitlines()[-1]
    assert r.exit_code == 0, r.output
    logs = tmp_path / "logs"
    assert last.startswith(f"checkpoints in {logs} and on drive:{FOLDER}: every one verified "
                           f"there, the newest epoch_002.pt (epoch 2, iteration 4"), last
    assert last.endswith(f"); the rest of the final push failed (delete drive:{FOLDER}/"
                         "epoch_001.pt: permission denied (HTTP 403 insufficientFilePermissions: "
                         "The user does not have sufficient permissions for this file.). Check "
                         "that this account can access the file (sharing settings, shared drive "
                         "membership)): older checkpoints stay on Drive (drive.keep_last, "
                         "drive.keep_best) until that is fixed"), last


def test_a_checkpoint_not_sent_is_named_beside_the_newest_that_is_safe_exit_1(
        emulator, drive_env, local_state, fast_retries, tiny_config, one_torch_thread, tmp_path):
    """Epoch 1 reached Drive (a first run); then Drive's storage holds no more checkpoints: the
    resumed run's epoch 2 never goes. The last line names epoch_001.pt as the newest verified
    there and epoch_002.pt as not there."""
    first = _train(tiny_config, **{"train.epochs": 1})
    assert first.exit_code == 0, first.output
    used = sum(int(f.get("fileSize", 0)) for f in emulator.files())
    size = os.path.getsize(tmp_path / "logs" / "epoch_001.pt")
    emulator.quota_bytes = emulator.store.quota_bytes = used + size // 2
    cfg = tiny_config(**{"drive.logs": f"drive:{FOLDER}", "train.freeze_epochs": 0,
                         "train.mosaic": False, "train.mixup": False, "train.epochs": 2})
    r = CliRunner().invoke(cli, ["train", "-c", cfg, "--resume", "auto"])
    assert r.exit_code == 1, r.output
    logs = tmp_path / "logs"
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: mirror of {logs} to drive:{FOLDER} failed: Not enough Drive "
                           "storage"), last
    assert last.endswith(f"; the newest verified there is epoch_001.pt (epoch 1, iteration 2); "
                         f"not there: epoch_002.pt: upload them with drivestage push {logs} "
                         f"drive:{FOLDER} before this machine goes"), last
    remote = _remote_in(emulator, FOLDER)
    assert "epoch_001.json" in remote and "epoch_002.pt" not in remote, sorted(remote)
