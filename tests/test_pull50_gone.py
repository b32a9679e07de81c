"""pull50: a file deleted on Drive while a folder pull runs (a live run's retention removing
an old checkpoint of the folder pulled) is named, with what to do.

The walk lists the folder before the first byte moves; a file deleted after that failed the
pull with Drive's plain 404 (``download drive:run/epoch_001.pt bytes 0-…: not found on Drive
(HTTP 404 …)``), which a user cannot tell from a broken server. Now Drive is asked for that
file once: gone, the pull fails naming it and what to do, exit 1, nothing under its name.
The deletion is made while ``a.txt`` (before it in the pull's order, one file at a time) is
held at its fifth byte (the emulator's hold), so it falls between the listing and the
file's own download.
"""
from __future__ import annotations

import threading

from _cli import run
from _envs import env  # noqa: F401  (a fixture)
from _messages import error_line, renders, shown


@renders("went away on Drive while this pull ran")
def test_a_file_deleted_on_drive_during_a_folder_pull_is_named_with_what_to_do(
        emulator, env, tmp_path):
    a_id = emulator.add_file("run/a.txt", b"a" * 100)
    gone_id = emulator.add_file("run/epoch_001.pt", b"p" * 100)
    emulator.add_file("run/train.log", b"l" * 100)
    held = emulator.faults.hold(a_id, 5, timeout=20)
    box: dict = {}
    t = threading.Thread(target=lambda: box.update(run=run(
        "pull", "-q", "--jobs", "1", "drive:run", str(tmp_path / "d"))), daemon=True)
    t.start()
    try:
        assert held.reached.wait(20), "a.txt's download never started"
        emulator.store.delete(gone_id)    # (retention's removal, after the listing)
    finally:
        held.release()
    t.join(30)
    assert not t.is_alive()
    code, _, err = box["run"]
    assert code == 1, err
    shown("went away on Drive while this pull ran", err)
    assert error_line(err) == (
        "Error: drive:run/epoch_001.pt went away on Drive while this pull ran (deleted after "
        "the folder was listed: a run still writing there, its retention removing old "
        "checkpoints?), so it was not staged. Pull again (only what is missing is fetched), "
        "or pull a run's folder once its trainer has stopped"), err
    assert not (tmp_path / "d" / "run" / "epoch_001.pt").exists()
    assert (tmp_path / "d" / "run" / "a.txt").read_bytes() == b"a" * 100
    # The rerun lists the folder as it is now: what is left, staged.
    code, _, err = run("pull", "-q", "drive:run", str(tmp_path / "d"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "d" / "run").iterdir()
                  if not p.name.startswith(".")) == ["a.txt", "train.log"]
