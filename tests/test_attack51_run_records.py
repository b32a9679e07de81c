"""attack51: ``run-folders.json`` (the run folders this machine pushed, attackds30) as a FIFO
or nested thousands deep.

``push --delete`` reads it first, and refuses while it cannot be read. Its reader used a
plain ``open()`` + ``json.load``: a FIFO there held every ``push --delete`` for good (waiting
for a writer), and a file nested 100,000 deep ended it in a ``RecursionError`` traceback.
Now the refusal says why, exit 1, nothing sent or deleted (``state.read_json``)."""
from __future__ import annotations

import os
import threading

import pytest

from _cli import run
from _messages import error_line
from test_pushread48_unread import live


@pytest.mark.parametrize("kind,why", [
    ("fifo", "not a regular file (a FIFO, socket or device)"),
    ("deep", "not JSON: nested too deep")])
def test_push_delete_is_refused_while_the_run_records_are_a_fifo_or_too_deep(
        emulator, drive_env, local_state, tmp_path, kind, why):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    emulator.add_file("runs/x/old.txt", b"old")
    records = tmp_path / "state" / "run-folders.json"
    records.parent.mkdir()
    if kind == "fifo":
        os.mkfifo(records)
    else:
        records.write_text("[" * 100_000)
    got: list = []
    t = threading.Thread(target=lambda: got.append(run(
        "push", str(tmp_path / "src"), "drive:runs/x", "--delete")), daemon=True)
    t.start()
    t.join(10)
    assert got, "push --delete still waiting after 10 s"
    code, _out, err = got[0]
    assert code == 1, err
    assert error_line(err).startswith(f"Error: cannot read {records} ({why}): it records "), err
    assert live(emulator) == {"old.txt": b"old"}   # (nothing sent or deleted)
