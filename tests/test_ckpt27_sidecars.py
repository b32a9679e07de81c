"""A FIFO (or a link to a device) at a sidecar's name in a run folder (ckpt27, found by
attackdata27): the sidecar was opened with a plain open(), which waits for a writer that
never comes: ``trainer status``, ``--resume auto`` and a push's look at the folder hung for
good. Now it is no sidecar (its checkpoint undescribed), never waited on."""
from __future__ import annotations

import os
import shutil

from test_attackdata27_images import _in_thread, _unblock
from test_trainer22_hostile import _small_run
from test_trainer23_fallback import _save
from test_trainer24_status import SPEC, _status
from test_keeplocal25 import fitted
from drivestage import sidecar as sidecars
from trainer import checkpoint as ckpt


def test_status_never_waits_on_a_fifo_under_a_sidecars_name(
        emulator, drive_env, local_state, tiny_config, tmp_path):
    """The run folder: epoch_001.pt described, epoch_002.pt whose sidecar is a FIFO."""
    from trainer.drive import DriveFolder

    here = tmp_path / "here"
    run = _small_run(tiny_config, here)
    _save(run, here, "epoch_001.pt", 1, 1000.0, fitted())
    DriveFolder(SPEC, str(here)).push()
    _save(run, here, "epoch_002.pt", 2, 2000.0, fitted())
    os.unlink(here / "epoch_002.json")
    os.mkfifo(here / "epoch_002.json")
    box: list = []
    try:
        finished, exc = _in_thread(lambda: box.append(_status(tiny_config, here)))
    finally:
        _unblock(here / "epoch_002.json")
    assert finished, "status waited on the FIFO"
    assert exc is None, exc
    res = box[0]
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(f"{SPEC}/epoch_001.pt: epoch 1, iteration 2, verified on Drive")


def test_resume_auto_never_waits_on_a_fifo_under_a_sidecars_name(tiny_config, tmp_path):
    """``find_latest`` (what ``--resume auto`` asks first): the described checkpoint is found;
    a push's view of the folder (:func:`drivestage.sidecar.read`) reads the FIFO as none."""
    logs = tmp_path / "logs"
    run = _small_run(tiny_config, logs)
    first = _save(run, logs, "epoch_001.pt", 1, 1000.0, fitted())
    shutil.copy(first, logs / "epoch_002.pt")
    os.mkfifo(logs / "epoch_002.json")
    box: list = []
    try:
        finished, exc = _in_thread(lambda: box.append(
            (ckpt.find_latest(str(logs)), sidecars.read(str(logs / "epoch_002.json")))))
    finally:
        _unblock(logs / "epoch_002.json")
    assert finished, "find_latest waited on the FIFO"
    assert exc is None, exc
    assert box[0] == (first, None)


def test_a_sidecar_linked_to_a_device_is_none(tmp_path):
    """A link to /dev/zero (endless bytes) or /dev/null: not a regular file, no sidecar."""
    for device in ("/dev/zero", "/dev/null"):
        path = tmp_path / "last.pt"
        path.write_bytes(b"x")
        side = tmp_path / "last.json"
        if side.is_symlink():
            side.unlink()
        os.symlink(device, side)
        assert ckpt.read_sidecar(str(path)) is None
        assert sidecars.read(str(side)) is None
