"""``push --delete`` into a run folder that is not its run's push (``Owned.dest``), by
attackpush32."""
from __future__ import annotations

from _cli import run
from _drive_state import live_md5s
from test_attackds29_run_folders import env  # noqa: F401  (env: a fixture)


def test_push_delete_into_a_run_folder_keeps_the_checkpoints_in_its_subfolders(
        emulator, env, tmp_path):
    """A run folder pushed with its retention (``push ./exp1 drive:runs/exp1 --keep-last
    2``), its checkpoints in ``weights/`` too; ``weights/w1.pt`` then gone from the disk.
    ``push ./exp1 drive:runs/exp1 --delete`` said ``--delete removes none of its checkpoints
    or their sidecars`` and trashed ``weights/w1.pt``, and ``old/`` (on Drive alone) whole
    with its checkpoint, which ``push ./runs drive:runs --delete`` keeps: DEST's run files
    were kept only at its top. A plain file SRC lacks still goes."""
    exp1 = tmp_path / "runs" / "exp1"
    (exp1 / "weights").mkdir(parents=True)
    (exp1 / "epoch_001.pt").write_bytes(b"a" * 10)
    (exp1 / "weights" / "w1.pt").write_bytes(b"b" * 10)
    (exp1 / "weights" / "notes.txt").write_text("n\n")
    code, _, err = run("push", str(exp1), "drive:runs/exp1", "--keep-last", "2")
    assert code == 0, err
    emulator.add_file("runs/exp1/old/e.pt", b"c" * 10)
    emulator.add_file("runs/exp1/weights/stale.txt", b"s\n")
    before = live_md5s(emulator, "runs/exp1/weights")
    (exp1 / "weights" / "w1.pt").unlink()

    code, _, err = run("push", str(exp1), "drive:runs/exp1", "--delete")

    assert code == 0, err
    assert "drive:runs/exp1 is a run folder (pushed from " in err
    assert "with its own retention): --delete removes none of its checkpoints or their " \
        "sidecars; its run's retention (or drivestage prune) deletes those" in err
    assert "--delete: removing 1 item from drive:runs/exp1 that is not in SRC" in err
    kept = dict(before)
    del kept["stale.txt"]
    assert live_md5s(emulator, "runs/exp1/weights") == kept
    assert set(live_md5s(emulator, "runs/exp1/old")) == {"e.pt"}
    assert set(live_md5s(emulator, "runs/exp1")) == {"epoch_001.pt", "weights", "old"}
