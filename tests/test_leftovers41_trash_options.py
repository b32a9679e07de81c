"""``push --delete-permanently --use-trash``: the two options choose for different files, so
the pair is kept and each one's help says which. ``--delete``/``--delete-permanently`` decide
what becomes of the files not in SRC (the trash, or gone for good); ``--use-trash`` what
becomes of the checkpoints the policy prunes and the old copy a replaced checkpoint leaves
(permanently deleted unless it is given). ``--use-trash``'s help said "Move deleted files to
the Drive trash", which read as if it covered ``--delete-permanently``'s files too."""
from __future__ import annotations

import json
import os
import re

import pytest

from _cli import run


def _help(*command: str) -> str:
    code, out, err = run(*command, "--help")
    assert code == 0, err
    return re.sub(r"\s+", " ", out)


@pytest.mark.parametrize("command", ["push", "mirror"])
def test_each_removal_option_says_which_files_it_decides_for(command):
    text = _help(command)
    assert ("--use-trash Move the checkpoints the retention policy prunes, and the old copy "
            "of a checkpoint replaced, to the Drive trash (it counts toward the quota) instead "
            "of deleting them permanently. Files not in SRC follow --delete (to the trash) or "
            "--delete-permanently (gone for good), whatever this says.") in text, text
    assert ("--delete-permanently Like --delete, but delete them permanently instead of "
            "moving them to the trash (also with --use-trash, which is for what the policy "
            "prunes).") in text, text


def test_prune_says_what_it_moves_to_the_trash():
    assert ("--use-trash Move the checkpoints the policy prunes to the Drive trash (it counts "
            "toward the quota) instead of deleting them permanently.") in _help("prune")


def test_the_pair_deletes_strays_for_good_and_trashes_what_the_policy_prunes(
        emulator, local_state, drive_env, tmp_path):
    """What the help says, on Drive: a guard (it did so before; only the words changed)."""
    src = tmp_path / "logs"
    src.mkdir()
    for e in (1, 2):
        (src / f"epoch_{e:03d}.pt").write_bytes(os.urandom(3000))
        (src / f"epoch_{e:03d}.pt.json").write_text(json.dumps({"epoch": e}))
    assert run("push", str(src), "drive:Models/logs")[0] == 0
    emulator.add_file("Models/logs/stray.txt", b"not in SRC\n")
    code, _, err = run("push", str(src), "drive:Models/logs", "--keep-last", "1",
                       "--delete-permanently", "--use-trash")
    assert code == 0, err
    files = {f["title"]: f["labels"]["trashed"] for f in emulator.files()
             if not f["mimeType"].endswith(".folder")}
    assert files == {"epoch_001.pt": True, "epoch_001.pt.json": True,   # pruned: the trash
                     "epoch_002.pt": False, "epoch_002.pt.json": False}   # stray: gone
