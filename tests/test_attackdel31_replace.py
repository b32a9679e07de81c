"""attackdel31: what a stop's save sent alone (``DriveFolder.send_alone``) removes on Drive.
Two trainer processes of one run (two machines resumed from the same checkpoint, one
``drive.logs``) that stop at the same iteration each send ``autosave_<iteration>.pt`` alone:
each took the other's pair, verified and just made, for the older one it replaces, and
removed it: Drive was left with neither. Now only a pair made on Drive before this one (by
Drive's own clock, then by id: every process orders them alike) is replaced. The real
PyDrive2 stack against the emulator; real checkpoint files."""
from __future__ import annotations

import os
import tempfile

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)

from test_stopleft31_replace import SPEC, NAME, _both, _on_drive, _pair, _pushed_earlier


def test_two_processes_of_one_run_sending_the_same_name_alone_leave_one_pair(
        emulator, drive_env, local_state, store, tmp_path):
    """A's listing (after its sidecar) comes once B sent its pair and replaced A's: A must not
    take B's for an older one. One verified pair of that name is left, whichever."""
    from trainer.drive import DriveFolder, newest_of_current_run

    _pushed_earlier(tmp_path)   # (the run folder is the run's, marked: replacing is allowed)
    a_path = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-a"), weight=1.0,
                   saved=2000.0)
    b_path = _pair(os.path.join(tempfile.gettempdir(), "trainer-stop-b"), weight=2.0,
                   saved=1990.0)   # (B's clock a little behind)
    a = DriveFolder(SPEC, str(tmp_path / "logs"))
    b = DriveFolder(SPEC, str(tmp_path / "logs-b"))
    lists = a._store.list
    uploads: list[str] = []
    upload = a._store.upload

    def a_upload(path, folder, name, **kwargs):
        uploads.append(name)
        return upload(path, folder, name, **kwargs)

    def a_list(folder):
        if uploads == [NAME, os.path.basename(_both(a_path)[1])]:
            uploads.append("b")   # (once: B's whole send between A's sidecar and A's look)
            b.send_alone(_both(b_path))
        return lists(folder)

    a._store.upload, a._store.list = a_upload, a_list
    a.send_alone(_both(a_path))
    left = _on_drive(store)
    assert [n for n, _ in left] == sorted([NAME, os.path.basename(_both(a_path)[1])]), left
    newest = newest_of_current_run(a.checkpoints())
    assert newest is not None and newest.name == NAME and newest.sidecar.saved in (1990.0, 2000.0)
