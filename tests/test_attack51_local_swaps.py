"""attack51: what a local folder's pull says of a listed file replaced, before its copy, by
something that is no file (attackb50 made a FIFO there say so instead of holding the pull).

A socket cannot be opened at all (ENXIO): the pull ended in ``cannot stage …: No such device
or address (…/c.txt)``, and ``CheckpointSync`` said a socket at a sidecar's name was one it
could not read, "not mirrored until it can be read", while the mirror sent the checkpoint. A
folder made there ended the pull as a *usage* error, exit 2 (``… is a folder, not a file``),
for another program's change. Each is now attackb50's line, exit 1: ``…/c.txt changed in its
folder while it was copied (… now, a file when its folder was listed): not copied. Run
again``. ``c.txt`` is replaced once ``a.txt`` is staged (the pull's progress callback, one
file at a time, as test_attackb50_local_fifo)."""
from __future__ import annotations

import os
import socket

import pytest

import drivestage

from _local_src import old_files, once_staged
from _unix_sockets import bind_at


@pytest.mark.parametrize("kind,what", [("socket", "a FIFO, socket or device"),
                                       ("folder", "a folder")])
def test_a_file_replaced_by_a_socket_or_folder_during_a_local_pull_is_said_changed(
        tmp_path, kind, what):
    from drivestage.errors import RemoteChangedError

    src, out = tmp_path / "ds", tmp_path / "out"
    old_files(src, {name: name.encode() * 50 for name in ("a.txt", "b.txt", "c.txt")})
    held = []

    def swap() -> None:
        os.unlink(src / "c.txt")
        if kind == "socket":
            held.append(socket.socket(socket.AF_UNIX))
            bind_at(held[0], src / "c.txt")
        else:
            (src / "c.txt").mkdir()

    progress, swapped = once_staged(out / "ds" / "a.txt", swap)
    try:
        with pytest.raises(RemoteChangedError) as caught:
            drivestage.pull(str(src), str(out), jobs=1, progress=progress)
    finally:
        for s in held:
            s.close()
    assert swapped
    assert str(caught.value) == (
        f"{src}/c.txt changed in its folder while it was copied ({what} now, a file when its "
        "folder was listed): not copied. Run again")
    assert not (out / "ds" / "c.txt").exists()
