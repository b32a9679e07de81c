"""Attacks on the run-folder marks where Drive's ``files.list`` leaves ``properties`` out of
its items (``emulator.list_leaves_out``; the lead's e9954a1), by attackmark31."""
from __future__ import annotations

from _cli import run
from _drive_state import live_md5s
from test_attackds29_run_folders import env  # noqa: F401  (env: a fixture)
from test_attackra30_runmarks import _twins
from test_messages_dedupe import put, run as dedupe_run
from test_runmark30_marks import OURS, _fresh_vm, _mirror_once, _old_runs


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
    assert emulator.properties_of(old) == OURS

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
    assert emulator.properties_of(emulator.find("runs/exp1")["id"]) == []
