"""Messages of a resume that goes on from a checkpoint alone on Drive (trainer.drive_lone),
made to happen (attackmirror42 documented them)."""
from __future__ import annotations

import logging
from types import SimpleNamespace

from _lease_pairs import save_pair
from _messages import log_text, renders, shown

HEADING = ("has no sidecar on Drive (a save was killed between its two uploads) and nothing "
           "else there is a checkpoint: going on from it")


@renders(HEADING)
def test_a_resume_goes_on_from_a_checkpoint_alone_on_drive(emulator, drive_env, local_state,
                                                           tmp_path, caplog):
    from trainer.drive import DriveFolder
    from trainer.resume import _decide

    save_pair(tmp_path / "lost", "epoch_001.pt", 1.0)   # (the machine that was lost)
    emulator.add_file("runs/a/epoch_001.pt", (tmp_path / "lost" / "epoch_001.pt").read_bytes())
    logs = tmp_path / "logs"
    cfg = SimpleNamespace(train=SimpleNamespace(out_dir=str(logs)))
    with caplog.at_level(logging.WARNING, logger="trainer"):
        start = _decide(cfg, "auto", DriveFolder("drive:runs/a", str(logs)))
    assert start.path == str(logs / "epoch_001.pt")
    shown(HEADING, log_text([r for r in caplog.records if r.name == "trainer.drive_lone"]))
