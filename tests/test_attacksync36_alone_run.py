"""attacksync36: a stop's save sent alone (``DriveFolder.send_alone``) where Drive's sidecar
of those names is one a stopped in-place push left (:mod:`drivestage.sidecar_phases`): its
top-level keys describe the old bytes, of this run, and its ``coming`` the bytes there now,
of another run (a Contributor's push of run r0, forced over this run's checkpoint, stopped
right after the checkpoint's update in place). The check that the names are not another
run's read the top-level run only: this run's; and once the new pair was verified, the
older copies its sidecar vouched for were removed (Manager): run r0's verified checkpoint
deleted. With r0's push finished (a plain sidecar), the send is refused, r0's pair kept. Now
the run of the bytes there is asked, both times.

Through the real stack (the trainer's DriveFolder, the library push, PyDrive2,
googleapiclient, the emulator over HTTP, a shared drive whose member's role changes from
Contributor to Manager as "Manage members" does). The stop is an exception raised by a
wrapper around the real ``store.upload`` right after the checkpoint's update returned, as a
SIGKILL there. No sleeps."""
from __future__ import annotations

import json
import os

import pytest

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from test_stopcopy36_contributor import DEST, NAME, SIDE, _both, _md5, _pair, _team


class _Killed(BaseException):
    """The push stopped here (as by SIGKILL): nothing after it runs."""


def _live(emulator, team: str) -> dict:
    return {f["title"]: f for f in emulator.files() if f.get("driveId") == team
            and not f["labels"]["trashed"] and f["title"] in (NAME, SIDE)}


@pytest.mark.parametrize("stopped", [True, False])
def test_a_stop_save_sent_alone_leaves_another_runs_checkpoint(
        emulator, drive_env, local_state, tmp_path, stopped):
    from drivestage.remote import open_store
    from drivestage.upload_tree import push
    from trainer.drive import DriveFolder, OtherRunFile

    team = _team(emulator, "organizer")
    logs = str(tmp_path / "logs")
    _pair(logs, run="r1", weight=1.0, saved=1000.0)
    DriveFolder(DEST, logs).push()            # run r1's pair, its run folder
    emulator.set_drive_role(team, "writer")   # r0's machine: a Contributor
    theirs = _pair(str(tmp_path / "r0"), run="r0", weight=2.0, saved=2000.0)
    store, where = open_store(DEST)
    real = store.upload

    def upload(local_path, folder, name, **kw):
        got = real(local_path, folder, name, **kw)
        if stopped and name == NAME:
            raise _Killed()
        return got

    store.upload = upload
    try:
        push(str(tmp_path / "r0"), (store, where), jobs=1, keep_other_runs=False)
    except _Killed:
        pass
    there = _live(emulator, team)
    assert there[NAME]["md5Checksum"] == _md5(theirs)
    side = json.loads(emulator.read_bytes(there[SIDE]["id"]))
    assert (side["run"], side.get("coming", {}).get("run")) == (
        ("r1", "r0") if stopped else ("r0", None))
    emulator.set_drive_role(team, "organizer")   # r1's machine: a Manager

    mine = _pair(str(tmp_path / "stop"), run="r1", weight=3.0, saved=3000.0)
    with pytest.raises(OtherRunFile):
        DriveFolder(DEST, logs).send_alone(_both(mine))

    now = _live(emulator, team)
    assert now[NAME]["md5Checksum"] == _md5(theirs)
    assert now[SIDE]["md5Checksum"] == there[SIDE]["md5Checksum"]
    assert len([f for f in emulator.files() if f.get("driveId") == team
                and not f["labels"]["trashed"] and f["title"] in (NAME, SIDE)]) == 2
