"""Messages stage23 added (see docs/troubleshooting.md and tests/_messages.py)."""
from __future__ import annotations

import os

from _messages import error_line, renders, shown
from test_messages_walk20 import _drivestage
from test_stage23 import _members, _zip, replacer  # noqa: F401 (a fixture)

LOCK = "cannot hold the lock …: the file locked was not the one of that name … times in a row"


@renders(LOCK)
def test_a_pull_whose_lock_file_never_stays_the_same(local_state, tmp_path,
                                                     replacer):  # noqa: F811
    """A file system whose inode numbers change (another thread replaces the lock file
    between the two looks): one line, exit 1, nothing staged, the original untouched."""
    (tmp_path / "input").mkdir()
    archive = tmp_path / "input" / "x"               # the lock is named after the file: x
    data = _zip(_members(2, 100))
    archive.write_bytes(data)
    r = _drivestage("pull", str(archive), str(tmp_path), "-q")
    assert r.exit_code == 1, r.output
    assert r.output.count("\n") == 1, r.output
    shown(LOCK, error_line(r.stderr))
    assert archive.read_bytes() == data and not os.path.exists(tmp_path / "x")
