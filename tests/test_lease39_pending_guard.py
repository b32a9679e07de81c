"""lease39: a trainer whose run's lease an outage kept from being taken at its start (pending)
takes it at a push's first commit that reaches Drive, not only at the push's start. Its push
checked the lease while Drive still failed (the check gave up: "the push goes on"); Drive
came back mid-push, and a second trainer started meanwhile held the lease: the first one's
guard let every commit through while pending, so its checkpoints went into the folder the
second one holds, and its retention removed that one's. Now the guard tries to take the
lease where Drive answered since the last try: another's live claim stops the push there
(its own copies removed, nothing removed of the folder's), none makes this trainer the
holder. While Drive still fails, a push pays one more try at most, not one per commit.
Events are ordered by the lease's own log line (the try that failed) and the emulator's
faults, never by time; the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import logging

import pytest

from _lease_pairs import on_drive, request_kinds, save_pair

DEST = "drive:runs/exp"
STILL = "the run's lease is still not taken"


class _WhenStillNotTaken(logging.Handler):
    """Runs ``then`` once, at the lease's first "still not taken" line (its try at the push's
    start failed): Drive is back from that moment."""

    def __init__(self, then) -> None:
        super().__init__(logging.DEBUG)
        self.then, self.done = then, False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.done and record.getMessage().startswith(STILL):
            self.done = True
            self.then()


@pytest.fixture
def lease_log():
    """The ``trainer.lease`` logger at DEBUG (its "still not taken" line is heard), and a
    way to hang a handler on it; both undone after the test."""
    log = logging.getLogger("trainer.lease")
    level, added = log.level, []
    log.setLevel(logging.DEBUG)

    def add(handler: logging.Handler) -> None:
        log.addHandler(handler)
        added.append(handler)
    yield add
    for h in added:
        log.removeHandler(h)
    log.setLevel(level)


def _pending(emulator, tmp_path, *settings: str):
    """A trainer started while Drive refused every upload (its claim failed): its lease is
    pending. Drive still refuses uploads when this returns."""
    from trainer.config import load_config
    from trainer.lease import held_folder
    from trainer.stopping import StopFlag

    cfg = load_config(None, [f"drive.logs={DEST}", f"train.out_dir={tmp_path / 'first'}",
                             "drive.lease_minutes=0.05", *settings])
    stop = StopFlag(60.0)
    emulator.faults.inject(method="POST", path="/upload/", status=503, times=None)
    folder = held_folder(cfg, stop)
    assert folder.lease is not None and folder.lease.pending
    return folder, stop


def _claims(emulator) -> list[str]:
    return sorted(f["title"] for f in emulator.files() if not f["labels"]["trashed"]
                  and f["title"].startswith("trainer-lease-"))


def test_drive_back_mid_push_and_another_holding_stops_the_push_at_its_first_commit(
        drive_env, emulator, tmp_path, fast_retries, lease_log):
    from trainer.drive import DriveFolder
    from trainer.errors import LeaseLostError
    from trainer.lease import RunLease, release_all

    save_pair(tmp_path / "first", "epoch_001.pt", 1)
    first, stop = _pending(emulator, tmp_path)
    second = RunLease(DriveFolder(DEST, str(tmp_path / "second")), period_s=3.0)

    def back() -> None:   # the push's check gave up; Drive is back, a second trainer holds
        emulator.faults.clear()
        second.acquire()
        second.start()
    lease_log(_WhenStillNotTaken(back))
    try:
        with pytest.raises(LeaseLostError, match="holds the run's lease"):
            first.push()
        assert stop.is_set()
        assert on_drive(emulator) == {}   # its copy sent before the guard: removed
        assert _claims(emulator) == [second.name]
        assert not second.lost
    finally:
        second.release()
        release_all()


def test_drive_back_mid_push_removes_nothing_of_the_folder_another_holds(
        drive_env, emulator, tmp_path, fast_retries, lease_log):
    """The push's first commit a removal: retention (keep_last 1) of the checkpoints Drive
    holds already (the second trainer resumed from them). Not one is removed."""
    from trainer.drive import DriveFolder
    from trainer.errors import LeaseLostError
    from trainer.lease import RunLease, release_all

    for epoch in (1, 2, 3):
        save_pair(tmp_path / "first", f"epoch_00{epoch}.pt", epoch)
    DriveFolder(DEST, str(tmp_path / "first")).push()   # (before the outage, no lease)
    before = on_drive(emulator)
    assert len(before) == 6
    first, stop = _pending(emulator, tmp_path, "drive.keep_last=1", "drive.keep_best=0")
    second = RunLease(DriveFolder(DEST, str(tmp_path / "second")), period_s=3.0)

    def back() -> None:
        emulator.faults.clear()
        second.acquire()
        second.start()
    lease_log(_WhenStillNotTaken(back))
    try:
        with pytest.raises(LeaseLostError):
            first.push()
        assert stop.is_set()
        assert on_drive(emulator) == before
    finally:
        second.release()
        release_all()


def test_drive_back_mid_push_with_no_one_holding_makes_this_trainer_the_holder(
        drive_env, emulator, tmp_path, fast_retries, lease_log):
    from trainer.drive import DriveFolder
    from trainer.errors import LeaseHeldError
    from trainer.lease import RunLease, release_all

    ours = save_pair(tmp_path / "first", "epoch_001.pt", 1)
    first, stop = _pending(emulator, tmp_path)
    lease_log(_WhenStillNotTaken(emulator.faults.clear))
    try:
        first.push()
        assert first.lease is not None and not first.lease.pending
        assert {n: m for n, ms in on_drive(emulator).items() for m in ms} == ours
        assert _claims(emulator) == [first.lease.name]
        second = RunLease(DriveFolder(DEST, str(tmp_path / "second")), period_s=3.0)
        with pytest.raises(LeaseHeldError):
            second.acquire()   # the first renews it: refused
        assert not stop.is_set()
    finally:
        release_all()


def test_a_push_while_drive_still_fails_tries_for_the_lease_twice_at_most(
        drive_env, emulator, tmp_path, fast_retries):
    """Uploads refused for the whole push (8 files, 4 at once: the trainer's push): the push's start tries for
    the lease, and its commits once more at most (Drive answered the push's listing since),
    not each of its threads before each upload. Counted as the listings of the run's folder
    a try makes (two), against the same push made with no lease."""
    from drivestage.errors import DriveStageError
    from trainer.drive import DriveFolder
    from trainer.lease import release_all

    for epoch in range(1, 9):
        save_pair(tmp_path / "first", f"epoch_00{epoch}.pt", epoch)
    first, stop = _pending(emulator, tmp_path)
    try:
        start = len(emulator.requests)
        with pytest.raises(DriveStageError):
            first.push()
        leased = request_kinds(emulator.requests[start:])
        start = len(emulator.requests)
        with pytest.raises(DriveStageError):
            DriveFolder(DEST, str(tmp_path / "first")).push()
        bare = request_kinds(emulator.requests[start:])
        assert first.lease is not None and first.lease.pending
        assert not stop.is_set()
    finally:
        release_all()
    assert leased["list"] - bare["list"] <= 2 * 2, (leased, bare)
