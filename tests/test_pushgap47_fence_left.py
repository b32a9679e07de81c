"""pushgap47 (2c): ``push --delete`` where Drive has a folder at a local file's name sends
the file, then removes the folder. A guard (a trainer's run lease) that refuses once the
removals start stops ``--delete`` before the folder goes: the file stays beside it, a name
every pull refuses, and only the guard's error was said (retain47's note). Now one line says
so, naming both. The guard refuses by what the emulator's request log shows (the first
batch request: ``--delete``'s check of what it removes), never by time."""
from __future__ import annotations

import logging

import pytest

from _checkpoints import md5
from _drive_state import live_md5s
from _guarded_runs import Refused


def test_a_guard_that_stops_the_delete_says_the_folder_stays_beside_the_file(
        emulator, drive_env, local_state, tmp_path, caplog):
    from drivestage.upload_tree import push

    src = tmp_path / "run"
    src.mkdir()
    (src / "x").write_bytes(b"now a file")
    emulator.add_file("runs/a/x/inner.txt", b"inner")
    emulator.add_file("runs/a/old.txt", b"old")
    start = len(emulator.requests)

    def guard() -> None:
        if any(r.kind == "batch" for r in emulator.requests[start:]):
            raise Refused("the lease is another trainer's now")
    with caplog.at_level(logging.ERROR, logger="drivestage"), pytest.raises(Refused):
        push(str(src), "drive:runs/a", delete=True, jobs=1, guard=guard)
    assert live_md5s(emulator, "runs/a") == {"x": sorted([None, md5(b"now a file")], key=str),
                                             "old.txt": [md5(b"old")]}
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert said == [
        f"drive:runs/a/x is a folder --delete had not removed when the push stopped (the error "
        f"below says why), and {src}/x was sent beside it: a pull refuses that name until one "
        "of them goes; the next push --delete removes the folder, or rename one of them"], said
