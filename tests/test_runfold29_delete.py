"""What ``push --delete`` leaves of a training run's Drive folder that is not where its
record says (runfold29): moved on Drive into a folder SRC lacks (``drive:runs/archive/exp1``),
the folder above went to the trash whole, the checkpoints the run kept on Drive with it."""
from __future__ import annotations

import logging
import os
import shutil

from drivestage.mirror import Mirror
from trainer.drive import DriveFolder, retention_policy

from _cli import run
from _drive_state import live_md5s
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)

KEPT = {"epoch_001.pt", "epoch_001.json", "epoch_002.pt", "epoch_002.json"}
LEFT = ("--delete leaves drive:runs/archive whole: it holds drive:runs/archive/exp1, a run "
        "folder (its checkpoints are left to that run's own push)")


def _archived(emulator, tmp_path):
    """``runs/exp1`` pushed by its run (the trainer's DriveFolder), then moved on Drive into
    ``runs/archive`` (the web UI; an ``old.txt`` there too), and removed from the disk."""
    runs = tmp_path / "runs"
    exp1 = runs / "exp1"
    exp1.mkdir(parents=True)
    (runs / "notes.txt").write_text("n\n")
    for epoch in (1, 2):
        _save(str(exp1), epoch)
    DriveFolder("drive:runs/exp1", str(exp1), retention_policy(0, 0, None)).push()
    assert set(live_md5s(emulator, "runs/exp1")) == KEPT
    archive = emulator.add_folder("runs/archive")
    emulator.add_file("runs/archive/old.txt", b"old\n")
    emulator.store.update_meta(emulator.find("runs/exp1")["id"], {"parents": [{"id": archive}]})
    shutil.rmtree(exp1)
    return runs


def test_delete_leaves_a_folder_a_run_folder_was_moved_into(emulator, env, tmp_path):
    runs = _archived(emulator, tmp_path)

    code, _, err = run("push", str(runs), "drive:runs", "--delete")

    assert code == 0, err
    assert LEFT in err
    assert set(live_md5s(emulator, "runs/archive/exp1")) == KEPT
    assert set(live_md5s(emulator, "runs/archive")) == {"exp1", "old.txt"}
    assert set(live_md5s(emulator, "runs")) == {"archive", "notes.txt"}


def test_delete_with_exclude_leaves_a_run_folder_moved_into_a_folder(emulator, env, tmp_path):
    """With a filter the folder SRC lacks is gone through: what passes goes (``old.txt``),
    the run folder stays, whole."""
    runs = _archived(emulator, tmp_path)

    code, _, err = run("push", str(runs), "drive:runs", "--delete", "--exclude", "*.log")

    assert code == 0, err
    assert set(live_md5s(emulator, "runs/archive/exp1")) == KEPT
    assert set(live_md5s(emulator, "runs/archive")) == {"exp1"}
    assert "1 deleted (not local)" in err


def test_delete_into_a_run_folder_leaves_the_checkpoints_its_run_keeps(emulator, env, tmp_path):
    """``push ./runs/exp1 drive:runs/exp1 --delete`` (no policy: not the run's own push)
    after ``train.keep_local`` removed the older epochs from the disk, Drive holding them:
    it trashed every checkpoint the run kept on Drive but the newest."""
    exp1 = tmp_path / "runs" / "exp1"
    exp1.mkdir(parents=True)
    for epoch in (1, 2, 3):
        _save(str(exp1), epoch)
    (exp1 / "results.csv").write_text("epoch\n")
    DriveFolder("drive:runs/exp1", str(exp1), retention_policy(0, 0, None)).push()
    emulator.add_file("runs/exp1/stale.txt", b"stale\n")
    emulator.add_file("runs/exp1/old/epoch_001.pt", b"not the run's\n")
    on_drive = live_md5s(emulator, "runs/exp1")
    for epoch in (1, 2):   # (as keep_local does, once Drive holds them)
        os.remove(exp1 / f"epoch_{epoch:03d}.pt")
        os.remove(exp1 / f"epoch_{epoch:03d}.json")

    code, _, err = run("push", str(exp1), "drive:runs/exp1", "--delete")

    assert code == 0, err
    assert (f"drive:runs/exp1 is a run folder (pushed from {os.path.realpath(exp1)} with its "
            "own retention): --delete removes none of its checkpoints or their sidecars; its "
            "run's retention (or drivestage prune) deletes those") in err
    del on_drive["stale.txt"]   # (old/ stays, as a push of runs/ keeps it: attackpush32)
    assert live_md5s(emulator, "runs/exp1") == on_drive
    assert "1 deleted (not local)" in err


def test_a_mirror_says_it_leaves_the_folder_once(emulator, env, tmp_path, caplog):
    runs = _archived(emulator, tmp_path)
    mirror = Mirror(str(runs), "drive:runs", delete=True)
    try:
        with caplog.at_level(logging.WARNING):
            for _ in range(2):
                assert mirror.flush(60).deleted == []
    finally:
        mirror.stop(60, flush=False)

    assert [r.getMessage() for r in caplog.records].count(LEFT) == 1
    assert set(live_md5s(emulator, "runs/archive/exp1")) == KEPT
