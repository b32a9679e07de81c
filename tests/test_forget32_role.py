"""forget32: ``drivestage runs forget`` by an account that may not edit the run folder (a
shared drive's Commenter, by attackpush32): Drive refuses the mark's ``properties.delete``,
and the line said `permission denied (HTTP 403 …). Check that this account can access the
file (sharing settings, shared drive membership)`: it can; what it lacks is a role that
edits. This machine's record stayed too. Now the record goes first, and one line says the
mark stays and who can clear it."""
from __future__ import annotations

import os

from _cli import run
from test_attackds29_run_folders import _save, env  # noqa: F401  (env: a fixture)
from trainer.drive import DriveFolder, retention_policy

from drivestage import run_folders
from test_runmark30_marks import marks_of


def test_a_commenters_forget_removes_the_record_and_says_the_mark_stays(emulator, env, tmp_path):
    team = emulator.add_shared_drive("Team", role="writer")
    folder = tmp_path / "exp1"
    folder.mkdir()
    _save(str(folder), 1)
    DriveFolder("drive:shared/Team/runs/exp1", str(folder), retention_policy(0, 0, None)).push()
    marks = marks_of(emulator, emulator.find("runs/exp1", drive_id=team)["id"])
    assert len(marks) == 2 and len(run_folders._file().read()) == 1
    emulator.set_drive_role(team, "commenter")

    code, out, err = run("runs", "forget", "drive:shared/Team/runs/exp1")

    assert (code, out) == (1, "")
    assert err.strip().splitlines()[-1] == (
        "Error: drive:shared/Team/runs/exp1: its run-folder mark stays on Drive: this account "
        "may not edit the folder, and clearing the mark needs an editor's role (or a shared "
        "drive's Contributor or above); this machine's record of it removed; someone with "
        "that role can run drivestage runs forget drive:shared/Team/runs/exp1")
    assert run_folders._file().read() == {}
    assert marks_of(emulator, emulator.find("runs/exp1", drive_id=team)["id"]) == marks
    # The editor's forget clears it.
    emulator.set_drive_role(team, "writer")
    code, out, _ = run("runs", "forget", "drive:shared/Team/runs/exp1")
    assert (code, out) == (0, "drive:shared/Team/runs/exp1 is no run folder any more: its "
                              "mark on Drive cleared\n")
    assert marks_of(emulator, emulator.find("runs/exp1", drive_id=team)["id"]) == []
    assert os.path.isfile(folder / "epoch_001.pt")


def test_forget_of_a_local_folder_names_no_drive(env, tmp_path):
    """attackpush32: ``runs forget /mnt/nas/runs/exp1`` said ``no mark on Drive``."""
    (tmp_path / "nas" / "exp1").mkdir(parents=True)
    code, out, _ = run("runs", "forget", str(tmp_path / "nas" / "exp1"))
    assert (code, out) == (0, f"{tmp_path / 'nas' / 'exp1'} was no run folder: no record on "
                              "this machine\n")
