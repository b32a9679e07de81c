"""Messages attack23stage added (see docs/troubleshooting.md and tests/_messages.py)."""
from __future__ import annotations

import os

import pytest

from _messages import error_line, renders, shown
from test_messages_walk20 import _drivestage

INSIDE = "cannot pull … into …: … would lie inside the folder pulled"


@renders(INSIDE)
@pytest.mark.parametrize("where", ["its parent", "itself", "a folder in it"])
def test_a_local_folder_pulled_into_itself_is_refused_before_anything_is_written(
        where, local_state, tmp_path):
    """`pull /data/in /data` (DEST the folder's parent: its copy is the folder itself), or
    DEST the folder or one inside it: the first pull put DEST's state folder (.drivestage)
    into the folder pulled - and, DEST deeper, copied its own copies - and every rerun
    failed with 'the name .drivestage is where drivestage keeps its stamps … rename that
    item on Drive' (exit 2), about a local folder and drivestage's own folder."""
    src = tmp_path / "data" / "in"
    src.mkdir(parents=True)
    (src / "b.bin").write_bytes(b"y" * 1000)
    dest = {"its parent": src.parent, "itself": src, "a folder in it": src / "out"}[where]
    for _ in range(2):
        r = _drivestage("pull", str(src), str(dest), "-q")
        assert r.exit_code == 2, r.output
        assert r.output.count("\n") == 1, r.output
        shown(INSIDE, error_line(r.stderr))
    assert sorted(os.listdir(src)) == ["b.bin"]               # nothing written into it
    assert (src / "b.bin").read_bytes() == b"y" * 1000
