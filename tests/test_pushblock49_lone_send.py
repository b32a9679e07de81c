"""The trainer's lone send (a stop's save, the last epoch's ``last.pt`` sent as
``epoch_NNN.pt``: trainer/drive_alone.py) at a name a folder on Drive holds: nothing else to
send, so that name waiting is the whole send. It refuses at once, before a byte is sent, in
one line naming the folder and what to do (the run then ends exit 1 naming the checkpoint:
tests/test_trainlefts46_folder.py): no retry, a few requests. Checked, holds on 190483bc."""
from __future__ import annotations

import pytest

from drivestage.errors import FolderInTheWayError
from test_lastkeep32_drive import SPEC
from trainer import checkpoint as ckpt

FOLDER = SPEC.split(":", 1)[1]


def test_a_lone_send_at_a_folders_name_refuses_at_once_in_a_few_requests(
        emulator, drive_env, local_state, tmp_path):
    from test_messages_attack18 import _tiny_state
    from trainer.drive import DriveFolder

    path = ckpt.save_checkpoint(_tiny_state(2), str(tmp_path / "logs" / "epoch_002.pt"))
    emulator.add_folder(f"{FOLDER}/epoch_002.pt")
    drive = DriveFolder(SPEC, str(tmp_path / "logs"))
    before = len(emulator.requests)
    with pytest.raises(FolderInTheWayError) as refused:
        drive.send_alone([path, ckpt.sidecar_path(path)])
    asked = emulator.requests[before:]
    assert str(refused.value) == (
        f"{SPEC}/epoch_002.pt exists and is a folder, not a file; this run's epoch_002.pt "
        f"cannot be sent there: rename that folder on Drive")
    assert not [r for r in asked if r.path.startswith("/upload/")]
    assert len(asked) == 4, [(r.kind, r.path) for r in asked]   # (the path, the listing)
