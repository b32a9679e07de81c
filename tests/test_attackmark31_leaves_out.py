"""Attacks on the run-folder marks where Drive's ``files.list`` leaves ``properties`` out of
its items (``emulator.list_leaves_out``; the lead's e9954a1), by attackmark31."""
from __future__ import annotations

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
