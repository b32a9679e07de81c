"""attack46: links planted in the emulator's state folder (``--data-dir``, one another user
can write into: ``/tmp/emu``). Its lock file, state database and blob folders were opened
and made private through them: a link at ``lock`` created the file it named, one at
``state.sqlite3`` made that file 0600 and wrote the database into it, one at ``blobs`` kept
every upload's bytes in the folder it named. Now each is refused with one line, nothing
outside the folder touched."""
from __future__ import annotations

import os
import stat

import pytest

from drivestage.emulator import Emulator
from drivestage.emulator.errors import DataDirError


@pytest.mark.parametrize("name", ["lock", "state.sqlite3", "state.sqlite3-wal", "blobs",
                                  "uploads"])
def test_a_link_in_the_state_folder_is_not_followed(tmp_path, name):
    data_dir = tmp_path / "emu"
    data_dir.mkdir()
    outside = tmp_path / "outside"
    if name in ("blobs", "uploads"):
        outside.mkdir(mode=0o755)
        os.chmod(outside, 0o755)
    else:
        outside.write_bytes(b"")   # (an empty file: SQLite would make it its database)
        os.chmod(outside, 0o644)
    os.symlink(outside, data_dir / name)
    with pytest.raises(DataDirError) as failed:
        Emulator(data_dir=str(data_dir)).start()
    assert str(failed.value) == (
        f"{data_dir / name} is a link; the emulator keeps its state in files of its own there: "
        "remove it, or start with an empty --data-dir")
    assert stat.S_IMODE(os.stat(outside).st_mode) in (0o644, 0o755)
    if outside.is_file():
        assert outside.read_bytes() == b""
    else:
        assert os.listdir(outside) == []
    assert not (data_dir / "state.sqlite3").is_file() or name != "lock"
