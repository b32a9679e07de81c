"""``--delete`` beside a run folder SRC holds too whose checkpoints sit in a folder the disk
lacks, by attacksync33."""
from __future__ import annotations

from _cli import run
from _drive_state import live_md5s
from test_attackds29_run_folders import env  # noqa: F401  (a fixture)
from test_runmark30_marks import LOGS, OURS, _fresh_vm


def test_a_run_folders_store_only_weights_folder_stays_behind_a_listing_without_marks(
        emulator, env, tmp_path, monkeypatch):
    """A fresh VM resuming exp1 (its ``results.csv`` on the disk; the checkpoints, in
    ``exp1/weights/``, on Drive alone), Drive's listing showing no properties: ``push ./runs
    drive:runs --delete`` asked exp1 for its mark only where exp1's own listing held a
    checkpoint, took it for a plain folder and trashed ``weights/`` whole, checkpoints and
    all, as a folder SRC lacks. exp1 is asked where its listing holds a folder SRC lacks
    too: ``weights/`` stays; a folder SRC lacks in a plain folder still goes."""
    exp1 = emulator.add_folder("runs/exp1")
    emulator.set_properties(exp1, OURS)
    for name, data in (("epoch_001.pt", b"w" * 100), ("epoch_001.json", b'{"epoch": 1}')):
        emulator.add_file(f"runs/exp1/weights/{name}", data)
    emulator.add_file("runs/exp1/results.csv", b"epoch\n")
    emulator.add_file("runs/exp3/old/stale.txt", b"stale\n")
    before = live_md5s(emulator, "runs/exp1/weights")
    emulator.list_leaves_out = {"properties"}
    runs = _fresh_vm(tmp_path, monkeypatch)
    (runs / "exp1").mkdir()
    (runs / "exp1" / "results.csv").write_text("epoch\n")

    code, _, err = run("push", str(runs), "drive:runs", "--delete")

    assert code == 0, err
    assert set(live_md5s(emulator, "runs/exp1")) == {"results.csv", "weights"}
    assert live_md5s(emulator, "runs/exp1/weights") == before
    assert set(live_md5s(emulator, "runs/exp3")) == set(LOGS)
