"""attack44: the first sight of a claim dated ahead (``run_claims.silent_for``) where the
state folder keeps none (its claims-seen.json unwritable: here a folder of that name, which
even root cannot replace with a file). The first sight was "now" at every look, so a dead
claim read live for ever: a pending trainer there never took the lease over, dedupe never
merged. Now the process keeps its own first sights: the silence grows as it watches."""
from __future__ import annotations

import time

from drivestage import run_claims
from drivestage.state import state_dir


def test_a_state_folder_that_keeps_no_sight_still_lets_a_dead_claims_silence_grow(
        local_state):
    (state_dir() / run_claims.SEEN_FILE).mkdir(parents=True)
    t0 = time.time()
    ahead = t0 + 10 * 86400.0   # (dated 10 days ahead of Drive's clock: judged by its sight)
    assert run_claims.silent_for("dead", ahead, t0) == 0.0
    assert run_claims.silent_for("dead", ahead, t0 + 200) == 200.0
    claim = run_claims.PropertyClaim(1, ahead, ahead, 1, "elsewhere", False, "far", 150.0)
    assert run_claims.no_ones(claim, t0 + 200, "dead")
    # A renewal is a new date, seen anew: a live holder reads live.
    assert run_claims.silent_for("dead", ahead + 60, t0 + 210) == 0.0
    # A day's sights at most.
    assert run_claims.silent_for("dead", ahead, t0 + 2 * 86400) == 0.0
    assert (state_dir() / run_claims.SEEN_FILE).is_dir()
