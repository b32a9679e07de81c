"""attacknew34: a DEST in a Drive mount (Drive for desktop, Colab's ``/content/drive``) keeps
its trash in it, ``.drivestage-trash``, which the mount syncs to Drive: ``pull drive:logs``
then failed, exit 2, on that folder's reserved name. A DEST's trash is never data: a folder
pull leaves it out."""
from __future__ import annotations

import os

from _cli import run


def test_a_folder_pull_leaves_a_synced_trash_out(emulator, drive_env, local_state, tmp_path):
    emulator.add_file("logs/epoch_001.pt", b"one")
    emulator.add_file("logs/.drivestage-trash/epoch_000.pt", b"zero")

    code, _, err = run("pull", "drive:logs", str(tmp_path / "copy"))

    assert code == 0, err
    copy = tmp_path / "copy" / "logs"
    assert sorted(n for n in os.listdir(copy) if n != ".drivestage") == ["epoch_001.pt"]
    assert (copy / "epoch_001.pt").read_bytes() == b"one"
