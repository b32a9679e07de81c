"""Attacks on three changes of 2026-12-02: orphan sidecars retired by retention
(:mod:`drivestage.orphans`), the private copy of a sidecar a push sends
(:mod:`drivestage.sidecar_copy`), and pull --extract's update of a member that changed kind
(:mod:`drivestage.extract.owned`).

Through the real stack against the emulator (the CLI in-process); what is asserted is what
users rely on: the files left on Drive (name -> md5s), the exit code and the message."""
from __future__ import annotations

import json
import os
import tempfile

import pytest

from _checkpoints import RUN, md5, save
from _cli import ok, run
from _drive_state import live_md5s

FOLDER = "Models/logs"
T0 = 1764600000.0


@pytest.fixture(autouse=True)
def _fast(fast_retries):
    """Backoffs of a millisecond, without jitter, for every test here."""


def _live(emu) -> dict:
    return live_md5s(emu, FOLDER)


# ------------------------------------------------------------ the sidecar's private copy

def test_a_temp_folder_removed_under_a_long_lived_process_fails_the_push_and_loses_nothing(
        emulator, drive_env, local_state, tmp_path, monkeypatch):
    """A trainer's process runs for days; the temp folder Python chose at its first use
    (``$TMPDIR``, a job's scratch folder) is removed meanwhile. The push that sends last.pt
    saved again cannot make the sidecar's private copy: it must say so and exit 1 (not skip
    the sidecar as a file that "disappeared" and exit 0, every push after), keep the copy the
    sidecar on Drive vouches for, and the next push with a temp folder heals."""
    src = tmp_path / "run"
    first = save(str(src), "last", 1, T0)
    ok("push", str(src), f"drive:{FOLDER}")
    second = save(str(src), "last", 2, T0 + 60)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert tempfile.gettempdir() == str(scratch)   # chosen, and kept by Python from now on
    scratch.rmdir()
    code, out, err = run("push", str(src), f"drive:{FOLDER}")
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert lines == [f"Error: cannot write a private copy of {src / 'last.json'} into the "
                     f"temporary folder {scratch}: No such file or directory; set TMPDIR to a "
                     "writable folder with free space"], err
    live = _live(emulator)
    assert live["last.json"] == first["last.json"]
    assert sorted(live["last.pt"]) == sorted(first["last.pt"] + second["last.pt"])
    scratch.mkdir()
    ok("push", str(src), f"drive:{FOLDER}")
    assert _live(emulator) == second
