"""grace32's messages (docs/troubleshooting.md): a stop without a signal that waited for
Drive as long as it may, and train.grace_seconds bounded under torchrun."""
from __future__ import annotations

import logging
import os

from _messages import error_text, log_text, renders, shown
from _tempdir import own_tempdir  # noqa: F401  (an autouse fixture)
from _worker_death import stopped_with_its_upload_held
from test_messages_train import FOLDER, _drive_config, _run, drive  # noqa: F401
from trainer import stopping


@renders("did not reach … within … s (the longest a stop without a signal waits)")
def test_a_worker_deaths_stop_whose_upload_outlasts_the_longest_wait(drive, tiny_config,
                                                                     monkeypatch):
    monkeypatch.setattr(stopping, "UNSIGNALLED_WAIT_S", 0.8)   # (15 min in a run)
    run = _run(_drive_config(tiny_config), drive=True, grace_s=1.0)   # (half: the write here)
    stopped, on_drive = stopped_with_its_upload_held(run, drive)
    assert "autosave_00000003.pt" not in on_drive
    text = error_text(stopped).removeprefix("Error: ")
    assert text.startswith(
        f"stopped by a DataLoader worker's death at epoch 1, iteration 3: autosave_00000003.pt "
        f"is saved in {run.out_dir} but did not reach drive:{FOLDER} within 0.8 s (the longest "
        f"a stop without a signal waits); --resume auto on this machine continues "
        f"from it, elsewhere upload it first: drivestage push {run.out_dir} drive:{FOLDER} ("), \
        text
    shown("did not reach … within … s (the longest a stop without a signal waits)",
          text)


@renders("under torchrun a stop's save gets 25 s at most")
def test_a_grace_longer_than_torchrun_allows(monkeypatch, caplog):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-1")
    monkeypatch.delenv("RANK", raising=False)
    with caplog.at_level(logging.WARNING, logger="trainer"):
        assert stopping.StopFlag(60.0).grace_s == 25.0
    text = log_text(caplog.records)
    assert text.strip().endswith(
        "train.grace_seconds is 60 s, but under torchrun a stop's save gets 25 s at most: "
        "torchrun SIGKILLs its ranks 30 s after its SIGTERM, and the stop's line must come "
        "before that"), text
    shown("under torchrun a stop's save gets 25 s at most", text)


@renders("--resume auto goes on from … kept on this machine by an earlier stop")
def test_a_run_goes_on_from_the_state_an_earlier_stop_kept_in_tmp(tiny_config, own_tempdir,
                                                                 one_torch_thread, caplog):
    """A real run stopped mid-epoch 2; its stop's save kept in /tmp only (as a stop on a hung
    run folder keeps it); the same command again goes on from it, not from epoch_001.pt."""
    import shutil

    from trainer import checkpoint as ckpt
    from trainer.callbacks import Callback
    from trainer.config import load_config
    from trainer.engine import fit
    from trainer.errors import TrainingInterrupted

    class StopAt6(Callback):
        def on_train_batch_end(self, run, pos, logs):
            if pos.iteration == 6:
                run.stop.request()

    cfg = load_config(tiny_config(**{"train.batch_size": 4, "train.freeze_epochs": 0}))
    try:
        fit(cfg, resume="none", callbacks=[StopAt6()])
    except TrainingInterrupted:
        pass
    saved = sorted(n for n in os.listdir(cfg.train.out_dir) if n.startswith("autosave_"))
    assert saved and saved[-1].endswith(".pt"), saved
    name = [n for n in saved if n.endswith(".pt")][-1]
    kept = own_tempdir / "trainer-rescued-x1"
    kept.mkdir()
    for f in (name, os.path.basename(ckpt.sidecar_path(name))):
        shutil.move(os.path.join(cfg.train.out_dir, f), kept / f)
    at = ckpt.read_sidecar(str(kept / name))
    assert at is not None and at.epoch_iteration > 0   # (mid-epoch 2; epoch_001.pt is older)

    with caplog.at_level(logging.INFO, logger="trainer"):
        fit(cfg, resume="auto")
    assert f"resumed from {kept / name} at epoch 2, iteration {at.iteration}" in caplog.text
    shown("--resume auto goes on from … kept on this machine by an earlier stop", caplog.text)
    last = ckpt.read_sidecar(os.path.join(cfg.train.out_dir, "epoch_002.pt"))
    assert last is not None and last.run == at.run and last.epoch == 2
