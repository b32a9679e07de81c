"""attackb50: a FIFO at a checkpoint's sidecar name held the trainer's save forever.

``hooks.CheckpointSync.on_save`` reads the sidecar beside a checkpoint to tell whether it
vouches for its bytes (pull50 made one it could not read count, never written over). It
opened that name with a plain ``open()``: a FIFO there (``mkfifo``, a second process's log
pipe, a hostile user of a shared run folder) blocks that open until a writer comes, so the
training loop's ``on_save`` never returned. Push already leaves a FIFO unread (special
files); the sync now opens without waiting, and a sidecar name that is no regular file is
left as it is, said once, as one it could not read.
"""
from __future__ import annotations

import logging
import os
import stat
import threading

from _checkpoints import save

T0 = 1764600000.0


def test_a_fifo_at_the_sidecar_name_does_not_hold_the_trainers_save(tmp_path, caplog):
    from drivestage.hooks import CheckpointSync

    src, dest = tmp_path / "run", tmp_path / "dest"
    dest.mkdir()
    save(str(src), "epoch_001", 1, T0)
    (src / "epoch_002.pt").write_bytes(b"x" * 3000)
    os.mkfifo(src / "epoch_002.json")
    hook = CheckpointSync(str(dest), local_dir=str(src))
    done = threading.Event()

    def on_save() -> None:
        hook.on_save(str(src / "epoch_002.pt"), epoch=2, metrics={"loss": 1.0})
        done.set()

    caplog.set_level(logging.WARNING, logger="drivestage")
    threading.Thread(target=on_save, daemon=True).start()
    try:
        assert done.wait(10), "on_save waits on the FIFO at epoch_002.json"
    finally:
        if not done.is_set():   # (a writer ends the open that waits, so the test ends)
            os.close(os.open(src / "epoch_002.json", os.O_WRONLY | os.O_NONBLOCK))
            done.wait(10)
    assert stat.S_ISFIFO(os.lstat(src / "epoch_002.json").st_mode)   # (not written over)
    said = [r.getMessage() for r in caplog.records if "epoch_002.json" in r.getMessage()]
    assert said[0] == (   # (attack51: what happens then, test_attack51_sync_no_sidecar)
        f"the sidecar's name {src}/epoch_002.json holds no regular file (a FIFO, a folder, a "
        f"device): not written over, and {src}/epoch_002.pt is mirrored without a sidecar, "
        "which a resume does not take; remove what is at that name, and the next save writes "
        "the sidecar"), said
    hook.on_train_end(timeout=30)
