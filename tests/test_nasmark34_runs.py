"""nasmark34: a directory DEST kept no run-folder mark (attacksync34). A run on machine A
pushes its checkpoints into ``/nas/runs/exp1`` (a shared disk: a cluster's nodes, a NAS);
machine B, with its own state folder and only its own ``exp2`` on its disk, runs ``push
./runs /nas/runs --delete``: exp1, checkpoints and all, went to the trash (with
``--delete-permanently``, gone). A run folder in a directory carries its mark in its state
folder now (``exp1/.drivestage/run-folder``), which every machine reads."""
from __future__ import annotations

import hashlib
import os

import pytest

from drivestage.local_marks import MARK, marked, put
from trainer.drive import DriveFolder, retention_policy

from _cli import run
from test_attackds29_run_folders import _save


def _tree(root):
    out = {}
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".drivestage")]
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.md5(fh.read()).hexdigest()
    return out


@pytest.mark.parametrize("how", ["--delete", "--delete-permanently"])
def test_another_machines_push_delete_leaves_a_run_folder_on_a_shared_disk(
        local_state, tmp_path, monkeypatch, how):
    nas = tmp_path / "nas" / "runs"
    nas.mkdir(parents=True)
    a_exp1 = tmp_path / "machine-a" / "exp1"
    a_exp1.mkdir(parents=True)
    for epoch in (1, 2):
        _save(str(a_exp1), epoch)
    DriveFolder(str(nas / "exp1"), str(a_exp1), retention_policy(0, 0, None)).push()
    kept = _tree(nas / "exp1")
    assert set(kept) == {"epoch_001.pt", "epoch_001.json", "epoch_002.pt", "epoch_002.json"}
    assert marked(str(nas / "exp1"))

    monkeypatch.setenv("DRIVESTAGE_STATE_DIR", str(tmp_path / "machine-b-state"))
    b_runs = tmp_path / "machine-b" / "runs"
    (b_runs / "exp2").mkdir(parents=True)
    for i in range(12):   # (enough files that --delete's guard lets its deletions by)
        (b_runs / "exp2" / f"log{i}.txt").write_text(f"{i}\n")
    (nas / "notes.txt").write_text("n\n")     # no run's: --delete's to remove

    code, _, err = run("push", str(b_runs), str(nas), how)

    assert code == 0, err
    assert f"--delete leaves {nas / 'exp1'} whole: it is a run folder (its checkpoints are " \
        "left to that run's own push)" in err, err
    assert _tree(nas / "exp1") == kept, err
    assert not (nas / "notes.txt").exists()
    assert set(_tree(nas / "exp2")) == {f"log{i}.txt" for i in range(12)}


def test_runs_forget_clears_the_mark_and_a_link_marks_nothing(tmp_path):
    run_dir = tmp_path / "exp1"
    run_dir.mkdir()
    assert put(str(run_dir), True) and marked(str(run_dir))
    assert put(str(run_dir), False) and not marked(str(run_dir))
    assert not (run_dir / ".drivestage").exists()   # the mark was all it held
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / MARK).write_text("")
    os.symlink(elsewhere, run_dir / ".drivestage")
    assert not marked(str(run_dir))
    assert not put(str(run_dir), True)               # never written through the link
    assert os.listdir(elsewhere) == [MARK]
