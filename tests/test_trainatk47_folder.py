"""trainatk47 (2): a Drive folder of a checkpoint's name made *while* the trainer sends it alone
(``trainer/drive_alone.send``: a stop's save, the last epoch's copy, a kept state). The check
for such a folder (trainlefts46) read the listing made before the send; a folder made on Drive
in between (another machine, the user in the web page) let the file go beside it: two items
of one name, which every pull of the run folder refuses and the run's next push refuses to send.
Now the listing made right after each upload is checked too: the copy this send made is
removed, and the send is refused with the same line as before a byte is sent.

The real DriveFolder and stack against the emulator behind tests/_proxy.py, which makes the
folder as the send's upload session starts (the file is made after it)."""
from __future__ import annotations

import os

import pytest

from _proxy import when_sending
from drivestage.errors import FolderInTheWayError
from test_lastkeep32_drive import SPEC
from test_messages_attack18 import _tiny_state
from trainer import checkpoint as ckpt

FOLDER = SPEC.split(":", 1)[1]


def _there(emulator) -> list[tuple[str, bool]]:
    """(name, is a folder) of every live item in the run's Drive folder."""
    rec = emulator.find(FOLDER)
    return sorted((c["title"], c["mimeType"].endswith(".folder"))
                  for c in emulator.store.children(rec["id"]) if not c.get("trashed"))


@pytest.mark.parametrize("name", ["epoch_002.pt", "epoch_002.json"])
def test_a_folder_made_on_drive_during_the_send_leaves_no_file_beside_it(
        emulator, through, tmp_path, name):
    """The folder (of the checkpoint's name, or of its sidecar's) made as the first upload
    starts: before, the send ended "verified" with a file of that name beside the folder (and
    the checkpoint with it). Now it is refused in the usual line, this send's copies are
    gone from Drive, the user's folder is kept, and the save stays on this machine."""
    from trainer.drive import DriveFolder

    path = ckpt.save_checkpoint(_tiny_state(2), str(tmp_path / "logs" / "epoch_002.pt"))
    drive = DriveFolder(SPEC, str(tmp_path / "logs"))
    made = when_sending(through, lambda: emulator.add_folder(f"{FOLDER}/{name}"))
    with pytest.raises(FolderInTheWayError) as refused:
        drive.send_alone([path, ckpt.sidecar_path(path)])
    assert made, "the folder was never made during the send"
    assert str(refused.value) == (
        f"{SPEC}/{name} exists and is a folder, not a file; this run's {name} cannot be sent "
        f"there: rename that folder on Drive")
    assert _there(emulator) == [(name, True)]
    assert os.path.isfile(path) and os.path.isfile(ckpt.sidecar_path(path))
