"""attacktr29: what train28 left unbounded on a run folder whose disk stops answering (a
``bindfs`` mount stopped with SIGSTOP: every call into it waits; the fixture is train28's).

- ``keep_aside`` (the files ``--resume auto`` passed over, moved aside at the run's first
  save) ran in the training thread before the stop's own save: a SIGTERM on a hung disk
  waited there for good, past ``train.grace_seconds``, and Drive got nothing.
- ``_newest_text`` (the second Ctrl-C's line, "stopped at once") looked at the run folder in
  the training thread: a second Ctrl-C on a hung disk did not stop at all.
- TensorBoard's per-iteration ``add_scalar``: once its queue was full behind a write that
  does not end, the next one waited for good, mid-epoch, before any flush found the disk stuck.

The real writer, save policy and TensorBoard; the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import logging
import os
import re
import signal
import tempfile
import threading
import time

import pytest

from test_keeplocal25 import _save_epochs
from test_train28_hung_disk import _policy, _sigterm_stop, hung  # noqa: F401  (a fixture)
from trainer.state import Position

SPEC = "drive:Models/tr29/hung"


@pytest.fixture(autouse=True)
def _own_tmp(tmp_path, monkeypatch):
    """A stop's copy elsewhere goes into the test's own folder, not this machine's /tmp (where
    it stays for good, on purpose: the only copy)."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))


def _ended(target, within: float) -> tuple[bool, float]:
    """``target()`` on a thread: whether it ended within ``within`` seconds, and when."""
    t = threading.Thread(target=target, daemon=True)
    began = time.monotonic()
    t.start()
    t.join(within)
    return not t.is_alive(), time.monotonic() - began


def test_a_stop_with_a_file_to_move_aside_still_reaches_drive_within_its_grace(
        hung, emulator, drive_env, local_state, tiny_config, caplog):
    """``--resume auto`` passed over a file; the first save of the run is a SIGTERM's, and the
    disk does not answer. Before, the stop waited in ``keep_aside`` for good (here until the
    test let the disk go on, 20 s past a grace of 3 s); now the move is said and left, and the
    save goes to Drive from elsewhere within the grace."""
    from trainer import checkpoint as ckpt
    from trainer.drive import DriveFolder, newest_of_current_run

    logs = hung.path / "logs"
    os.makedirs(logs)
    # A grace of 6 s: in 3 s a loaded machine (-n 2 beside two busy loops) once had not sent
    # the copy from elsewhere yet ("nor sent to ... (not within train.grace_seconds (3 s))");
    # the stop ends once it is verified, so a longer grace costs nothing where it is quick.
    run, writer, saver = _policy(tiny_config, logs, DriveFolder(SPEC, str(logs)), grace=6.0)
    saver.drive_spec = SPEC
    _save_epochs(run, saver, 1)
    writer.wait(saver._epoch_job)
    bad = str(logs / "epoch_001.pt")   # as if --resume auto had found no state to train on in it
    saver.passed_over = [(bad, ckpt.read_sidecar(bad).md5.lower())]
    hung.hang()
    out: list = []

    stop = _sigterm_stop(run, saver, out)

    try:
        with caplog.at_level(logging.WARNING, logger="trainer"):
            ended, took = _ended(stop, 20)
    finally:
        hung.answer()
        writer.close()
    assert ended and took < 6.0 + 2.0, f"the stop took {took:.1f} s (grace 6 s)"
    said = str(out[0])
    assert re.fullmatch(
        r"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003\.pt could not be "
        rf"written \(its write in {re.escape(str(logs))} has not ended after \d\.\d s: the "
        r"disk does not answer \(a hung network or FUSE mount\?\)\); it is sent to "
        r"drive:Models/tr29/hung from a temporary folder instead and verified there \(\d\.\d "
        r"s after the signal; the temporary copy is removed\); resume with --resume auto",
        said), said
    warned = [r.getMessage() for r in caplog.records if "moving" in r.getMessage()]
    assert warned == [
        f"moving {bad} aside (passed over at the start as no state to train on) has not ended "
        f"for {warned[0].split(' for ')[1].split(' s:')[0]} s: the disk does not answer (a hung "
        f"network or FUSE mount?); training goes on without it"], warned
    newest = newest_of_current_run(DriveFolder(SPEC, str(hung.path.parent / "o")).checkpoints())
    assert newest is not None and newest.name == "autosave_00000003.pt"


def test_a_second_ctrl_c_on_a_disk_that_does_not_answer_stops_at_once(
        hung, tiny_config, caplog):
    """A first Ctrl-C asked for the stop, a second one stops at once: its line said what the
    run folder holds by looking there, in the training thread; on a hung disk it waited for
    good (the second Ctrl-C did not stop). Now the look is bounded, and the line says the
    folder does not answer."""
    logs = hung.path / "logs"
    run, writer, saver = _policy(tiny_config, logs)
    _save_epochs(run, saver, 1)
    writer.wait(saver._epoch_job)
    run.stop.request(signal.SIGINT)
    hung.hang()
    try:
        with caplog.at_level(logging.WARNING, logger="trainer"):
            ended, took = _ended(lambda: saver.on_interrupt(run, KeyboardInterrupt()), 20)
    finally:
        hung.answer()
        writer.close()
    assert ended and took < 5.0, f"the second Ctrl-C took {took:.1f} s"
    said = [r.getMessage() for r in caplog.records if "second Ctrl-C" in r.getMessage()]
    assert said == [
        f"a second Ctrl-C: stopped at once, without waiting for the uploads; what is saved in "
        f"{logs} is not known: it did not answer within 2 s (a hung network or FUSE mount?); "
        f"once it does, run the same command again to train on from its newest checkpoint"], said


def test_tensorboard_scalars_mid_epoch_on_a_disk_that_does_not_answer_hold_no_iteration(
        hung, caplog):
    """TensorBoard's queue (10 events) fills behind a write that does not end; the next
    ``add_scalar`` waited for good, mid-epoch: the training thread stopped with no word, and a
    SIGTERM was never seen. Now the scalars are bounded too, and TensorBoard is dropped."""
    from types import SimpleNamespace

    from trainer.callbacks import TensorBoardLogger

    out = hung.path / "logs"
    os.makedirs(out)
    tb = TensorBoardLogger(str(out), every=1, within=1.0)
    run = SimpleNamespace(state=SimpleNamespace(pos=Position(0, 0, 0)))
    tb.on_fit_start(run)
    assert tb.writer is not None
    writer = tb.writer
    hung.hang()

    def iterations() -> None:
        for i in range(1, 5000):   # (its file's buffer fills too)
            tb.on_train_batch_end(run, Position(0, i, i), {"loss": 1.0 / i, "lr": 0.01})

    try:
        with caplog.at_level(logging.WARNING, logger="trainer"):
            ended, took = _ended(iterations, 30)
    finally:
        hung.answer()
        writer.close()
        tb.on_fit_end(run)   # (as fit ends it: the thread-exception hook put back)
    assert ended, f"the iterations waited on TensorBoard ({took:.1f} s)"
    assert tb.writer is None
    said = [r.getMessage() for r in caplog.records if "has not ended" in r.getMessage()]
    assert said == [f"writing {out / 'tensorboard'} has not ended for 1 s: the disk does not "
                    f"answer (a hung network or FUSE mount?); training goes on without it"], said


def test_a_sigterm_while_results_csv_waits_on_the_disk_is_not_kept_waiting(hung, caplog):
    """The epoch's end waits up to 30 s for results.csv on a disk that does not answer (then
    the curves, then TensorBoard, 30 s each), and only then does the save policy, last of the
    callbacks, see a SIGTERM: past a grace of 25 s, the stop's save never began before the
    SIGKILL. Now a stop cuts that wait short (1 s)."""
    from types import SimpleNamespace

    from trainer.callbacks import CSVLogger
    from trainer.stopping import StopFlag

    logs = hung.path / "logs"
    os.makedirs(logs)
    csv = CSVLogger(str(logs))          # the default bound: 30 s
    run = SimpleNamespace(state=SimpleNamespace(history=[{"epoch": 1, "train_loss": 0.5}]),
                          stop=StopFlag(25.0))
    hung.hang()
    writing = threading.Event()

    def epoch_end() -> None:
        writing.set()
        csv.on_fit_epoch_end(run, None, {})

    t = threading.Thread(target=epoch_end, daemon=True)
    try:
        with caplog.at_level(logging.WARNING, logger="trainer"):
            t.start()
            writing.wait(5)
            # (the write's own thread is under way, waiting on the disk)
            _until_thread("trainer-small-write")
            run.stop.request(signal.SIGTERM)
            began = time.monotonic()
            t.join(30)
            took = time.monotonic() - began
    finally:
        hung.answer()
    assert not t.is_alive() and took < 5.0, f"the epoch's end kept the stop {took:.1f} s"
    said = [r.getMessage() for r in caplog.records if "results.csv" in r.getMessage()]
    assert len(said) == 1 and re.fullmatch(
        rf"writing {re.escape(str(logs))}/results\.csv has not ended for \d+ s: the disk does "
        r"not answer \(a hung network or FUSE mount\?\); training goes on without it",
        said[0]), said


def _until_thread(name: str) -> None:
    from test_writer import _until

    _until(lambda: any(t.name == name and t.is_alive() for t in threading.enumerate()),
           f"no thread {name}")
