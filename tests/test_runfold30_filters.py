"""A push of a folder holding run folders, with --include/--exclude that hide a run's
checkpoints (attackds30): `push ./runs drive:runs --include "*.json"` paired each sidecar
with the files the filters let through and the store listing only, so the sidecar of an
epoch the run's retention pruned from Drive (its checkpoint hidden by the filter) had no
owner, was taken for a plain file, and was sent back into the run folder: an orphan against
"none it pruned is sent again"."""
from __future__ import annotations

import pytest

from _cli import run
from _drive_state import live_md5s
from _run_pushes import push_three_epochs
from test_attackds29_run_folders import env  # noqa: F401  (a fixture)


@pytest.mark.parametrize("filters", [["--include", "*.json"], ["--exclude", "*.pt"]])
def test_filters_that_hide_a_pruned_checkpoint_send_back_none_of_its_sidecar(
        emulator, env, tmp_path, filters):
    exp1 = tmp_path / "runs" / "exp1"
    push_three_epochs(exp1, "drive:runs/exp1")
    (exp1 / "notes.json").write_text("{}")     # a plain file of the run folder: sent
    kept = live_md5s(emulator, "runs/exp1")
    assert set(kept) == {"epoch_002.pt", "epoch_002.json", "epoch_003.pt", "epoch_003.json"}

    code, _, err = run("push", str(tmp_path / "runs"), "drive:runs", *filters)

    assert code == 0, err
    assert set(live_md5s(emulator, "runs/exp1")) == set(kept) | {"notes.json"}   # no 001.json
