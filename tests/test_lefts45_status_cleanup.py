"""lefts45: ``trainer status`` looks inside a checkpoint in a temporary folder, removed at its
end by ``TemporaryDirectory``'s clean-up, which detaches its finalizer and then removes the
files one by one. A Ctrl-C (or a SIGTERM, which status takes as one: attack45) in the middle
of that removal cut it: the files not yet removed, and the folder, stayed in TMPDIR for good.
The removal now runs under :func:`drivestage.deferred_ctrl_c.deferred`, as the project's other
clean-ups do: it ends, then the Ctrl-C ends status (130, ``Interrupted.``). The Ctrl-C is sent
as the removal's first file goes (a profile hook on ``os.unlink`` called from ``shutil``)."""
from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile

from click.testing import CliRunner

from _lease_pairs import save_pair
from _tiny_run import tiny_run_config


def test_a_ctrl_c_during_the_temporary_folders_removal_does_not_cut_it(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    save_pair(tmp_path / "made", "epoch_002.pt", 2.0)   # (a checkpoint: kept with its sidecar)
    emulator.add_file("runs/a/epoch_002.pt", (tmp_path / "made" / "epoch_002.pt").read_bytes())
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    config = tiny_run_config(tmp_path)
    sent: list[str] = []

    def at_removal(frame, event, arg):   # (the main thread's calls only)
        if event == "c_call" and arg is os.unlink and not sent and \
                frame.f_code.co_filename == shutil.__file__:
            sent.append(sorted(p.name for d in temp.iterdir() for p in d.iterdir()))
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.signal(signal.SIGINT, signal.default_int_handler)   # (a terminal's)
    sys.setprofile(at_removal)
    try:
        got = CliRunner().invoke(__import__("trainer.cli", fromlist=["cli"]).cli,
                                 ["status", "-c", config])
    finally:
        sys.setprofile(None)
        signal.signal(signal.SIGINT, before)
    assert sent == [["epoch_002.json", "epoch_002.pt"]], (sent, got.output)
    assert (got.exit_code, got.output.splitlines()[-1]) == (130, "Interrupted."), got.output
    assert list(temp.iterdir()) == []   # (before: trainer-status-…/epoch_002.* left)
