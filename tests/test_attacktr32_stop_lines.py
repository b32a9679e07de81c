"""attacktr32: the line of a stop no signal asked for (a DataLoader worker's death) whose push
Drive refused. Such a stop may wait for Drive up to 15 minutes (grace32), and its line said
`did not reach drive:… within 900 s (the longest a stop without a signal waits) (Drive's md5
… does not match …)` for a push that failed at once: a timeout, as a slow link's, and the
troubleshooting section of that heading (a slow link) for Drive's refusal. Now such a line
says only why: `did not reach drive:… (…)`.

The real save policy, background writer and Drive (the emulator: it stores each upload with
its first byte flipped) around a one-layer network (tests/test_messages_train.py's ``_run``).
"""
from __future__ import annotations

import os
import re

from _messages import error_text
from _worker_death import ADVICE, worker_death_at_iteration_3
from test_messages_train import FOLDER, _drive_config, _remote, _run, drive  # noqa: F401


def test_a_worker_deaths_stop_whose_push_drive_refuses_says_why_not_a_wait(drive, tiny_config):
    run = _run(_drive_config(tiny_config), drive=True, grace_s=0.8)
    drive.faults.corrupt_upload(times=2)   # (each upload stored wrong: the push gives up)
    try:
        stopped = worker_death_at_iteration_3(run)
        on_drive = _remote(drive)
    finally:
        run.writer.close()
    text = error_text(stopped).removeprefix("Error: ")
    path = os.path.join(run.out_dir, "autosave_00000003.pt")
    assert re.fullmatch(re.escape(
        f"stopped by a DataLoader worker's death at epoch 1, iteration 3: autosave_00000003.pt "
        f"is saved in {run.out_dir} but did not reach drive:{FOLDER} (Drive's md5 of "
        f"autosave_00000003.pt (MD5) does not match the local file {path} (MD5) after two "
        f"uploads; the remote copy was deleted. Check the network path to Drive and run the "
        f"push again.); --resume auto on this machine continues from it, elsewhere upload it "
        f"first: drivestage push {run.out_dir} drive:{FOLDER}{ADVICE}").replace("MD5",
                                                                               "[0-9a-f]{32}"),
        text), text
    assert stopped.exit_code == 1
    assert on_drive == {}   # (the stored wrong copy deleted)
    assert sorted(os.listdir(run.out_dir)) == ["autosave_00000003.json", "autosave_00000003.pt"]
