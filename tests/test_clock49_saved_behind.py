"""clock49: retention on a machine whose clock runs more than a day behind reads the save
times of other machines' checkpoints by Drive's clock.

A sidecar's ``saved`` more than a day ahead of this machine's clock was read as no save time
(``drivestage.sidecar.FUTURE_SLACK_S``): on a machine two days behind, every save time of a
machine with the right clock was, and retention lost its "saved last" rule. Beside a sidecar
claiming a billion epochs, ``prune --keep-last 1`` there deleted the run's real newest
checkpoint (the liar kept as the newest). The bound is now read against the later of this
machine's clock and Drive's as its answers' ``Date`` says it.

This machine two days behind is Drive's whole clock two days ahead
(``Emulator.clock_offset``), the save times written by machines whose clock is Drive's: the
CLI in this process (a child under ``tests._clock.skewed_env(-2 days)`` against a right Drive
was checked the same, before and after, and costs 2.6 s more)."""
from __future__ import annotations

from _cli import run
from test_sidecar_saved import FOLDER, T0, _live, _put

AHEAD = 2 * 86400.0


def test_prune_two_days_behind_keeps_the_run_saved_last_beside_a_liar(emulator, drive_env,
                                                                      local_state):
    emulator.clock_offset = AHEAD
    honest = [_put(emulator, f"epoch_{e:03d}", e, AHEAD + T0 + 60 * e) for e in (1, 2, 3)]
    liar = _put(emulator, "epoch-002", 10**9, AHEAD + T0 + 90)
    code, out, err = run("prune", f"drive:{FOLDER}", "--keep-last", "1")
    assert code == 0, err
    assert _live(emulator) == {**liar, **honest[2]}, out
    assert "saved last" in out, out
