"""The background writer: training never waits for Drive, the queue is bounded (a newer
autosave replaces a waiting one, an epoch's save is never dropped), an outage is said once."""
from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest
import torch

from trainer.drive import DriveFolder
from trainer.state import Position
from trainer.writer import BackgroundWriter, SaveJob

FOLDER = "Models/w/logs"


@pytest.fixture
def folder(emulator, drive_env, local_state, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    return DriveFolder(f"drive:{FOLDER}", str(out))


def _job(iteration, *, droppable=True, name=None, size=200_000):
    state = {"format_version": 2, "model": {"w": torch.full((size // 4,), float(iteration))},
             "optimizer": {}, "epoch": 0, "iteration": iteration, "epoch_iteration": iteration,
             "config": {}, "run": "r"}
    return SaveJob(state, [name or f"autosave_{iteration:08d}.pt"], Position(0, iteration, iteration),
                   droppable=droppable)


def _remote(emu):
    parent = emu.find(FOLDER)
    return {f["title"]: f.get("md5Checksum") for f in emu.files()
            if parent and not f["labels"]["trashed"] and any(p["id"] == parent["id"] for p in f["parents"])}


def _until(predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _uploads_started(emu):
    return any(r.path.startswith("/upload/") for r in emu.requests)


def test_newer_autosaves_replace_the_waiting_one_and_submit_never_waits(emulator, folder):
    out = folder.local_dir
    # A slow link for the first push (the one still under way as the others are submitted);
    # the pushes after it need not wait: 0.3 s for each of them doubled the test's time.
    emulator.faults.latency(0.3, path=r"^/upload/", times=1)
    writer = BackgroundWriter(out, folder)
    first = _job(1)
    writer.submit(first)
    _until(lambda: _uploads_started(emulator), "the first push never started")
    waiting = [_job(i) for i in (2, 3, 4)]
    for job in waiting:
        writer.submit(job)                                    # returns at once: nothing to wait for
    assert not first.done.is_set()                            # its upload is still under way
    # (trainer22: the upload no longer holds the writing slot; a waiting autosave is replaced
    # by a newer one only while the one before it is being written, so which of 2 and 3 are
    # written depends on the writing thread's pace, never on the upload.)
    assert not waiting[2].dropped
    assert writer.close() is True
    assert first.written and waiting[2].written
    assert all(j.written != j.dropped for j in waiting)
    assert writer.dropped == sum(j.dropped for j in waiting)
    written = [j.name for j in (first, *waiting) if j.written]
    local = sorted(n for n in os.listdir(out) if n.endswith(".pt"))
    assert local == written[-2:]                              # the newest two autosaves stay
    remote = _remote(emulator)
    assert set(local) <= set(remote)
    for name in local:
        assert remote[name] == hashlib.md5(open(os.path.join(out, name), "rb").read()).hexdigest()
    assert writer.safe.name == "autosave_00000004.pt" and writer.safe.position.iteration == 4


def test_a_writer_without_drive_rests_between_checkpoints(tmp_path):
    """No drive.logs: once a checkpoint is written the thread waits for the next job. (It used
    to count a push that nothing would ever do and spin, taking a core from training.)"""
    writer = BackgroundWriter(str(tmp_path), None)
    for job in (_job(1), _job(2, droppable=False, name="last.pt")):
        writer.submit(job)
        assert job.done.wait(30) and job.written
    (thread,) = [t for t in threading.enumerate() if t.name == "trainer-writer"]
    clock = time.pthread_getcpuclockid(thread.ident)
    before = time.clock_gettime(clock)
    time.sleep(0.5)                                   # the window its CPU time is measured over
    assert time.clock_gettime(clock) - before < 0.05
    assert writer.close() is True


def test_only_the_newest_two_autosaves_stay_in_the_run_folder(tmp_path):
    writer = BackgroundWriter(str(tmp_path), None)
    for i in range(1, 6):
        job = _job(i)
        writer.submit(job)
        job.done.wait(30)
    writer.close()
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".pt")) == [
        "autosave_00000004.pt", "autosave_00000005.pt"]


def test_an_epoch_save_is_never_dropped_and_at_most_one_job_waits(emulator, folder):
    emulator.faults.latency(0.3, path=r"^/upload/", times=1)  # the first push takes a while
    writer = BackgroundWriter(folder.local_dir, folder)
    first = _job(1, droppable=False, name="epoch_001.pt")
    writer.submit(first)
    _until(lambda: _uploads_started(emulator), "the first push never started")
    second = _job(2, droppable=False, name="epoch_002.pt")
    writer.submit(second)                                     # the slot was free: no wait
    autosave = _job(3)
    writer.submit(autosave)           # dropped if the epoch save still waits to be written
    assert autosave.dropped or not autosave.done.is_set() or autosave.written
    third = _job(4, droppable=False, name="epoch_003.pt")
    submitted = threading.Event()
    t = threading.Thread(target=lambda: (writer.submit(third), submitted.set()))
    t.start()
    # The third epoch save may only enter the slot once the second left it.
    _until(submitted.is_set, "the third epoch save never got the slot")
    assert second.written or writer._current is second
    t.join()
    assert writer.close() is True
    assert first.written and second.written and third.written and not first.dropped
    assert {"epoch_001.pt", "epoch_002.pt", "epoch_003.pt"} <= set(_remote(emulator))


def test_drive_unreachable_for_two_intervals_is_said_loudly_once(emulator, folder, caplog):
    emulator.faults.inject(status=401, reason="authError", times=None)    # an expired login
    writer = BackgroundWriter(folder.local_dir, folder, interval_s=0.01, retry_s=0.01)
    with caplog.at_level("DEBUG", logger="trainer"):
        writer.submit(_job(1))
        _until(lambda: caplog.text.count("push to Drive failed") >= 4, "the writer stopped retrying")
        loud = [r for r in caplog.records if "Drive has not accepted a checkpoint for" in r.getMessage()]
        assert len(loud) == 1 and loud[0].levelname == "WARNING"
        text = loud[0].getMessage()
        assert "re-authenticate (in Colab run auth.authenticate_user() again)" in text
        assert "the newest copy safe on Drive is none" in text
        emulator.faults.clear()
        _until(lambda: writer.safe is not None, "the writer never pushed again")
        assert writer.close() is True
    assert "Drive accepts checkpoints again (Drive: " in caplog.text
    assert "autosave_00000001.pt" in _remote(emulator)


def test_the_checkpoint_a_run_resumed_from_is_protected_until_a_newer_one_is_on_drive(
        emulator, drive_env, local_state, tmp_path):
    """The autosave a run resumed from is never pruned while the run depends on it; once one
    of the run's own checkpoints is verified on Drive, it is an older autosave like any
    other and retention deletes it (before: it stayed on Drive, 94 MB in the demo, after
    every resume)."""
    from drivestage.retention import RetentionPolicy

    out = tmp_path / "run"
    out.mkdir()
    policy = RetentionPolicy(keep_last=2)
    first = BackgroundWriter(str(out), DriveFolder(f"drive:{FOLDER}", str(out), policy))
    first.submit(_job(1, size=4000))
    assert first.close() is True
    resumed = BackgroundWriter(str(out), DriveFolder(f"drive:{FOLDER}", str(out), policy))
    resumed.protect("autosave_00000001.pt")
    five = _job(5, size=4000)
    resumed.submit(five)
    assert resumed.wait(five, time.monotonic() + 30) and resumed.verified("autosave_00000005.pt")
    assert "autosave_00000001.pt" in _remote(emulator)      # kept by the push that sent 5
    resumed.submit(_job(9, size=4000))
    assert resumed.close() is True
    # 9's local sidecar vouches for it: the push that sends it retires 5 once every upload
    # of that push is verified (before polish21: only the next push did).
    assert sorted(n for n in _remote(emulator) if n.endswith(".pt")) == ["autosave_00000009.pt"]
    assert resumed.verified("autosave_00000009.pt")
