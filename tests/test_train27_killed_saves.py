"""train27: a save killed between its checkpoint and its sidecar is found and described by the
next resume even when this machine's clock was stepped back since an earlier save (NTP on a
VM resumed from a snapshot, a user fixing the date). The search went by file time alone: a
killed ``last.pt`` (epoch 3) older by its file time than ``epoch_002.pt`` was never read,
and ``--resume auto`` went back to epoch 2 (the epoch since trained again); dated by its file
time it also read as left behind by a run sent back on purpose."""
from __future__ import annotations

import os

from test_killed_saves import RUN, _state
from trainer import checkpoint as ckpt


def _save(folder: str, name: str, position: tuple, saved: float, mtime: float,
          described: bool = True) -> str:
    path = ckpt.save_checkpoint(_state(*position), os.path.join(folder, name), saved=saved)
    if not described:
        os.unlink(ckpt.sidecar_path(path))        # killed before its sidecar
    os.utime(path, (mtime, mtime))
    return path


def test_a_killed_last_pt_written_after_the_clock_went_back_is_resumed_from(tmp_path):
    folder = str(tmp_path)
    _save(folder, "epoch_001.pt", (1, 4, 0), saved=1000.0, mtime=1000.0)
    _save(folder, "epoch_002.pt", (2, 8, 0), saved=2000.0, mtime=2000.0)
    # The clock goes back 700 s: the writer still dates its saves after the run's last one
    # (BackgroundWriter.taken), but the files get this clock's times.
    _save(folder, "autosave_00000010.pt", (2, 10, 2), saved=2000.5, mtime=1400.0)
    last = _save(folder, "last.pt", (3, 12, 0), saved=2001.0, mtime=1500.0, described=False)
    assert ckpt.describe_killed_saves(folder) == [last]
    side = ckpt.read_sidecar(last)
    assert side is not None and (side.epoch, side.iteration) == (3, 12)
    assert side.saved > 2000.5                    # after every save it continues from
    assert ckpt.newest(ckpt.list_checkpoints(folder), run=RUN).path == last
    assert ckpt.find_latest(folder, run=RUN, any_run=False) == last


def test_an_older_killed_save_is_still_left_alone(tmp_path):
    """An autosave whose prune was killed between its sidecar and its file (older by its file
    time and by its contents) is not described again: the next prune removes it."""
    folder = str(tmp_path)
    old = _save(folder, "autosave_00000004.pt", (1, 4, 4), saved=900.0, mtime=900.0,
                described=False)
    _save(folder, "epoch_002.pt", (2, 8, 0), saved=2000.0, mtime=2000.0)
    assert ckpt.describe_killed_saves(folder) == []
    assert ckpt.read_sidecar(old) is None


def test_a_killed_save_of_a_run_sent_back_is_dated_after_the_branch_it_continues(tmp_path):
    """Resumed on purpose from epoch 2 while epoch_005.pt (the branch left) stays here: the new
    branch's killed last.pt (epoch 3) was dated before epoch_005.pt (never after a save
    further on), so before the new branch's own autosave of epoch 3, and read as left behind:
    the resume went back to that autosave."""
    folder = str(tmp_path)
    _save(folder, "epoch_002.pt", (2, 8, 0), saved=2000.0, mtime=2000.0)
    _save(folder, "epoch_005.pt", (5, 20, 0), saved=5000.0, mtime=5000.0)   # the branch left
    _save(folder, "autosave_00000010.pt", (2, 10, 2), saved=6000.0, mtime=6000.0)
    last = _save(folder, "last.pt", (3, 12, 0), saved=6100.0, mtime=6100.0, described=False)
    assert ckpt.describe_killed_saves(folder) == [last]
    assert ckpt.newest(ckpt.list_checkpoints(folder), run=RUN).path == last
