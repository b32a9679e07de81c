"""The warning of a push or mirror of a folder above a training run's folder, which
docs/troubleshooting.md quotes (mirror28)."""
from __future__ import annotations

import os

from _cli import run
from _envs import env_local_retries  # noqa: F401  (the env fixture)
from _messages import renders, shown
from test_mirror28_run_folders import _runs, _save
from trainer.drive import DriveFolder, retention_policy

HEADING = "is a run folder (pushed from … with its own retention); its checkpoints are left to"


@renders(HEADING)
def test_a_push_of_runs_says_it_leaves_the_run_folder_s_checkpoints(emulator, env, tmp_path):
    runs = _runs(tmp_path)
    exp1 = str(runs / "exp1")
    for epoch in (1, 2):
        _save(exp1, epoch, epoch / 10)
    DriveFolder("drive:runs/exp1", exp1, retention_policy(1, 0, None)).push()

    code, _, err = run("push", str(runs), "drive:runs")

    assert code == 0, err
    line = next(x for x in err.splitlines() if "is a run folder" in x)
    assert line == (
        f"WARNING drivestage.upload_tree: drive:runs/exp1 is a run folder (pushed from "
        f"{os.path.realpath(exp1)} with its own retention); its checkpoints are left to that "
        "push here: none it pruned is sent again, none it keeps is deleted. The rest of exp1 "
        "is pushed"), err
    shown(HEADING, line)
