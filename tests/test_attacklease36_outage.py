"""attacklease36: Drive down while a trainer starts (its lease claim could not be written
after drivestage's retries), then up again. The trainer warned and trained without a lease
for the whole run: a second trainer of the run started elsewhere once Drive was back found
no claim, held the lease, and both pushed into drive.logs, replacing each other's
checkpoints (the defect the lease was made for). Now the lease not taken at the start is
taken at the trainer's first push that reaches Drive: a claim there already (the second
trainer's) makes this one push nothing and stop, as a take-over does; none, it holds the
lease and a later second trainer is refused. The real PyDrive2 stack against the emulator,
the lease as the trainer takes it (``held_folder``)."""
from __future__ import annotations

import pytest

from _lease_pairs import save_pair

DEST = "drive:runs/exp"


def _started_during_an_outage(emulator, tmp_path, fast_retries):
    from trainer.config import load_config
    from trainer.lease import held_folder
    from trainer.stopping import StopFlag

    cfg = load_config(None, [f"drive.logs={DEST}", f"train.out_dir={tmp_path / 'first'}",
                             "drive.lease_minutes=0.05"])
    stop = StopFlag(60.0)
    emulator.faults.inject(method="POST", path="/upload/", status=503, times=None)
    folder = held_folder(cfg, stop)   # (warned: could not take the run's lease)
    emulator.faults.clear()          # Drive is back
    return folder, stop


def test_a_second_trainer_after_the_outage_stops_the_first_from_pushing(drive_env, emulator,
                                                                       tmp_path, fast_retries):
    from trainer.drive import DriveFolder
    from trainer.errors import LeaseLostError
    from trainer.lease import RunLease, release_all

    save_pair(tmp_path / "first", "epoch_001.pt", 1)   # (torch's import: before the lease's clock)
    first, stop = _started_during_an_outage(emulator, tmp_path, fast_retries)
    second = RunLease(DriveFolder(DEST, str(tmp_path / "second")), period_s=3.0)
    second.acquire()   # no claim on Drive: it holds the lease
    second.start()   # (renewed: under -n 2 the import alone outlasted its 9 s, fence37)
    try:
        with pytest.raises(LeaseLostError):
            first.push()
        assert stop.is_set()
        names = {f["title"] for f in emulator.files() if not f["labels"]["trashed"]}
        assert "epoch_001.pt" not in names   # nothing of the first's went there
    finally:
        second.release()
        release_all()


def test_the_first_trainer_takes_the_lease_at_its_first_push(drive_env, emulator, tmp_path,
                                                             fast_retries):
    from trainer.drive import DriveFolder
    from trainer.errors import LeaseHeldError
    from trainer.lease import RunLease, release_all

    first, stop = _started_during_an_outage(emulator, tmp_path, fast_retries)
    try:
        save_pair(tmp_path / "first", "epoch_001.pt", 1)
        first.push()
        second = RunLease(DriveFolder(DEST, str(tmp_path / "second")), period_s=3.0)
        with pytest.raises(LeaseHeldError):
            second.acquire()   # the first renews it: refused (watched, seen renewed)
        assert not stop.is_set()
    finally:
        release_all()
    assert not [f for f in emulator.files() if f["title"].startswith("trainer-lease-")
                and not f["labels"]["trashed"]]


def test_a_trainer_started_in_an_outage_stops_at_its_first_push_where_another_holds(
        drive_env, emulator, store, tiny_config, tmp_path, fast_retries):
    """Through ``trainer train``: Drive answers 503 to every upload while it starts (its claim
    fails); the moment it warns, Drive is back and a second trainer takes the lease (in the
    warning's handler: nothing races). Its first push finds that one's claim: it pushes
    nothing, saves here, exit 1."""
    import logging

    from click.testing import CliRunner

    from trainer.cli import cli
    from trainer.drive import DriveFolder
    from trainer.lease import RunLease

    second = RunLease(DriveFolder(DEST, str(tmp_path / "second")), period_s=3.0)

    class Back(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "could not take the run's lease" in record.getMessage():
                emulator.faults.clear()
                second.acquire()
                second.start()

    back = Back(logging.WARNING)
    logging.getLogger("trainer.lease").addHandler(back)
    emulator.faults.inject(method="POST", path="/upload/", status=503, times=None)
    # The second renews every 3 s and this trainer judges its claim by its own period: at
    # 0.01 minutes (stale after 1.8 s) its first push, later than that on a loaded machine
    # (the model built meanwhile), found the second's claim stale and took the lease over.
    # At the second's period (stale after 9 s) nothing but the lease decides.
    path = tiny_config(**{"drive.logs": DEST, "train.epochs": 2, "train.freeze_epochs": 0,
                          "drive.lease_minutes": 0.05})
    try:
        r = CliRunner().invoke(cli, ["train", "-c", path])
    finally:
        logging.getLogger("trainer.lease").removeHandler(back)
        second.release()
    assert second.generation == 1
    assert r.exit_code == 1, (r.output, r.exception)
    assert "it is taken at the first push that reaches Drive" in r.stderr
    assert f"holds the run's lease on {DEST}" in r.stderr
    names = {f["title"] for f in emulator.files() if not f["labels"]["trashed"]}
    assert not [n for n in names if n.endswith(".pt")], names   # nothing of its went there
    last = r.stderr.strip().splitlines()[-1]
    # (its first push: the run's record before the first step, or the first epoch's save,
    # as the machine's load has it; either way nothing of it on Drive; nothing was taken
    # over: fence37 words it so)
    assert last.startswith("Error: stopped by another trainer holding the run's lease "), last
    assert last.endswith("before the first step: nothing was trained, nothing is saved") or (
        " is saved in " in last and f"holds the run's lease on {DEST}" in last), last
