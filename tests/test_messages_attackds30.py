"""What drivestage says when its record of this machine's run folders (``run-folders.json``
in the state folder) cannot be read (attackds30): cut short (a crash, a hand edit) or holding
another JSON type, it was read as no record at all. ``push ./runs drive:runs --delete`` then
trashed the checkpoints a training run kept on Drive that ``train.keep_local`` had removed
from the disk, and the next run's push wrote the file anew with only its own record: every
other run's was lost."""
from __future__ import annotations

import logging
import os

import pytest

from _cli import run
from _drive_state import live_md5s
from _messages import error_line as error
from _messages import renders, shown
from drivestage.hooks import CheckpointSync
from drivestage.retention import RetentionPolicy
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)

REFUSED = "it records which store folders are training runs' folders, and without it --delete"


def _run_folder(emulator, tmp_path, name: str) -> tuple:
    """``runs/<name>`` pushed by its run (keep_last 2, three epochs); ``(runs, what Drive
    keeps of it)``; the epoch Drive keeps that is not the newest removed from the disk, as
    ``train.keep_local`` does."""
    runs = tmp_path / "runs"
    run_dir = runs / name
    run_dir.mkdir(parents=True)
    sync = CheckpointSync(f"drive:runs/{name}", RetentionPolicy(keep_last=2),
                          local_dir=str(run_dir))
    try:
        for epoch in (1, 2, 3):
            sync.on_save(_save(str(run_dir), epoch), epoch)
            sync.flush(60)
    finally:
        sync.on_train_end(60)
    for kept in ("epoch_002.pt", "epoch_002.json"):
        os.unlink(run_dir / kept)
    return runs, live_md5s(emulator, f"runs/{name}")


@renders(REFUSED)
@pytest.mark.parametrize("damage", ["truncated", "a list"])
def test_delete_is_refused_while_the_run_folder_records_cannot_be_read(emulator, env, tmp_path,
                                                                       caplog, damage):
    runs, kept = _run_folder(emulator, tmp_path, "exp1")
    records = env / "state" / "run-folders.json"
    text = records.read_bytes()
    records.write_bytes(text[:len(text) // 2] if damage == "truncated" else b"[]")
    damaged = records.read_bytes()
    with caplog.at_level(logging.WARNING):   # another run's push: the file is left as it is
        _run_folder(emulator, tmp_path, "exp2")
    assert records.read_bytes() == damaged
    assert any("cannot record drive:runs/exp2 as a run folder in" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]

    code, _, err = run("push", str(runs), "drive:runs", "--delete")

    assert code == 1
    why = "a JSON list, not an object" if damage == "a list" else "not JSON: "
    assert error(err).startswith(f"Error: cannot read {records} ({why}"), err
    assert error(err).endswith(
        f"): {REFUSED} could remove the checkpoints a run keeps there; nothing was sent or "
        "deleted. Repair the file, or move it away (each run records its folder again at its "
        "next push), then run again"), err
    shown(REFUSED, err)
    assert live_md5s(emulator, "runs/exp1") == kept
