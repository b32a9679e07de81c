"""attackr248: one answer whose ``Date`` lies (a pool of proxies, one with a clock twelve hours
ahead), heard last before a save.

attack48 dates a save by Drive's clock where the ``Date`` is past a minute off this
machine's, as the *last* answer says it. One lying answer among right ones is then enough:
the save is dated twelve hours late (1/N of the saves for N proxies), the rest of the
process's line floors on it, and across lines ``sidecar.left_behind`` calls another machine's
newer line (epoch 25, saved now) left behind and ``newest`` picks this machine's epoch 12
(attack48's case (b), by one answer). A skew trusted only once two answers in a row agree
keeps attack48's fix (every answer of a machine days behind agrees) and drops this: taken
(lead48), ``server_clock.heard``."""
from __future__ import annotations

import time

import pytest


def test_one_lying_date_among_right_ones_does_not_date_a_save(emulator, store):
    from trainer.save_times import SaveTimes

    emulator.add_folder("runs")
    runs = store.resolve("runs")            # (right)
    emulator.date_offset = 12 * 3600.0      # (the one proxy whose clock is wrong: one answer)
    try:
        store.stat(runs)
    finally:
        emulator.date_offset = 0.0
    taken = SaveTimes().taken()
    assert abs(taken - time.time()) < 120, taken - time.time()
