"""attackd51: a proxy's ``Date`` hours behind Drive's clock, and a resume's judgement of a
local save time "ahead of Drive's clock" (trainer/resume_drive._not_ahead_of_drive).

Here the run was sent back on purpose: Drive holds ``epoch_010`` (saved two hours ago), and
this machine, its clock right, went on from ``epoch_001`` and saved ``epoch_002`` an hour
ago, not pushed yet. ``--resume auto`` goes on from ``epoch_002`` (saved later: the run's
current line). Behind a proxy whose clock is three hours slow (its ``Date`` on every answer),
main took that ``Date`` for Drive's clock: ``epoch_002``'s save time read two hours "ahead
of Drive's clock", was dropped, the progress decided, and the run went on from Drive's
``epoch_010``, the user's send-back undone, with a line blaming this machine's clock. Drive's
own stamps (the checkpoints' ``createdDate``, listed) show its clock is not behind: the
``Date`` alone is no longer taken below them.

The other side stays (attackb51): Drive's whole clock a day behind this machine's (this
machine's clock a day ahead now, as when it saved): the save is still ahead, dropped, said.
"""
from __future__ import annotations

import os
import time
import types

import pytest

from test_attackb51_clock_ahead import _put, _state
from trainer import checkpoint as ckpt

FOLDER = "Models/ad51/logs"
DAY = 86400.0


@pytest.mark.parametrize("proxy, drive, chosen", [
    (-3 * 3600.0, 0.0, "epoch_002.pt"),   # a proxy's Date 3 h slow: fails on main (epoch_010)
    (0.0, -DAY, "epoch_010.pt"),          # this machine's clock a day ahead: as attackb51
], ids=["proxy-date-behind", "machine-ahead"])
def test_a_save_time_is_ahead_of_drive_only_where_drive_s_stamps_agree(
        emulator, drive_env, local_state, tmp_path, caplog, proxy, drive, chosen):
    from trainer.drive import DriveFolder
    from trainer.resume import _decide

    emulator.date_offset, emulator.clock_offset = proxy, drive
    logs, made, now = tmp_path / "logs", tmp_path / "made", time.time()
    ckpt.save_checkpoint(_state(1), str(logs / "epoch_001.pt"), saved=now + drive - 3 * 3600)
    _put(emulator, str(logs / "epoch_001.pt"), FOLDER)
    _put(emulator, ckpt.save_checkpoint(_state(10), str(made / "epoch_010.pt"),
                                        saved=now + drive - 2 * 3600), FOLDER)   # (honest)
    ckpt.save_checkpoint(_state(2), str(logs / "epoch_002.pt"), saved=now - 3600)   # never
    cfg = types.SimpleNamespace(train=types.SimpleNamespace(out_dir=str(logs)))
    start = _decide(cfg, "auto", DriveFolder(f"drive:{FOLDER}", str(logs)))
    assert os.path.basename(start.path) == chosen, start.path
    said = [r.getMessage() for r in caplog.records if "ahead of Drive's clock" in r.getMessage()]
    assert said == ([] if drive == 0 else [
        "the local checkpoint's save time is 23.0 h ahead of Drive's clock (this machine's "
        "clock ran ahead when it saved?): it is not compared with the saves on Drive; the "
        "run's progress decides which goes on"]), said
