"""attack46: a push into a local DEST (a Drive mount, another disk) of a file swapped for a
FIFO after the push's walk. attackpush45 opened a file sent to Drive as a regular file only
(a FIFO held the push for good); the local DEST's copy (``LocalDirStore._copy``) still opened
it with a plain open(), and waited there for a writer, for good."""
from __future__ import annotations

import os

from _forkcli import cli_server

#: ``drivestage ARGS``, with the push's walk followed by the swap of ``PATH`` for a FIFO
#: (before any file is read).
_SWAP_AFTER_WALK = r"""
import os, runpy, sys
from drivestage import push_job
walk = push_job.walk
def walked(*args, **kwargs):
    tree = walk(*args, **kwargs)
    os.mkfifo(PATH + ".swap")
    os.rename(PATH + ".swap", PATH)
    return tree
push_job.walk = walked
sys.argv = ["drivestage", *sys.argv[1:]]
runpy.run_module("drivestage", run_name="__main__", alter_sys=True)
"""


def test_a_file_swapped_for_a_fifo_after_the_walk_does_not_hold_a_local_push(
        local_state, tmp_path):
    src, dest = tmp_path / "run", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    (src / "a.txt").write_bytes(b"a")
    (src / "b.log").write_bytes(b"b")
    path = str(src / "b.log")
    # (Without the fix the push waited for good: killed at this bound.)
    done = cli_server().run(["push", str(src), str(dest)], timeout=20, text=True,
                            script=_SWAP_AFTER_WALK.replace("PATH", repr(path)))
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"Error: {path} became a FIFO, socket or device while the push ran (a file when it "
        "began); not sent again: push again once it is a file"), done.stderr
    assert sorted(p.name for p in dest.rglob("b.log*")) == []
