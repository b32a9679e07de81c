"""Attacks on the run-folder marks where Drive's ``files.list`` leaves ``properties`` out of
its items (``emulator.list_leaves_out``; the lead's e9954a1), by attackmark31."""
from __future__ import annotations

from drivestage.mirror import Mirror
from trainer.drive import DriveFolder, retention_policy

from _cli import run
from _drive_state import live_md5s
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)
from test_attackra30_runmarks import _twins
from test_messages_dedupe import put, run as dedupe_run
from test_runmark30_marks import OURS, marks_of, _fresh_vm, _mirror_once, _old_runs


def test_a_dedupe_behind_a_listing_without_properties_still_carries_the_mark(
        emulator, env, tmp_path, monkeypatch, store, fast_retries):
    """``dedupe drive:runs`` merged the marked run folder into its unmarked oldest twin, the
    listing it merged by showing no properties: the mark went to the trash with the emptied
    twin, and a fresh VM's ``mirror ./runs drive:runs --delete`` trashed the checkpoint."""
    old, new = _twins(emulator, store)
    put(emulator, store, new, "epoch_001.pt", b"w" * 100)
    emulator.set_properties(new, OURS)
    emulator.list_leaves_out = {"properties"}
    code, _, err = dedupe_run("dedupe", "drive:runs")
    assert code == 0, err
    assert marks_of(emulator, old) == OURS

    _mirror_once(_fresh_vm(tmp_path, monkeypatch))

    assert set(live_md5s(emulator, "runs/exp1")) == {"notes.txt", "epoch_001.pt"}


def test_a_run_folder_src_has_too_keeps_its_checkpoints_behind_a_listing_without_properties(
        emulator, env, tmp_path, monkeypatch):
    """A fresh VM resuming exp1 (its ``results.csv`` on the disk, the checkpoints the run
    keeps on Drive alone: ``train.keep_local``) beside the new exp3: ``mirror ./runs
    drive:runs --delete`` took exp1 for a plain folder, the listing showing no mark, and
    trashed every checkpoint in it."""
    before = _old_runs(emulator, tmp_path)
    emulator.list_leaves_out = {"properties"}
    runs = _fresh_vm(tmp_path, monkeypatch)
    (runs / "exp1").mkdir()
    (runs / "exp1" / "results.csv").write_text("epoch\n")

    _mirror_once(runs)

    assert set(live_md5s(emulator, "runs/exp1")) == set(before["exp1"])
    assert set(live_md5s(emulator, "runs/exp2")) == set(before["exp2"])


def test_push_delete_into_a_run_folder_keeps_its_checkpoints_behind_a_listing_without_properties(
        emulator, env, tmp_path, monkeypatch):
    """``push ./exp1 drive:runs/exp1 --delete`` on a fresh VM, DEST found by listing ``runs``
    (no properties in it): DEST itself is asked, its checkpoints stay (held)."""
    before = _old_runs(emulator, tmp_path)
    emulator.list_leaves_out = {"properties"}
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "fresh-state"))
    emulator.add_file("runs/exp1/stale.txt", b"stale\n")
    exp1 = tmp_path / "exp1"
    exp1.mkdir()
    (exp1 / "results.csv").write_text("epoch\n")

    code, _, err = run("push", str(exp1), "drive:runs/exp1", "--delete")

    assert code == 0, err
    assert live_md5s(emulator, "runs/exp1") == before["exp1"]


def test_runs_forget_behind_a_listing_without_properties_clears_the_mark(
        emulator, env, tmp_path, monkeypatch):
    """``runs forget drive:runs/exp1``, the folder found by listing ``runs`` (no properties
    in it): it said "was no run folder: no mark on Drive" and left both marks, and a fresh
    VM's ``--delete`` still kept the folder the user had asked to be no run folder."""
    _old_runs(emulator, tmp_path)
    emulator.list_leaves_out = {"properties"}
    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "laptop-state"))

    code, out, err = run("runs", "forget", "drive:runs/exp1")

    assert (code, err) == (0, "")
    assert out == "drive:runs/exp1 is no run folder any more: its mark on Drive cleared\n"
    assert marks_of(emulator, emulator.find("runs/exp1")["id"]) == []


def test_a_shared_drives_run_folders_are_asked_too(emulator, env, tmp_path, monkeypatch):
    """The runs on a shared drive (``drive:shared/Team/runs``), a fresh VM's ``mirror
    --delete`` behind a listing without properties: the folders' own ``files.get`` (with
    ``supportsAllDrives``) finds their marks; exp1, held in SRC too, and exp2 stay (held)."""
    emulator.add_shared_drive("Team")
    for name in ("exp1", "exp2"):
        folder = tmp_path / "old-vm" / name
        folder.mkdir(parents=True)
        _save(str(folder), 1)
        DriveFolder(f"drive:shared/Team/runs/{name}", str(folder),
                    retention_policy(0, 0, None)).push()
    emulator.list_leaves_out = {"properties"}
    runs = _fresh_vm(tmp_path, monkeypatch)
    (runs / "exp1").mkdir()
    (runs / "exp1" / "results.csv").write_text("epoch\n")

    mirror = Mirror(str(runs), "drive:shared/Team/runs", delete=True)
    try:
        mirror.flush(60)
    finally:
        mirror.stop(60, flush=False)

    kept = {f["title"] for f in emulator.files() if not f["labels"]["trashed"]}
    assert {"exp1", "exp2", "epoch_001.pt", "epoch_001.json", "results.csv"} <= kept
    assert sum(f["title"] == "epoch_001.pt" and not f["labels"]["trashed"]
               for f in emulator.files()) == 2
