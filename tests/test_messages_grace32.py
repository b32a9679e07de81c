"""grace32's messages (docs/troubleshooting.md): a stop without a signal that waited for
Drive as long as it may, and train.grace_seconds bounded under torchrun."""
from __future__ import annotations

import logging

from _messages import error_text, log_text, renders, shown
from test_grace32_stop_waits import _worker_death_at_iteration_3
from test_messages_train import FOLDER, _drive_config, _remote, _run, drive  # noqa: F401
from trainer import stopping


@renders("did not reach … within … s (the longest a stop without a signal waits for Drive)")
def test_a_worker_deaths_stop_whose_upload_outlasts_the_longest_wait(drive, tiny_config,
                                                                     monkeypatch):
    monkeypatch.setattr(stopping, "UNSIGNALLED_WAIT_S", 0.6)   # (15 min in a run)
    run = _run(_drive_config(tiny_config), drive=True, grace_s=0.2)
    drive.faults.latency(60.0, path=r"^/upload/", times=1)   # an upload that does not end
    try:
        stopped = _worker_death_at_iteration_3(run)
        on_drive = _remote(drive)
    finally:
        drive.faults.release_holds()
        assert run.writer.close() is True
    assert "autosave_00000003.pt" not in on_drive
    text = error_text(stopped).removeprefix("Error: ")
    assert text.startswith(
        f"stopped by a DataLoader worker's death at epoch 1, iteration 3: autosave_00000003.pt "
        f"is saved in {run.out_dir} but did not reach drive:{FOLDER} within 0.6 s (the longest "
        f"a stop without a signal waits for Drive); --resume auto on this machine continues "
        f"from it, elsewhere upload it first: drivestage push {run.out_dir} drive:{FOLDER} ("), \
        text
    shown("did not reach … within … s (the longest a stop without a signal waits for Drive)",
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
