"""A run folder gone (a Drive mount hung up, then unmounted) between an autosave's write and
the pruning of older ones: the pruning finds nothing to do. It raised FileNotFoundError in
the writer thread, a traceback after the run (seen in a full run: attackt31_hung_stop)."""
from __future__ import annotations

import os

from trainer import autosaves
from trainer.state import autosave_name


def test_pruning_a_folder_gone_since_the_write_removes_nothing_and_raises_nothing(tmp_path):
    folder = tmp_path / "logs"
    assert autosaves.prune(str(folder), 30, keep=2) == []


def test_pruning_keeps_the_newest_up_to_the_one_written(tmp_path):
    names = [autosave_name(i) for i in (10, 20, 30, 40)]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert autosaves.prune(str(tmp_path), 30, keep=2) == [names[0]]
    assert sorted(os.listdir(tmp_path)) == sorted(names[1:])
