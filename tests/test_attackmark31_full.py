"""A run folder whose PUBLIC properties are at Drive's count limit (30), by attackmark31:
the mark's one patch (PRIVATE and PUBLIC together) was refused whole, and the folder went
unmarked even for this app; a fresh VM's ``mirror --delete`` then trashed it."""
from __future__ import annotations

import logging

from _drive_state import live_md5s
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)
from test_runmark30_marks import OURS, _fresh_vm, _mirror_once
from trainer.drive import DriveFolder, retention_policy

OTHERS = [{"key": f"other-{n}", "value": "x", "visibility": "PUBLIC"} for n in range(30)]


def test_a_folder_with_thirty_public_properties_still_gets_this_apps_mark(
        emulator, env, tmp_path, monkeypatch, caplog):
    folder = emulator.add_folder("runs/exp1")   # made before its run (by hand, another tool)
    emulator.set_properties(folder, OTHERS, app="another-app")
    run_dir = tmp_path / "old-vm" / "exp1"
    run_dir.mkdir(parents=True)
    _save(str(run_dir), 1)

    with caplog.at_level(logging.WARNING):
        DriveFolder("drive:runs/exp1", str(run_dir), retention_policy(0, 0, None)).push()

    mine = [p for p in emulator.properties_of(folder) if p["key"] == OURS[0]["key"]]
    assert mine == OURS[:1]
    assert "could not mark" not in caplog.text
    assert "marked drive:runs/exp1 as a run folder for this OAuth client only: it holds as " \
        "many public properties as Drive allows (" in caplog.text
    _mirror_once(_fresh_vm(tmp_path, monkeypatch))
    assert set(live_md5s(emulator, "runs/exp1")) == {"epoch_001.pt", "epoch_001.json"}
