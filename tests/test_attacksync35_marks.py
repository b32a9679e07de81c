"""A run folder marked in a directory DEST while another machine's ``push --delete`` runs
(attacksync35)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from drivestage.local_marks import marked

from test_attackds29_run_folders import _save
from test_nasmark34_runs import _tree

_RUN_A = textwrap.dedent("""
    import sys
    from trainer.drive import DriveFolder, retention_policy
    DriveFolder(sys.argv[1], sys.argv[2], retention_policy(0, 0, None)).push()
""")


@pytest.mark.parametrize("permanently", [False, True])
def test_a_folder_marked_a_run_folder_during_another_push_delete_is_left(
        local_state, tmp_path, monkeypatch, permanently):
    """``push ./runs /nas/runs --delete`` on machine B decides what to remove before it sends
    a byte: ``exp2``, a folder made by hand on the NAS, unmarked. While B sent its files, a
    run on machine A began in ``/nas/runs/exp2``: marked it and sent its first verified
    checkpoint there. B then trashed exp2 whole, the checkpoint with it (permanently: gone).
    On Drive the folder is read again just before its removal (attacksync34); the disk's mark
    is now read there too: it is left."""
    from drivestage.upload_tree import push

    nas = tmp_path / "nas" / "runs"
    (nas / "exp2").mkdir(parents=True)
    (nas / "exp2" / "README").write_text("for exp2\n")
    b_runs = tmp_path / "machine-b" / "runs"
    (b_runs / "exp1").mkdir(parents=True)
    for i in range(12):   # (enough that --delete's guard lets one folder go)
        (b_runs / "exp1" / f"log{i}.txt").write_text(f"{i}\n")
    a_exp2 = tmp_path / "machine-a" / "exp2"
    a_exp2.mkdir(parents=True)
    _save(str(a_exp2), 1)
    a_env = dict(os.environ, DRIVESTAGE_STATE_DIR=str(tmp_path / "machine-a-state"))
    started: list[int] = []

    def progress(n: int) -> None:   # B sends its files: A's run begins in exp2 meanwhile
        if not started:
            started.append(subprocess.run(
                [sys.executable, "-c", _RUN_A, str(nas / "exp2"), str(a_exp2)], env=a_env,
                capture_output=True).returncode)

    result = push(str(b_runs), str(nas), delete=not permanently,
                  delete_permanently=permanently, progress=progress, jobs=1)

    assert started == [0]
    assert marked(str(nas / "exp2"))
    assert {"epoch_001.pt", "epoch_001.json"} <= set(_tree(nas / "exp2")), result.deleted
    assert "exp2" not in result.deleted
