"""attack51: a sidecar's name that holds no regular file (a FIFO, a folder), as
``CheckpointSync.on_save`` says it.

attackb50 made ``on_save`` leave such a name as it is (a FIFO's open waited for a writer; a
folder cannot be written over) and say it as pull50's unreadable sidecar: ``… is not mirrored
until it can be read (a checkpoint goes only with its sidecar)``. It was mirrored: push holds
a checkpoint only with a sidecar it could not *read* (pushblock49); a FIFO is left out of the
walk and a folder is a folder, so the checkpoint went as one without a sidecar (and a
folder's files beside it), which a resume does not take. The line now says what happens, and
what to do.
"""
from __future__ import annotations

import logging
import os
import socket
import stat

import pytest

from _checkpoints import save
from _messages import renders, shown
from _unix_sockets import bind_at

T0 = 1764600000.0
HEADING = "the sidecar's name … holds no regular file"


@pytest.mark.parametrize("kind", ["folder", "socket"])
@renders(HEADING)
def test_a_checkpoint_whose_sidecar_name_holds_no_file_is_said_mirrored_without_one(
        tmp_path, caplog, kind):
    """A folder, a socket (which cannot be opened at all: on main, "could not read the
    sidecar … (No such device or address)", the same false line). A FIFO's line is
    test_attackb50_sync_fifo's."""
    from drivestage.hooks import CheckpointSync

    src, dest = tmp_path / "run", tmp_path / "dest"
    dest.mkdir()
    save(str(src), "epoch_001", 1, T0)
    (src / "epoch_002.pt").write_bytes(b"x" * 3000)
    side = src / "epoch_002.json"
    held = socket.socket(socket.AF_UNIX)
    if kind == "socket":
        bind_at(held, side)
    else:
        side.mkdir()
    caplog.set_level(logging.WARNING, logger="drivestage")
    hook = CheckpointSync(str(dest), local_dir=str(src))
    hook.on_save(str(src / "epoch_002.pt"), epoch=2, metrics={"loss": 1.0})
    hook.on_train_end(timeout=30)
    held.close()
    said = [r.getMessage() for r in caplog.records if str(side) in r.getMessage()]
    assert said[0] == (
        f"the sidecar's name {side} holds no regular file (a FIFO, a folder, a device): not "
        f"written over, and {src}/epoch_002.pt is mirrored without a sidecar, which a resume "
        "does not take; remove what is at that name, and the next save writes the sidecar"), said
    shown(HEADING, said[0])
    assert (dest / "epoch_002.pt").read_bytes() == b"x" * 3000   # (what the line says)
    assert not (dest / "epoch_002.json").is_file()
    assert (stat.S_ISDIR if kind == "folder" else stat.S_ISSOCK)(os.lstat(side).st_mode)
    resumed = CheckpointSync(str(dest), local_dir=str(tmp_path / "other"))
    latest = resumed.latest_remote_checkpoint()
    resumed.on_train_end(timeout=30)
    assert latest is not None and latest.name == "epoch_001.pt"
