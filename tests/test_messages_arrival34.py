"""arrival34: the plan's lines for a file retention waits on by its first-seen mark
(:mod:`drivestage.first_seen`), as docs/troubleshooting.md quotes them."""
from __future__ import annotations

import time

from _checkpoints import RUN, save
from _cli import ok
from _messages import renders, shown

FOLDER = "Models/logs"
T0 = 1764600000.0
YEAR = 365 * 24 * 3600


def _row(out: str, name: str) -> str:
    return next(row for row in out.splitlines() if f"  {name}  " in row)


def _year_old(emulator, name: str) -> None:
    """Drive's dates of ``name`` a year back, as ``rclone copy -M`` sends them."""
    then = time.time() - YEAR
    emulator.store.update(emulator.find(f"{FOLDER}/{name}")["id"], created=then, modified=then)


@renders("orphan sidecar: … is not here; first seen …; retired 24 h after")
def test_an_orphan_old_by_its_dates_but_first_seen_now_waits(emulator, drive_env, local_state,
                                                             tmp_path):
    save(str(tmp_path / "a"), "epoch_003", 3, T0 + 3, run=RUN)
    ok("push", str(tmp_path / "a"), f"drive:{FOLDER}")
    emulator.store.delete(emulator.find(f"{FOLDER}/epoch_003.pt")["id"])
    _year_old(emulator, "epoch_003.json")
    line = _row(ok("prune", f"drive:{FOLDER}", "--keep-last", "1"), "epoch_003.json")
    shown("orphan sidecar: … is not here; first seen …; retired 24 h after", line)
    assert line.startswith("keep")


@renders("autosave without a sidecar on the store: first seen …; retired 24 h after")
def test_a_lone_autosave_old_by_its_dates_but_first_seen_now_waits(emulator, drive_env,
                                                                   local_state, tmp_path):
    cut = tmp_path / "cut"
    save(str(cut), "autosave_00000002", 0, T0 + 2, run=RUN, saved=T0 + 2)
    (cut / "autosave_00000002.json").unlink()
    ok("push", str(cut), f"drive:{FOLDER}")
    _year_old(emulator, "autosave_00000002.pt")
    save(str(tmp_path / "newer"), "autosave_00000003", 0, T0 + 3, run=RUN, saved=T0 + 3)
    ok("push", str(tmp_path / "newer"), f"drive:{FOLDER}")
    line = _row(ok("prune", f"drive:{FOLDER}", "--keep-last", "1"), "autosave_00000002.pt")
    shown("autosave without a sidecar on the store: first seen …; retired 24 h after", line)
    assert line.startswith("keep")
