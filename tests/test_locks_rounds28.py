"""A push that meets a busy lock of a folder it reaches through a shortcut lets go of its own,
waits for that one and starts again (lock28). Other pushes taking that folder each time it
starts again (mirrors every few seconds) kept it listing DEST for ever: the rounds are bounded,
then it says why it stopped."""
from __future__ import annotations

import pytest

from drivestage import locks
from drivestage.errors import LocksBusyError

MINE = [("drive:id:mine", "drive:runs/exp1"), ("drive:id:runs", "drive:runs")]
THEIRS = [("drive:id:x", "drive:x")]


def test_a_push_that_finds_the_folder_behind_its_shortcut_busy_every_time_stops(local_state):
    rounds = []

    def work(held: locks.Held) -> None:
        rounds.append(held.lineage)
        if len(rounds) > 1000:   # (an unbounded loop: fail rather than hang)
            raise RuntimeError("no bound")
        raise locks.Busy(THEIRS)

    with pytest.raises(LocksBusyError) as got:
        locks.locked(MINE, work)
    assert len(rounds) == locks.MAX_ROUNDS + 1
    assert str(got.value) == (
        "push into drive:runs/exp1: other pushes took drive:x, a folder it reaches through a "
        f"shortcut, each of the {locks.MAX_ROUNDS} times it waited for them and started "
        "again; run it again once they are done")


def test_a_push_that_finds_it_free_on_the_next_round_goes_on(local_state):
    rounds = []

    def work(held: locks.Held) -> None:
        rounds.append(1)
        if len(rounds) < 3:
            raise locks.Busy(THEIRS)

    locks.locked(MINE, work)
    assert len(rounds) == 3
