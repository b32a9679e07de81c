"""A folder above a mirror's DEST renamed on Drive (``runs`` -> ``runs_old``): the mirror
finds it when it walks the path again (every WALK_EVERY periods, mirror22), makes
``runs/logs`` anew and sends everything to it again, a second copy of every checkpoint.
DEST itself moved or renamed between two periods says so (moved25); this said nothing."""
from __future__ import annotations

import hashlib
import logging

from drivestage.mirror import WALK_EVERY, Mirror

from _drive_state import live_md5s

GONE = "is no longer at its path on Drive"


def test_a_walk_that_finds_dest_elsewhere_says_so_once(emulator, store, tmp_path, caplog):
    src = tmp_path / "logs"
    src.mkdir()
    (src / "epoch_001.pt").write_bytes(b"one")
    caplog.set_level(logging.WARNING)
    m = Mirror(str(src), (store, "runs/logs"), None).start()
    try:
        m.flush(60)
        emulator.store.update_meta(emulator.find("runs")["id"], {"title": "runs_old"})
        for _ in range(2 * WALK_EVERY):
            m.flush(60)
    finally:
        m.stop(60)
    assert live_md5s(emulator, "runs/logs") == {"epoch_001.pt": [hashlib.md5(b"one").hexdigest()]}
    lines = [r.getMessage() for r in caplog.records if GONE in r.getMessage()]
    assert lines == [f"drive:runs/logs {GONE} (moved, renamed, trashed or deleted since this "
                     "process last pushed there); making it anew and sending everything to "
                     "it: put the folder back first to keep one copy"], caplog.text
