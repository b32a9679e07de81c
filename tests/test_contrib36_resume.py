"""The trainer's ``--resume auto`` from a shared drive where it is a Contributor, its last
push killed right after ``last.pt`` was updated in place (before the sidecar's last write):
it goes on from the new checkpoint with its own description, and loads (contrib36). Before,
no verified checkpoint was on Drive and the run started afresh."""
from __future__ import annotations

import hashlib
import subprocess
import sys

from test_contrib36_contributor import DEST, _KILLED, _team
from test_trainer22_hostile import _small_run
from test_trainer23_fallback import _choose, _save
from trainer import checkpoint as ckpt


def test_a_resume_after_a_contributors_push_killed_between_checkpoint_and_sidecar(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    from drivestage.upload_tree import push
    from trainer.drive import DriveFolder
    from trainer.resume import restore

    _team(emulator)
    src = tmp_path / "src"
    run = _small_run(tiny_config, src)
    _save(run, src, "last.pt", 1, 1000.0)
    push(str(src), DEST)
    path = _save(run, src, "last.pt", 2, 2000.0)
    proc = subprocess.run([sys.executable, "-c", _KILLED, str(src), DEST, "after last.pt"],
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode == -9, proc.stdout + proc.stderr

    logs = tmp_path / "fresh"
    logs.mkdir()
    start = _choose(logs, "auto", run, drive=DriveFolder(DEST, str(logs)))
    assert (start.path, start.where) == (str(logs / "last.pt"), f"{DEST}/last.pt")
    with open(start.path, "rb") as fh, open(path, "rb") as want:
        assert hashlib.md5(fh.read()).digest() == hashlib.md5(want.read()).digest()
    assert ckpt.read_sidecar(start.path).epoch == 2
    restore(_small_run(tiny_config, tmp_path / "again"), start)
