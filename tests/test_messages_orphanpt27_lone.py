"""Messages of the lone-autosave rule (drivestage.lone_autosaves), made to happen: an
autosave on Drive without its sidecar, a verified autosave numbered above it that arrived
after it (orphanpt27)."""
from __future__ import annotations

import logging
import os
import time

from _checkpoints import RUN, save, sidecar_json
from _cli import ok
from _drive_state import held_since
from _messages import log_text, renders, shown

FOLDER = "Models/logs"
T0 = 1764600000.0
LONE = "autosave_00000002.pt"


def _lone_then_newer(emulator, tmp_path, ago: float) -> bytes:
    """autosave 2 pushed without its sidecar (Drive received it ``ago`` seconds ago), then
    autosave 3 with its sidecar; returns autosave 2's bytes."""
    cut, newer = tmp_path / "cut", tmp_path / "newer"
    save(str(cut), "autosave_00000002", 0, T0 + 2, run=RUN, saved=T0 + 2)
    os.unlink(cut / "autosave_00000002.json")
    ok("push", str(cut), f"drive:{FOLDER}")
    save(str(newer), "autosave_00000003", 0, T0 + 3, run=RUN, saved=T0 + 3)
    ok("push", str(newer), f"drive:{FOLDER}")
    when = time.time() - ago
    held_since(emulator, emulator.find(f"{FOLDER}/{LONE}")["id"], when)
    return (cut / LONE).read_bytes()


def _line(out: str) -> str:
    return next(row for row in out.splitlines() if f"  {LONE}  " in row)


@renders("lone autosave: no sidecar on the store, … is further on and verified, and this "
         "file reached the store … ago")
def test_prune_dry_run_shows_a_lone_autosaves_retirement(emulator, drive_env, local_state,
                                                         tmp_path):
    _lone_then_newer(emulator, tmp_path, 2 * 24 * 3600)
    line = _line(ok("prune", f"drive:{FOLDER}", "--keep-last", "1", "--dry-run"))
    shown("lone autosave: no sidecar on the store, … is further on and verified, and this "
          "file reached the store … ago", line)
    assert line.startswith("delete") and "autosave_00000003.pt" in line


@renders("autosave without a sidecar on the store: retired once the store has held it 24 h "
         "(its sidecar may be on its way)")
def test_prune_dry_run_says_why_a_fresh_lone_autosave_waits(emulator, drive_env, local_state,
                                                            tmp_path):
    _lone_then_newer(emulator, tmp_path, 3600)
    line = _line(ok("prune", f"drive:{FOLDER}", "--keep-last", "1", "--dry-run"))
    shown("autosave without a sidecar on the store: retired once the store has held it 24 h "
          "(its sidecar may be on its way)", line)
    assert line.startswith("keep")


@renders("kept the lone autosave … its sidecar arrived or it changed since the plan")
def test_a_sidecar_that_arrives_under_a_lagging_listing_keeps_the_autosave(
        emulator, drive_env, local_state, tmp_path, caplog, monkeypatch):
    from drivestage.pruning import prune
    from drivestage.retention import RetentionPolicy

    data = _lone_then_newer(emulator, tmp_path, 2 * 24 * 3600)
    emulator.faults.lag_listing(created=1, titles=r"^autosave_00000002\.json$")
    emulator.add_file(f"{FOLDER}/autosave_00000002.json", sidecar_json(0, data))
    # The CLI's pushes above keep drivestage's records to its own handler: caplog needs them.
    monkeypatch.setattr(logging.getLogger("drivestage"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="drivestage"):
        prune(f"drive:{FOLDER}", RetentionPolicy(keep_last=1))
    text = log_text([r for r in caplog.records if "lone autosave" in r.getMessage()])
    shown("kept the lone autosave … its sidecar arrived or it changed since the plan", text)
    assert emulator.find(f"{FOLDER}/{LONE}") is not None
