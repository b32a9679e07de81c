"""pushlefts47: the emulator made its state files 0600 by their names after it had looked
for links there (attack46): a link put at ``state.sqlite3-wal`` between that look and the
chmod (an older emulator's state folder, one another user can write into) had the file it
named made 0600. Now each is changed through a descriptor of the name itself: the link is
refused, with attack46's line, and nothing outside the folder is touched."""
from __future__ import annotations

import os
import stat

import pytest

from drivestage.emulator import Emulator
from drivestage.emulator.errors import DataDirError


@pytest.mark.parametrize("suffix", ["-wal", "-shm"])
def test_a_link_put_at_the_wal_after_the_look_is_not_followed(tmp_path, monkeypatch, suffix):
    data_dir = tmp_path / "emu"
    data_dir.mkdir()
    db = data_dir / "state.sqlite3"
    for name in ("-wal", "-shm"):   # (left by an emulator that was killed: SQLite's own)
        (data_dir / f"state.sqlite3{name}").write_bytes(b"")
    outside = tmp_path / "outside"
    outside.write_bytes(b"")
    os.chmod(outside, 0o644)
    os.symlink(outside, tmp_path / "link")
    real_open = os.open
    planted: list[bool] = []

    def planting(path, flags, *args, **kwargs):
        # The database's own open, right after the look for links at every name.
        if os.fspath(path) == str(db) and not planted:
            planted.append(True)
            os.replace(tmp_path / "link", f"{db}{suffix}")
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(os, "open", planting)
    with pytest.raises(DataDirError) as failed:
        Emulator(data_dir=str(data_dir)).start()
    monkeypatch.undo()
    assert planted
    assert stat.S_IMODE(os.stat(outside).st_mode) == 0o644
    assert outside.read_bytes() == b""
    assert str(failed.value) == (
        f"{db}{suffix} is a link; the emulator keeps its state in files of its own there: "
        "remove it, or start with an empty --data-dir")
