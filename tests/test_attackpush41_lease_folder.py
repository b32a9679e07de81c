"""attackpush41: a trainer's run folder on Drive trashed (or deleted) between two pushes,
with the run's lease on (``drive.lease_minutes``, on by default). The lease's check before
each push resolved the path, found nothing, and failed the push: "drive:runs/exp not found
(no item named 'exp' in drive:runs; names are case-sensitive)", at every push for the rest
of the run, nothing more reaching Drive (trashed40 tested the case without a lease). Now the
check makes the folder where the path leads nowhere, as the push does: the push sends
everything there again (said once), and the trainer's claim is in it, live, for the next
trainer to see.

The folder renamed (or moved) instead: its claim went with it, and the lease kept checking
that folder while the pushes went to the path, made anew: a second trainer started at the
path found no claim there, took the lease, and both pushed into one folder. Now the lease
follows the path as the push found it last (no request): at the push's first commit there,
its claim goes there, or, where another's live claim is there already, it stops as taken
over, nothing of its own left there. The real DriveFolder and RunLease (PyDrive2 stack)
against the emulator."""
from __future__ import annotations

import logging

import pytest

from _lease_pairs import on_drive, save_pair

DEST = "drive:runs/exp"


def _claims(emulator) -> list[tuple[str, bool, list[str]]]:
    return sorted((f["title"], f["labels"]["trashed"], [p["id"] for p in f["parents"]])
                  for f in emulator.files() if f["title"].startswith("trainer-lease-"))


@pytest.mark.parametrize("gone", ["trashed", "deleted"])
def test_a_run_folder_gone_between_pushes_under_a_lease_is_made_again(
        emulator, drive_env, local_state, tmp_path, monkeypatch, caplog, gone):
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease, release_all

    monkeypatch.setenv("TRAINER_LEASE_SETTLE", "0")
    logs = tmp_path / "logs"
    want = save_pair(logs, "epoch_001.pt", 1)
    drive = DriveFolder(DEST, str(logs))
    lease = RunLease(drive, period_s=600)
    lease.acquire()
    drive.lease = lease
    try:
        drive.push()
        old = emulator.find("runs/exp")["id"]
        if gone == "trashed":
            emulator.store.set_trashed(old, True)
        else:
            emulator.store.delete(old)
        want.update(save_pair(logs, "epoch_002.pt", 2))
        caplog.set_level(logging.WARNING)
        drive.push()
        assert on_drive(emulator) == {n: [m] for n, m in want.items()}
        said = [r.getMessage() for r in caplog.records if "no longer at its path" in
                r.getMessage()]
        assert said == [
            "drive:runs/exp is no longer at its path on Drive (moved, renamed, trashed or "
            "deleted since this process last pushed there); making it anew and sending "
            "everything to it: put the folder back first to keep one copy"], said
        new = emulator.find("runs/exp")["id"]
        assert new != old
        live = [c for c in _claims(emulator) if not c[1]]
        assert live == [(lease.name, False, [new])], _claims(emulator)
        assert lease.lost is None
        drive.push()   # (the next period: nothing more to send, nothing said)
        assert len([r for r in caplog.records if "no longer at its path" in
                    r.getMessage()]) == 1
    finally:
        release_all()
        lease.release()


def _started(emulator, tmp_path, monkeypatch, name: str):
    """A trainer holding the run's lease (``name``: its local folder), its first pair pushed."""
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    monkeypatch.setenv("TRAINER_LEASE_SETTLE", "0")
    drive = DriveFolder(DEST, str(tmp_path / name))
    lease = RunLease(drive, period_s=600)
    lease.acquire()
    drive.lease = lease
    return drive, lease


def test_a_run_folder_renamed_and_a_second_trainer_at_the_path_leaves_one_pushing(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    from trainer.errors import LeaseLostError
    from trainer.lease import release_all

    save_pair(tmp_path / "a", "epoch_001.pt", 1)
    a, lease_a = _started(emulator, tmp_path, monkeypatch, "a")
    try:
        a.push()
        emulator.store.update(emulator.find("runs/exp")["id"], title="exp_old")
        b, lease_b = _started(emulator, tmp_path, monkeypatch, "b")   # (no claim at the path)
        save_pair(tmp_path / "a", "epoch_002.pt", 2)
        with pytest.raises(LeaseLostError) as lost:
            a.push()
        assert str(lost.value).endswith(
            "this trainer's claim was in the folder the path led to before, moved, renamed or "
            f"trashed on Drive since): this trainer pushes nothing more there, its "
            f"checkpoints stay in {tmp_path / 'a'} only"), lost.value
        new = emulator.find("runs/exp")["id"]
        there = sorted(f["title"] for f in emulator.files() if not f["labels"]["trashed"]
                       and [p["id"] for p in f["parents"]] == [new])
        assert there == [lease_b.name]   # (nothing of A's: its own copies undone)
        lease_b.check()
        assert lease_b.lost is None
    finally:
        release_all()


def test_a_run_folder_renamed_takes_the_claim_to_the_path_at_the_first_commit(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    from trainer.lease import release_all

    save_pair(tmp_path / "a", "epoch_001.pt", 1)
    a, lease_a = _started(emulator, tmp_path, monkeypatch, "a")
    try:
        a.push()
        emulator.store.update(emulator.find("runs/exp")["id"], title="exp_old")
        save_pair(tmp_path / "a", "epoch_002.pt", 2)
        a.push()
        new = emulator.find("runs/exp")["id"]
        assert _claims(emulator) == [(lease_a.name, False, [new])]   # (none left in exp_old)
        assert lease_a.lost is None
    finally:
        release_all()
