"""train28: a run folder on a disk that stops answering (a network or FUSE mount that hangs:
modelled by a ``bindfs`` mount whose process is stopped with SIGSTOP; every call into it
waits). Before, a write there waited for good: the saves after it waited behind it
(``WriteOrder``, the writer's slot) with no word, and a SIGTERM's save, written in the
training thread, waited too, past ``train.grace_seconds``, until the SIGKILL. Now a write
that has not ended after ``stuck_s`` is said (the folder and the files), and a stop never
waits past its grace for the disk.

The real writer and save policy; the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from _tmpfs import small_disk  # noqa: F401  (a fixture)

from test_keeplocal25 import _save_epochs
from test_trainer22_hostile import _config, _small_run
from test_writer import _until
from trainer.errors import TrainingInterrupted
from trainer.state import Position
from trainer.stuck import current_frames   # (sys._current_frames() can deadlock: see there)

SPEC = "drive:Models/t28/hung"


@pytest.fixture(autouse=True)
def _temporary_folders_here(tmp_path, monkeypatch):
    """A stop's copy written elsewhere goes under this test's folder (``tempfile.tempdir``,
    as TMPDIR does), not the machine's /tmp: every run left two there."""
    here = tmp_path / "tmp"
    here.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(here))


@pytest.fixture
def hung(tmp_path):
    """A bindfs mount of ``tmp_path/disk`` run in the foreground; ``hang()`` stops it (every
    call into the mount waits), the teardown lets it go on and unmounts it."""
    if shutil.which("bindfs") is None or os.geteuid() != 0:
        pytest.skip("needs bindfs and root (.ci/run installs bindfs)")
    src, mnt = tmp_path / "disk", tmp_path / "mnt"
    src.mkdir()
    mnt.mkdir()
    fs = subprocess.Popen(["bindfs", "-f", str(src), str(mnt)], stderr=subprocess.PIPE)
    _until(lambda: os.path.ismount(mnt) or fs.poll() is not None, "bindfs never mounted")
    if fs.poll() is not None:
        pytest.skip(f"bindfs cannot mount here: {fs.stderr.read().decode().strip()}")

    class Disk:
        path = mnt

        @staticmethod
        def hang() -> None:
            os.kill(fs.pid, signal.SIGSTOP)

        @staticmethod
        def answer() -> None:
            os.kill(fs.pid, signal.SIGCONT)

    yield Disk
    os.kill(fs.pid, signal.SIGCONT)
    if subprocess.run(["umount", str(mnt)], check=False).returncode != 0:
        subprocess.run(["umount", "-l", str(mnt)], check=False)   # (a file still open there)
    try:
        fs.wait(30)
    except subprocess.TimeoutExpired:
        fs.terminate()
        fs.wait(30)
    fs.stderr.close()


def _policy(tiny_config, logs, drive=None, grace=60.0):
    from trainer.saving import Checkpointer
    from trainer.stopping import StopFlag
    from trainer.writer import BackgroundWriter

    run = _small_run(tiny_config, logs)
    run.cfg = _config(tiny_config, logs)
    run.stop = StopFlag(grace)
    writer = BackgroundWriter(str(logs), drive, stuck_s=0.5)
    saver = Checkpointer(run.cfg, run.info, writer, run.stop)
    return run, writer, saver


def stuck_warning(hung, tiny_config, caplog) -> list[str]:
    """Epoch 1's write hangs, epoch 2 waits for the slot, epoch 3 for it: what is said."""
    logs = hung.path / "logs"
    run, writer, saver = _policy(tiny_config, logs)
    hung.hang()
    waiting = threading.Thread(target=_save_epochs, args=(run, saver, 1, 2, 3), daemon=True)
    try:
        with caplog.at_level(logging.WARNING, logger="trainer"):
            waiting.start()
            _until(lambda: any("has not ended" in r.getMessage() for r in caplog.records),
                   "nothing said of the write that does not end", timeout=15)
    finally:
        hung.answer()
        waiting.join(30)
        writer.close()
    assert (logs / "epoch_003.pt").exists()      # all written once it answers
    return [r.getMessage() for r in caplog.records if "has not ended" in r.getMessage()]


def test_a_write_that_does_not_end_is_said_naming_the_folder_and_the_files(
        hung, tiny_config, caplog):
    said = stuck_warning(hung, tiny_config, caplog)
    logs = hung.path / "logs"
    assert re.fullmatch(rf"writing last\.pt, epoch_001\.pt in {re.escape(str(logs))} "
                        r"has not ended for \d+ s: the disk does not answer \(a hung network or "
                        r"FUSE mount\?\); the saves after it wait for it", said[0]), said


def _listing(writer) -> bool:
    """The writer's uploader waits in a look at the run folder (autosaves.newest)."""
    import sys
    import traceback

    uploader = writer._uploader.thread.ident
    frame = current_frames().get(uploader)
    return frame is not None and any(f.name == "newest" for f in traceback.extract_stack(frame))


def _sigterm_stop(run, saver, out: list):
    """The stop a SIGTERM at epoch 2, iteration 3 makes (the loop sets the position after
    every step), to run on a thread: what it raises (its line) into ``out``."""
    def stop() -> None:
        run.stop.request(signal.SIGTERM)
        run.state.pos = Position(1, 3, 1)
        try:
            saver._save_and_stop(run, Position(1, 3, 1))
        except TrainingInterrupted as exc:
            out.append(exc)
    return stop


def test_a_stop_never_waits_past_its_grace_for_a_disk_that_does_not_answer(
        hung, emulator, drive_env, local_state, tiny_config):
    from trainer.drive import DriveFolder

    logs = hung.path / "logs"
    os.makedirs(logs)
    run, writer, saver = _policy(tiny_config, logs, DriveFolder(SPEC, str(logs)), grace=3.0)
    saver.drive_spec = SPEC
    _save_epochs(run, saver, 1)
    writer.wait(saver._epoch_job)
    assert writer.verified("epoch_001.pt")
    hung.hang()
    writer.push_soon()       # a push begins on the hung disk: its look at the folder waits
    _until(lambda: _listing(writer), "the push never looked at the folder")
    out: list = []

    stop = _sigterm_stop(run, saver, out)

    began = time.monotonic()
    stopping = threading.Thread(target=stop, daemon=True)
    stopping.start()
    stopping.join(20)
    took = time.monotonic() - began
    hung.answer()
    stopping.join(30)
    writer.close()
    assert out and took < 3.0 + 2.0, f"the stop took {took:.1f} s (grace 3 s)"
    said = str(out[0])
    assert re.fullmatch(
        r"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003\.pt could not be "
        rf"written \(its write in {re.escape(str(logs))} has not ended after \d\.\d s: the "
        r"disk does not answer \(a hung network or FUSE mount\?\)\); it is sent to "
        r"drive:Models/t28/hung from a temporary folder instead and verified there \(\d\.\d s "
        r"after the signal; the temporary copy is removed\); resume with --resume auto",
        said), said
    # On Drive: the stop's save and its sidecar, verified (what --resume auto takes).
    from trainer.drive import DriveFolder, newest_of_current_run

    found = DriveFolder(SPEC, str(hung.path.parent / "elsewhere")).checkpoints()
    newest = newest_of_current_run(found)
    assert newest is not None and newest.name == "autosave_00000003.pt", [c.name for c in found]
    assert newest.sidecar.iteration == 3


def test_a_stop_on_a_full_run_folder_sends_its_save_to_drive_from_elsewhere(
        small_disk, emulator, drive_env, local_state, tiny_config):
    """The run folder's disk is full when SIGTERM comes: the stop's save cannot be written
    there. Before, the stop said so and Drive kept epoch 1 (iteration 2); now the save is
    written elsewhere and verified on Drive, and --resume auto takes it. Its temporary folder
    is removed then (stop29: it stayed, a checkpoint left in /tmp at every such stop)."""
    from trainer.drive import DriveFolder, newest_of_current_run

    disk = small_disk(512 * 1024)
    logs = disk / "logs"
    os.makedirs(logs)
    run, writer, saver = _policy(tiny_config, logs, DriveFolder(SPEC, str(logs)), grace=20.0)
    saver.drive_spec = SPEC
    _save_epochs(run, saver, 1)
    writer.wait(saver._epoch_job)
    assert writer.verified("epoch_001.pt")
    with open(disk / "filler", "wb", buffering=0) as fh:   # the rest of the disk
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    run.stop.request(signal.SIGTERM)
    run.state.pos = Position(1, 3, 1)
    try:
        with pytest.raises(TrainingInterrupted) as stopped:
            saver._save_and_stop(run, Position(1, 3, 1))
    finally:
        writer.close()
    said = str(stopped.value)
    assert re.fullmatch(
        r"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003\.pt could not be "
        r"written \(.*No space left on device.*\); it is sent to drive:Models/t28/hung from a "
        r"temporary folder instead and verified there \(\d+\.\d s after the signal; the "
        r"temporary copy is removed\); resume with --resume auto", said), said
    assert stopped.value.exit_code == 143
    assert [n for n in os.listdir(tempfile.tempdir) if n.startswith("trainer-stop-")] == []
    newest = newest_of_current_run(DriveFolder(SPEC, str(disk.parent / "other")).checkpoints())
    assert newest is not None and newest.name == "autosave_00000003.pt"


def test_results_csv_on_a_disk_that_does_not_answer_holds_no_epoch_end(hung, caplog):
    """results.csv is written at each epoch's end, before its checkpoint: on a hung disk that
    write held the training thread for good (no word, no SIGTERM seen). Now it is waited for a
    while, said, and training goes on (its checkpoint then goes as above)."""
    from types import SimpleNamespace

    from trainer.callbacks import CSVLogger

    logs = hung.path / "logs"
    os.makedirs(logs)
    csv = CSVLogger(str(logs), within=0.5)
    run = SimpleNamespace(state=SimpleNamespace(history=[{"epoch": 1, "train_loss": 0.5}]))
    csv.on_fit_epoch_end(run, None, {})
    assert (logs / "results.csv").exists()
    hung.hang()
    ended = threading.Event()

    def epoch_end() -> None:
        csv.on_fit_epoch_end(run, None, {})
        ended.set()

    with caplog.at_level(logging.WARNING, logger="trainer"):
        threading.Thread(target=epoch_end, daemon=True).start()
        returned = ended.wait(10)
        hung.answer()
    assert returned, "the epoch's end waited on results.csv"
    said = [r.getMessage() for r in caplog.records if "results.csv" in r.getMessage()]
    assert said == [f"writing {logs}/results.csv has not ended for 0 s: the disk does not "
                    "answer (a hung network or FUSE mount?); training goes on without it"], said


def test_tensorboard_on_a_disk_that_does_not_answer_holds_no_epoch_end(hung, caplog):
    """TensorBoard's flush at each epoch's end (and its close at a stop) waited for good on a
    hung disk, in the training thread. Now bounded: said, TensorBoard dropped, training goes on."""
    pytest.importorskip("torch.utils.tensorboard")
    from types import SimpleNamespace

    from trainer.callbacks import TensorBoardLogger
    from trainer.state import Position as Pos

    logs = hung.path / "logs"
    os.makedirs(logs)
    tb = TensorBoardLogger(str(logs), within=0.5)
    tb.on_fit_start(SimpleNamespace(state=SimpleNamespace(pos=Pos(0, 0, 0))))
    assert tb.writer is not None
    dropped = tb.writer
    hung.hang()
    ended = threading.Event()

    def epoch_end() -> None:
        for epoch in (1, 2):
            tb.on_fit_epoch_end(None, None, {"epoch": epoch, "train_loss": 0.5})
        tb.on_interrupt(None, KeyboardInterrupt())
        ended.set()

    with caplog.at_level(logging.WARNING, logger="trainer"):
        threading.Thread(target=epoch_end, daemon=True).start()
        returned = ended.wait(10)
        hung.answer()
    dropped.close()          # (its event file, open in the mount, once the disk answers)
    assert returned, "the epoch's end waited on TensorBoard"
    assert tb.writer is None
    said = [r.getMessage() for r in caplog.records if "tensorboard" in r.getMessage()]
    assert said and "has not ended for 0 s: the disk does not answer" in said[0], said
