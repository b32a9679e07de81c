"""attackb50: a file of a local folder replaced by a FIFO while the folder is pulled held
the pull forever.

The walk lists a local folder (a FIFO there is left out, said); a file it listed that
another program replaced by a FIFO before its copy was opened with a plain ``open()``
(``LocalDirStore.read_range``), which waits for a writer: the pull never ended, nothing
said. ``c.txt`` becomes a FIFO once ``a.txt`` is staged (the pull's progress callback, one
file at a time, as test_pull50_local_mixed): the pull now fails naming it, nothing under
its name, and the FIFO is left as it is.
"""
from __future__ import annotations

import os
import stat
import threading

import drivestage

from _local_src import old_files, once_staged


def test_a_file_become_a_fifo_during_a_local_pull_does_not_hold_it(tmp_path):
    src, out = tmp_path / "ds", tmp_path / "out"
    old_files(src, {name: name.encode() * 50 for name in ("a.txt", "b.txt", "c.txt")})

    def swap() -> None:
        os.unlink(src / "c.txt")
        os.mkfifo(src / "c.txt")

    progress, swapped = once_staged(out / "ds" / "a.txt", swap)
    box: dict = {}

    def pull() -> None:
        try:
            drivestage.pull(str(src), str(out), jobs=1, progress=progress)
        except Exception as exc:   # (what the pull raised, read below)
            box["exc"] = exc

    t = threading.Thread(target=pull, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():   # (a writer ends the open that waits, so the test ends)
        os.close(os.open(src / "c.txt", os.O_WRONLY | os.O_NONBLOCK))
        t.join(10)
        raise AssertionError("the pull waits on the FIFO at c.txt")
    assert swapped
    assert str(box.get("exc")) == (
        f"{src}/c.txt changed in its folder while it was copied (a FIFO, socket or device now, "
        "a file when its folder was listed): not copied. Run again")
    assert not (out / "ds" / "c.txt").exists()
    assert stat.S_ISFIFO(os.lstat(src / "c.txt").st_mode)
