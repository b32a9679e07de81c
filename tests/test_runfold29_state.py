"""A run folder's record when drivestage's state folder is emptied while the run goes on
(runfold29): ``~/.cache`` (its default home) cleared to free a full Colab disk. The record was
written once per process, so until the run's next process a push of ``./runs`` did not know
the run: it sent again every epoch file the run's retention had pruned from Drive."""
from __future__ import annotations

import json
import shutil

from drivestage.hooks import CheckpointSync
from drivestage.retention import RetentionPolicy

from _cli import run
from _drive_state import live_md5s
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)


def test_the_record_comes_back_at_the_runs_next_push_after_the_state_folder_went(
        emulator, env, tmp_path):
    runs = tmp_path / "runs"
    exp1 = runs / "exp1"
    exp1.mkdir(parents=True)
    sync = CheckpointSync("drive:runs/exp1", RetentionPolicy(keep_last=2), local_dir=str(exp1))
    try:
        sync.on_save(_save(str(exp1), 1), 1)
        sync.flush(60)
        shutil.rmtree(env / "state")   # (rm -rf ~/.cache, the run going on)
        for epoch in (2, 3):
            sync.on_save(_save(str(exp1), epoch), epoch)
            sync.flush(60)
    finally:
        sync.on_train_end(60)
    kept = live_md5s(emulator, "runs/exp1")
    assert set(kept) == {"epoch_002.pt", "epoch_002.json", "epoch_003.pt", "epoch_003.json"}

    code, _, err = run("push", str(runs), "drive:runs")

    assert code == 0, err
    assert "drive:runs/exp1 is a run folder (pushed from" in err
    assert live_md5s(emulator, "runs/exp1") == kept


def test_a_records_exclude_written_as_one_string_is_one_pattern(emulator, env, tmp_path):
    """A record whose ``exclude`` is a string (written by hand, or by a version that took
    one) was read character by character: ``"*.log"`` held the pattern ``*``, and the push
    of ``./runs`` sent nothing of the run folder, ``results.csv`` included."""
    runs = tmp_path / "runs"
    exp1 = runs / "exp1"
    exp1.mkdir(parents=True)
    sync = CheckpointSync("drive:runs/exp1", RetentionPolicy(keep_last=2), local_dir=str(exp1))
    try:
        sync.on_save(_save(str(exp1), 1), 1)
        sync.flush(60)
    finally:
        sync.on_train_end(60)
    records = env / "state" / "run-folders.json"
    data = json.loads(records.read_text())
    (place,) = data
    data[place]["exclude"] = "*.log"
    records.write_text(json.dumps(data))
    (exp1 / "results.csv").write_text("epoch\n")
    (exp1 / "train.log").write_text("log\n")

    code, _, err = run("push", str(runs), "drive:runs")

    assert code == 0, err
    assert set(live_md5s(emulator, "runs/exp1")) == {"epoch_001.pt", "epoch_001.json",
                                                     "results.csv"}
