"""stop30: a SIGTERM while the training thread waits to queue an epoch's save behind a write
that does not end (a hung run-folder disk: epoch 1's write hangs, epoch 2's save waits in the
slot, epoch 3's cannot be queued: where a run on a hung disk ends up waiting). The waiting
saves were written at once with the whole grace each (``_write_both_now``), which a disk that
does not answer used up: the stop's own save, at the next step, found its grace over, and
nothing reached Drive although Drive answered all along.

A hung disk is a ``bindfs`` mount stopped with SIGSTOP (train28's fixture). The real writer
and save policy; the real PyDrive2 stack against the emulator."""
from __future__ import annotations

import os
import re
import signal
import threading
import time

from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from test_keeplocal25 import _save_epochs
from test_train28_hung_disk import _policy, _sigterm_stop, hung  # noqa: F401  (a fixture)
from test_writer import _until

SPEC = "drive:Models/s30/queued"


def test_a_stop_while_an_epoch_save_waits_behind_a_hung_write_still_reaches_drive(
        hung, emulator, drive_env, local_state, tiny_config):
    from trainer.drive import DriveFolder, newest_of_current_run

    logs = hung.path / "logs"
    os.makedirs(logs)
    # A grace of 6 s: the copy from a temporary folder starts halfway through it (the hung
    # write not ended) and has the other half to be written, sent and verified; 1.5 s of a
    # 3 s grace was too little on a loaded machine ("not within train.grace_seconds").
    run, writer, saver = _policy(tiny_config, logs, DriveFolder(SPEC, str(logs)), grace=6.0)
    saver.drive_spec = SPEC
    hung.hang()
    epochs = threading.Thread(target=_save_epochs, args=(run, saver, 1, 2, 3), daemon=True)
    out: list = []
    try:
        epochs.start()       # epoch 1's write hangs, 2 waits in the slot, 3 cannot be queued
        _until(lambda: writer._pending is not None and writer._pending.names[-1] ==
               "epoch_002.pt", "epoch 2's save never waited")
        began = time.monotonic()
        run.stop.request(signal.SIGTERM)
        epochs.join(10)      # (the epoch's end returns; the loop's next step sees the stop)
        stop = threading.Thread(target=_sigterm_stop(run, saver, out), daemon=True)
        stop.start()
        stop.join(10)
        took = time.monotonic() - began
    finally:
        hung.answer()
        epochs.join(30)
        writer.close(push=False)
    assert out and took < 6.0 + 2.0, f"the stop took {took:.1f} s (grace 6 s)"
    said = str(out[0])
    sent = re.search(r"it is sent to drive:Models/s30/queued from a temporary folder instead "
                     r"and verified there \((\d+\.\d) s after the signal", said)
    # Its seconds are read as the line is made, after the send's verification: on a loaded
    # machine a tenth past the grace (3.1 s of 3 once; a SIGKILL there would have ended the process
    # before any line). The stop's bound is ``took`` above; the line's clock is the stop's.
    assert sent and float(sent.group(1)) <= took + 0.05, said
    found = DriveFolder(SPEC, str(hung.path.parent / "elsewhere")).checkpoints()
    newest = newest_of_current_run(found)
    assert newest is not None and newest.name == "autosave_00000003.pt", [c.name for c in found]
