"""attacktr29: the "newest verified on Drive" of a run sent back on purpose (``--resume
<older checkpoint>``: a diverged loss). The writer's "safe on Drive" was seeded from Drive's
newest at the start (the state the user left) and only ever moved forward: after the branch was
recorded on Drive (its start dated as saved last, so ``--resume auto`` anywhere goes on from
it, and retention prunes the line left behind first), the progress bar, the outage warning and
the line of a failed final push still named the abandoned ``epoch_003.pt`` as the newest
verified there, until the branch passed it.

``trainer train`` in this process (a real run of a tiny model on synthetic images), the real
PyDrive2 stack against the emulator."""
from __future__ import annotations

import os

from click.testing import CliRunner

from test_trainer22_uploads import _remote_in
from trainer.cli import cli

FOLDER = "Models/tr29/back"


def _cfg(tiny_config, epochs: int) -> str:
    return tiny_config(**{"drive.logs": f"drive:{FOLDER}", "train.freeze_epochs": 0,
                          "train.mosaic": False, "train.mixup": False, "train.epochs": epochs})


def test_a_failed_final_push_of_a_run_sent_back_names_the_branch_not_the_state_left(
        emulator, drive_env, local_state, fast_retries, tiny_config, one_torch_thread, tmp_path):
    first = CliRunner().invoke(cli, ["train", "-c", _cfg(tiny_config, 3), "--resume", "none"])
    assert first.exit_code == 0, first.output
    logs = tmp_path / "logs"
    assert {"epoch_001.pt", "epoch_003.pt"} <= set(_remote_in(emulator, FOLDER))
    # Drive's storage then takes a sidecar (the branch's record), not a checkpoint.
    used = sum(int(f.get("fileSize", 0)) for f in emulator.files())
    emulator.quota_bytes = emulator.store.quota_bytes = \
        used + os.path.getsize(logs / "epoch_001.pt") // 2
    r = CliRunner().invoke(cli, ["train", "-c", _cfg(tiny_config, 2),
                                 "--resume", str(logs / "epoch_001.pt")])
    assert r.exit_code == 1, r.output
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: mirror of {logs} to drive:{FOLDER} failed: Not enough Drive "
                           "storage"), last
    assert last.endswith(f"; the newest verified there is epoch_001.pt (epoch 1, iteration 2); "
                         f"not there: epoch_002.pt: upload them with drivestage push {logs} "
                         f"drive:{FOLDER} before this machine goes"), last
    # What --resume auto takes from Drive on another machine: the branch's start.
    from trainer.drive import DriveFolder, newest_of_current_run

    newest = newest_of_current_run(DriveFolder(f"drive:{FOLDER}", str(tmp_path / "o")).checkpoints())
    assert newest is not None and newest.name == "epoch_001.pt"
