"""trainer23: a stop on a signal names every file of the run that is not on Drive, not only
its own save.

Before, when the stop save did not reach Drive within ``train.grace_seconds``, the line named
that save alone (``autosave_00000005.pt is saved in logs but did not reach drive:...``) while
epoch files written earlier were still queued for upload; the ``drivestage push`` it printed
sends them all, and a user leaving the machine could not tell that epochs 1 and 2 were not on
Drive either. The line now says how many files are not there and names them (at most
:data:`trainer.pushed.NAMED_UNSENT`, then how many more)."""
from __future__ import annotations

import signal

import pytest

from _messages import error_text
from test_messages_train import FOLDER, _drive_config, _run, drive, full_drive  # noqa: F401 (fixtures)
from test_writer import _until
from trainer.errors import TrainingInterrupted
from trainer.state import Position


def test_a_stop_save_that_did_not_reach_drive_names_the_epoch_files_not_there_either(
        full_drive, tiny_config):
    """Drive is full: epochs 1 and 2 were saved and their uploads failed; SIGTERM at
    iteration 5. The line names the stop save and both epoch files (not last.pt, which never
    goes to Drive), newest first."""
    run = _run(_drive_config(tiny_config, **{"train.epochs": 5, "train.save_period": 1}),
               drive=True)
    try:
        for epoch in (1, 2):
            pos = Position(epoch, epoch * 2, 0)
            run.state.pos = pos
            run.state.history.append({"epoch": epoch})
            run.checkpointer.on_fit_epoch_end(run, pos, {"epoch": epoch})
            job = run.checkpointer._epoch_job
            _until(lambda: job.done.is_set(), f"epoch {epoch}'s push never ended")
        run.stop.request(signal.SIGTERM)
        run.state.pos = pos = Position(2, 5, 1)
        with pytest.raises(TrainingInterrupted) as stopped:
            run.checkpointer.on_train_batch_end(run, pos, {})
    finally:
        assert run.writer.close(push=False) is True
    text = error_text(stopped.value).removeprefix("Error: ")
    spec = f"drive:{FOLDER}"
    assert text.startswith(f"stopped by SIGTERM at epoch 3, iteration 5: autosave_00000005.pt "
                           f"is saved in {run.out_dir} but did not reach {spec} within "
                           f"train.grace_seconds (60 s) ("), text
    assert (f"; 3 files of this run are not on {spec}: autosave_00000005.pt, epoch_002.pt, "
            f"epoch_001.pt; --resume auto on this machine continues from autosave_00000005.pt, "
            f"elsewhere upload them first: drivestage push {run.out_dir} {spec}") in text, text
    assert "last.pt" not in text


def test_the_list_of_files_not_on_drive_is_bounded():
    from trainer.saving import NAMED_UNSENT, unsent_text

    names = [f"epoch_{e:03d}.pt" for e in range(9, 0, -1)]
    assert NAMED_UNSENT == 5
    assert unsent_text(names, "drive:x") == (
        "9 files of this run are not on drive:x: epoch_009.pt, epoch_008.pt, epoch_007.pt, "
        "epoch_006.pt, epoch_005.pt and 4 more")
    assert unsent_text(names[:1], "drive:x") == "1 file of this run is not on drive:x: epoch_009.pt"


def test_a_stop_save_verified_on_drive_names_the_epoch_files_still_being_written(
        drive, tiny_config, monkeypatch):
    """The writer is still making epoch 1's epoch_001.pt (held here) when SIGTERM comes: the
    stop save is written, pushed and verified, but epoch_001.pt is in no push (a stop's close
    pushes nothing more). The line says so and how to send it."""
    import threading

    from trainer import checkpoint as ckpt

    copying, release = threading.Event(), threading.Event()
    real_copy = ckpt.copy_checkpoint

    def held_copy(src, dst):
        copying.set()
        release.wait(30)
        return real_copy(src, dst)

    monkeypatch.setattr(ckpt, "copy_checkpoint", held_copy)
    run = _run(_drive_config(tiny_config, **{"train.epochs": 5, "train.save_period": 1}),
               drive=True)
    try:
        pos = Position(1, 2, 0)
        run.state.pos = pos
        run.state.history.append({"epoch": 1})
        run.checkpointer.on_fit_epoch_end(run, pos, {"epoch": 1})
        _until(copying.is_set, "the writer never began epoch 1's copy")
        run.stop.request(signal.SIGTERM)
        run.state.pos = pos = Position(1, 3, 1)
        with pytest.raises(TrainingInterrupted) as stopped:
            run.checkpointer.on_train_batch_end(run, pos, {})
    finally:
        release.set()
        assert run.writer.close(push=False) is True
    text = error_text(stopped.value).removeprefix("Error: ")
    spec = f"drive:{FOLDER}"
    assert text.startswith(f"stopped by SIGTERM at epoch 2, iteration 3: autosave_00000003.pt is "
                           f"saved and verified on {spec} ("), text
    assert text.endswith(f" after the signal); 1 file of this run is not on {spec}: "
                         f"epoch_001.pt: upload it with drivestage push {run.out_dir} {spec}; "
                         f"resume with --resume auto"), text
