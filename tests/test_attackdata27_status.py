"""``trainer status`` on a run folder with hostile contents (attackdata27): a FIFO under a
checkpoint's name, its sidecar naming Drive's bytes, hung status for good (it hashed the
"local copy" to spare a download). Real checkpoints, the emulator, the CLI in-process."""
from __future__ import annotations

import os
import shutil

from test_attackdata27_images import _in_thread, _unblock
from test_trainer22_hostile import _small_run
from test_trainer23_fallback import _save
from test_trainer24_status import SPEC, _status
from test_keeplocal25 import fitted


def test_status_never_waits_on_a_fifo_under_a_checkpoints_name(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    from trainer.drive import DriveFolder

    there = tmp_path / "there"
    run = _small_run(tiny_config, there)
    _save(run, there, "epoch_001.pt", 1, 1000.0, fitted())
    DriveFolder(SPEC, str(there)).push()
    here = tmp_path / "here"
    here.mkdir()
    shutil.copy(there / "epoch_001.json", here / "epoch_001.json")  # names Drive's md5
    os.mkfifo(here / "epoch_001.pt")
    box: list = []
    try:
        finished, exc = _in_thread(lambda: box.append(_status(tiny_config, here)))
    finally:
        _unblock(here / "epoch_001.pt")
    assert finished, "status waited on the FIFO"
    assert exc is None, exc
    res = box[0]
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(f"{SPEC}/epoch_001.pt: epoch 1, iteration 2, verified on Drive")


def test_status_escapes_what_a_sidecar_on_drive_says(emulator, drive_env, local_state,
                                                      tiny_config, tmp_path):
    """A sidecar on Drive is anybody's text (a shared folder): its run id was printed raw on
    status's first line, an ANSI escape (clear the screen) or a newline included; the lines
    after it were escaped already."""
    import json

    from trainer.drive import DriveFolder

    there = tmp_path / "there"
    run = _small_run(tiny_config, there)
    _save(run, there, "epoch_001.pt", 1, 1000.0, fitted())
    side = json.loads((there / "epoch_001.json").read_text())
    side["run"] = "r\x1b[2J\nforged line"
    (there / "epoch_001.json").write_text(json.dumps(side))
    DriveFolder(SPEC, str(there)).push()
    res = _status(tiny_config, tmp_path / "fresh")
    assert "\x1b" not in res.stdout and "\nforged line" not in res.stdout, res.stdout
    assert "(run r\\x1b[2J\\x0aforged line)" in res.stdout.splitlines()[0]
