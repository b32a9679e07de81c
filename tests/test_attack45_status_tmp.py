"""attack45: ``trainer status`` looks inside checkpoints in a temporary folder (lefts44's lone
files, and the verified candidates it vets); where no temporary folder can be made (``TMPDIR``
on a full or read-only disk, a file in its place) or the fetch into it fails locally
(ENOSPC), the ``OSError`` left status with a traceback. Now it says, in the line status
already had for a file it could not fetch, that it could not look inside and why; nothing is
left behind. The real PyDrive2 stack against the emulator."""
from __future__ import annotations

import os
import re
import signal
import tempfile
import threading

import pytest

from click.testing import CliRunner

from _lease_pairs import save_pair
from _tiny_run import tiny_run_config


def _status(tmp_path):
    got = CliRunner().invoke(__import__("trainer.cli", fromlist=["cli"]).cli,
                             ["status", "-c", tiny_run_config(tmp_path)])
    return got.exit_code, got.output, got.exception


def test_status_without_a_temporary_folder_says_it_could_not_look_inside(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    from trainer.drive import DriveFolder

    emulator.add_file("runs/a/epoch_002.pt", b"not a checkpoint" * 10)
    blocked = tmp_path / "tmp-is-a-file"
    blocked.write_text("x")
    was = tempfile.tempdir
    monkeypatch.setattr(tempfile, "tempdir", str(blocked))
    code, out, exc = _status(tmp_path)
    assert (code, type(exc)) == (1, SystemExit), out   # (main: NotADirectoryError, traceback)
    line = out.splitlines()[-1]
    assert line.startswith(
        "Error: no verified checkpoint on drive:runs/a yet; drive:runs/a/epoch_002.pt is there "
        "without its sidecar (a save killed between its two uploads?); whether --resume auto "
        "goes on from it is not known: it could not be fetched to look inside ([Errno 20] Not "
        f"a directory: '{blocked}/trainer-status-") and line.endswith("')"), out
    # A verified checkpoint there: status names it, and says the look inside was not made.
    save_pair(tmp_path / "sent", "epoch_001.pt", 1.0)
    tempfile.tempdir = was   # (the push's own private copies)
    DriveFolder("drive:runs/a", str(tmp_path / "sent")).push()
    tempfile.tempdir = str(blocked)
    code, out, exc = _status(tmp_path)
    assert (code, exc) == (0, None), out   # (main: NotADirectoryError, traceback)
    assert re.fullmatch(r"drive:runs/a/epoch_001\.pt: epoch 2, iteration 3, verified on "
                        r"Drive \d+ s ago \(run r1\)", out.splitlines()[0]), out
    assert "whether --resume auto can go on from it is not known: drive:runs/a/epoch_001.pt " \
           "could not be fetched to look inside (" in out, out
    assert list(blocked.parent.glob("trainer-status-*")) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_status_stopped_while_it_looks_inside_removes_its_temporary_folder(
        emulator, drive_env, local_state, tmp_path, monkeypatch, signum):
    """A supervisor's ``timeout`` (SIGTERM) or a closed terminal (SIGHUP) while status fetches
    a lone checkpoint to look inside: it ended at once (the signal's default), and left its
    temporary folder, the checkpoint's bytes so far in it, behind in TMPDIR at each such run.
    Now it ends as a Ctrl-C does: the folder removed, one line, the shell's code. In this
    process (its main thread, as a command's): the signal is sent only once status has a
    handler for it (main has none: it would end the test's process)."""
    save_pair(tmp_path / "made", "epoch_002.pt", 2.0, values=4096)
    data = (tmp_path / "made" / "epoch_002.pt").read_bytes()
    held = emulator.faults.hold(emulator.add_file("runs/a/epoch_002.pt", data), len(data) // 2)
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    config = tiny_run_config(tmp_path)
    sent: list = []

    def stop() -> None:   # (a supervisor's, once status waits on the held fetch)
        try:
            if not held.reached.wait(60):
                sent.append("status never fetched the lone checkpoint")
            elif signal.getsignal(signum) in (signal.SIG_DFL, signal.SIG_IGN, None):
                sent.append(f"status has no handler of {signum!r}: killed at once by it")
            else:
                sent.append(sorted(p.name[:15] for p in temp.iterdir()))
                os.kill(os.getpid(), signum)
        finally:
            held.release()
    monkeypatch.setattr("trainer.cli._AS_PROGRAM", True)   # (as the `trainer` program)
    # (Both at a terminal's default, as the test runner's may differ; put back after.)
    saved = {s: signal.signal(s, signal.SIG_DFL) for s in (signal.SIGTERM, signal.SIGHUP)}
    supervisor = threading.Thread(target=stop)
    supervisor.start()
    try:
        code, out, exc = _status(tmp_path)
        # A repeat as it says its line and exits is ignored (put back at its default, it
        # killed the process there, the line unsaid).
        after = signal.getsignal(signum)
    finally:
        supervisor.join(60)
        for s, handler in saved.items():
            signal.signal(s, handler)
    assert after is signal.SIG_IGN, after
    assert sent == [["trainer-status-"]], sent
    name = signal.Signals(signum).name
    assert (code, out.splitlines()[-1]) == (128 + signum, f"Interrupted by {name}."), out
    assert list(temp.iterdir()) == []   # (main: trainer-status-…/epoch_002.pt's part left)
    assert list((tmp_path / "logs").glob("*")) == []
