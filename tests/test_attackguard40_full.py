"""attackguard40: a trainer started while Drive's storage is full. Its claim (a file of a
few hundred bytes) does not fit, so the run's lease is not taken (pending); guards40 then
stops every push at its first removal, and the room a push makes (the retention the user
asked for, drive.keep_last) is a removal: no push frees room, no claim fits, and nothing
reaches Drive for the whole run. The push's line said Drive "did not answer this trainer's
tries" (Drive had answered: storage full), so the user could not tell what to do; it says
so now, and once the user frees space the next push takes the lease and makes its room.
room41: where Drive takes a property's write (it takes no storage), the claim is a property of
the run folder (trainer.lease_props), and the trainer makes its own room; the line stays for a
Drive that refuses that write too (emulator.full_refuses_property_writes).
The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import pytest

from _lease_pairs import on_drive, save_pair
from test_lease39_pending_guard import DEST, _claims

FULL = ("drive:runs/exp: the run's lease is not taken yet: Drive's storage is full, and its "
        "claim (a file of a few hundred bytes) did not fit; until it is, nothing there is "
        "replaced or removed, so the send stopped at its first replacement or removal (new "
        "files may have gone), and no room is made there (drive.keep_last) while it is not "
        "taken. Free some space on Drive (empty its trash, remove old runs): the next push "
        "takes the lease and makes room")


def _on_a_full_drive(emulator, tmp_path, monkeypatch, properties_refused: bool = False):
    """An earlier run's three checkpoints on Drive (no lease), Drive's storage then full to
    100 bytes (no claim fits; ``properties_refused``: full to the byte, and a property's
    write refused too), and this run's trainer folder with epoch_004.pt to push:
    (the folder, this run's files, the bytes used, what was on Drive before it)."""
    from trainer.config import load_config
    from trainer.drive import DriveFolder
    from trainer.lease import held_folder
    from trainer.stopping import StopFlag

    for epoch in (1, 2, 3):
        save_pair(tmp_path / "before", f"epoch_00{epoch}.pt", epoch)
    DriveFolder(DEST, str(tmp_path / "before")).push()   # (an earlier run's, no lease)
    before = on_drive(emulator)
    used = sum(int(f.get("fileSize", 0)) for f in emulator.files())
    emulator.quota_bytes = emulator.store.quota_bytes = \
        used + (0 if properties_refused else 100)   # (full: no claim fits)
    emulator.full_refuses_property_writes = properties_refused
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "2")
    run = tmp_path / "run"
    ours = save_pair(run, "epoch_004.pt", 4)
    cfg = load_config(None, [f"drive.logs={DEST}", f"train.out_dir={run}",
                             "drive.lease_minutes=0.05", "drive.keep_last=1",
                             "drive.keep_best=0"])
    return held_folder(cfg, StopFlag(60.0)), ours, used, before


def test_a_trainer_started_on_a_full_drive_says_so_and_takes_the_lease_once_there_is_room(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch):
    from trainer.errors import LeaseNotTakenError
    from trainer.lease import release_all

    folder, ours, used, before = _on_a_full_drive(emulator, tmp_path, monkeypatch,
                                                  properties_refused=True)
    try:
        assert folder.lease is not None and folder.lease.pending
        for _ in range(2):   # (each push: the same line, nothing removed, no claim)
            with pytest.raises(LeaseNotTakenError) as caught:
                folder.push()
            assert str(caught.value) == FULL
            assert on_drive(emulator) == before and _claims(emulator) == []
        # The user frees space (another folder's file, say): the next push takes the lease,
        # then makes its room as drive.keep_last asks.
        emulator.quota_bytes = emulator.store.quota_bytes = used + 4096
        folder.push()
        assert not folder.lease.pending and _claims(emulator) == [folder.lease.name]
        assert on_drive(emulator) == {n: [m] for n, m in ours.items()}
    finally:
        release_all()


def test_a_trainer_started_on_a_full_drive_makes_its_own_room(
        drive_env, emulator, tmp_path, fast_retries, monkeypatch):
    from trainer.lease import release_all

    folder, ours, _used, _before = _on_a_full_drive(emulator, tmp_path, monkeypatch)
    try:   # (the claim a property of the folder: room41, tests/test_fullclaim41_lease.py)
        assert folder.lease is not None and not folder.lease.pending
        folder.push()
        assert on_drive(emulator) == {n: [m] for n, m in ours.items()}
    finally:
        release_all()
