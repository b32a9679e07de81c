"""A folder made on Drive beside a checkpoint already sent (pushlefts48's NameSharedError)
stops every later push of the run folder, not only that name (attackint48): the next push
sends nothing, exit 2, until the user renames the folder. For a training run that is every
later checkpoint kept off Drive for the rest of the run (its pushes warn; its final save
fails at the end): a VM lost meanwhile (Colab's) loses all the epochs since. The file of
that name is on Drive already ("is not sent again"), so the rest could be sent and the
name alone said. Fixed by pushshared48 (the lead's call): that name is skipped, the rest sent,
exit 1."""
from __future__ import annotations

import hashlib

from _cli import run


def test_a_folder_beside_a_sent_checkpoint_does_not_keep_later_ones_off_drive(
        emulator, drive_env, local_state, tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(b"one")
    (src / "epoch_001.json").write_text("{}")
    code, _, err = run("push", str(src), "drive:runs/a")
    assert code == 0, err
    emulator.add_folder("runs/a/epoch_001.pt")   # (another machine's, a user's: after the send)
    (src / "epoch_002.pt").write_bytes(b"two")
    (src / "epoch_002.json").write_text("{}")
    code, _, err = run("push", str(src), "drive:runs/a")
    assert "holds a folder and a file both named epoch_001.pt" in err and code == 1, err
    pushed = emulator.find("runs/a/epoch_002.pt")
    assert pushed is not None, "epoch_002.pt kept off Drive by epoch_001.pt's name"
    assert pushed["md5Checksum"] == hashlib.md5(b"two").hexdigest()
    assert emulator.find("runs/a/epoch_002.json") is not None
