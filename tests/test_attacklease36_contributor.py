"""attacklease36: the run's lease (trainer.lease) in a shared drive where this account is a
Contributor (adds and edits, never deletes): a trainer's claim could not be removed when its
run ended, so it stayed, renewed no more but looking like a live trainer's. The next start on
another machine (a Colab reconnect: a new runtime) watched it for the whole stale bound
(2.5 min by default) and then "took the lease over from a holder that is gone". Now a claim
its holder cannot remove is marked released in place (a Contributor edits): the next trainer
takes the lease at once. The real PyDrive2 stack against the emulator, RunLease as the trainer
makes it."""
from __future__ import annotations

import json
import logging

DEST = "drive:shared/Team/run"


def _claims(emulator, team: str) -> list[dict]:
    return [f for f in emulator.files() if f.get("driveId") == team
            and not f["labels"]["trashed"] and f["title"].startswith("trainer-lease-")]


def test_a_contributors_ended_run_leaves_no_live_looking_claim(drive_env, emulator, tmp_path,
                                                                caplog):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    team = emulator.add_shared_drive("Team", role="writer")
    emulator.add_folder("run", drive_id=team)
    # (3 s renewals: a claim is stale after 9 s; the default is 60 s and 150 s)
    first = RunLease(DriveFolder(DEST, str(tmp_path / "a")), period_s=3.0)
    first.acquire()
    first.release()
    assert len(_claims(emulator, team)) == 1   # Drive refuses a Contributor's delete

    caplog.set_level(logging.INFO, logger="trainer.lease")
    second = RunLease(DriveFolder(DEST, str(tmp_path / "b")), period_s=3.0)
    second.acquire()   # another machine's new runtime, the run ended there
    try:
        said = [r.getMessage() for r in caplog.records]
        assert not [s for s in said if "is held by" in s], said          # no wait
        assert not [s for s in said if "took the run's lease over" in s], said
        assert second.holder() is not None and second.holder().owner == second.token
    finally:
        second.release()
    left = _claims(emulator, team)
    # one file per start the Contributor cannot remove; each says its run ended
    assert len(left) == 2
    for f in left:
        body = json.loads(emulator.read_bytes(f["id"]))
        assert body.get("released") is True, body
