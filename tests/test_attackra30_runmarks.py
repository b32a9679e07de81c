"""Attacks on the Drive-side run-folder mark (runmark30), by attackra30."""
from __future__ import annotations

import os

from _drive_state import live_md5s
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)
from test_messages_dedupe import folder, put, run as dedupe_run
from test_runmark30_marks import OURS, marks_of, _fresh_vm, _mirror_once
from trainer.drive import DriveFolder, retention_policy


def _twins(emulator, store) -> tuple[str, str]:
    """``runs/exp1`` twice: the oldest made by hand (a note in it), the newer one the run
    folder (two machines that made one path at once)."""
    root = emulator.add_folder("runs")
    old = folder(store, "exp1", root)
    put(emulator, store, old, "notes.txt", b"notes\n")
    return old, folder(store, "exp1", root)


def test_a_dedupe_into_an_unmarked_oldest_keeps_the_run_folder_marked(
        emulator, env, tmp_path, monkeypatch, store, fast_retries):
    """`dedupe drive:runs` merged the marked run folder into its unmarked oldest twin: the
    mark went to the trash with the emptied twin, and a fresh VM's `mirror ./runs drive:runs
    --delete` then trashed exp1 with the checkpoint the run kept there."""
    old, new = _twins(emulator, store)
    put(emulator, store, new, "epoch_001.pt", b"w" * 100)
    emulator.set_properties(new, OURS)
    code, _, err = dedupe_run("dedupe", "drive:runs")
    assert code == 0, err
    assert marks_of(emulator, old) == OURS

    _mirror_once(_fresh_vm(tmp_path, monkeypatch))

    assert set(live_md5s(emulator, "runs/exp1")) == {"notes.txt", "epoch_001.pt"}


def test_a_dedupe_carries_this_machines_record_to_the_oldest(emulator, env, tmp_path, store,
                                                            fast_retries):
    """A run folder known by this machine's record alone (made before marks were), merged
    into its oldest twin: the record was of the trashed twin's id, and this machine's own
    `push ./runs drive:runs --delete` trashed what the run's retention kept on Drive."""
    old, new = _twins(emulator, store)
    run_dir = tmp_path / "runs" / "exp1"
    run_dir.mkdir(parents=True)
    _save(str(run_dir), 1)
    DriveFolder(f"drive:id:{new}", str(run_dir), retention_policy(0, 0, None)).push()
    emulator.set_properties(new, [])          # a run folder from before marks
    code, _, err = dedupe_run("dedupe", "drive:runs")
    assert code == 0, err
    os.unlink(run_dir / "epoch_001.pt")       # train.keep_local: on Drive alone now
    emulator.set_properties(old, [])          # its mark alone would keep it: not tested here

    code, _, err = dedupe_run("push", str(tmp_path / "runs"), "drive:runs", "--delete")

    assert code == 0, err
    # (notes.txt, no checkpoint, goes: SRC's exp1 lacks it, as --delete asks)
    assert set(live_md5s(emulator, "runs/exp1")) == {"epoch_001.pt", "epoch_001.json"}


def test_runs_forget_clears_the_mark_of_a_run_folder_on_a_shared_drive(emulator, env, tmp_path,
                                                                       fast_retries):
    """`drivestage runs forget drive:shared/Team/runs/exp1` said "its mark on Drive
    cleared", and the mark stayed: the emulator answered `properties.delete` 404 for a
    shared drive's item, as if it were a `files.*` call without `supportsAllDrives` (Drive's
    guide lists no `properties.*` method among those: the method takes no such parameter),
    and a 404 is "no mark any more". A fresh VM's `--delete` then still left the folder."""
    emulator.add_shared_drive("Team")
    run_dir = tmp_path / "exp1"
    run_dir.mkdir()
    _save(str(run_dir), 1)
    DriveFolder("drive:shared/Team/runs/exp1", str(run_dir), retention_policy(0, 0, None)).push()
    [exp1] = [f["id"] for f in emulator.files() if f["title"] == "exp1"]
    assert marks_of(emulator, exp1) == OURS

    code, out, err = dedupe_run("runs", "forget", "drive:shared/Team/runs/exp1")

    assert code == 0, err
    assert out == "drive:shared/Team/runs/exp1 is no run folder any more: its mark on Drive " \
        "cleared, this machine's record of it removed\n"
    assert marks_of(emulator, exp1) == []
