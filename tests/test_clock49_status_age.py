"""clock49: ``trainer status``'s age of a checkpoint (trainer.status_age.verified_age) in each
case of three clocks: Drive's own date of the checkpoint (its ``modifiedDate``), this
machine's clock, and Drive's clock as its answers' ``Date`` says it. Drive's clock as heard
through the real stack (a ``resolve`` and a ``stat`` against the emulator: two answers, so an
offset is taken); the checkpoint's date stamped by the emulator's clock. The end-to-end cases
are test_attackr248_status_proxy (a proxy's ``Date`` behind) and test_attack48_status (a
machine ahead or behind, nothing showing which)."""
from __future__ import annotations

import pytest

HOUR = 3600.0


def _aged(emulator, store, pushed: float, date: float):
    """The checkpoint written ``pushed`` seconds off by Drive's clock, then heard through a
    ``Date`` ``date`` seconds off (a proxy's clock): its age now."""
    from trainer.status_age import verified_age

    emulator.clock_offset = pushed
    emulator.add_file("runs/a/epoch_001.pt", b"x" * 10)
    emulator.clock_offset = 0.0
    emulator.date_offset = date
    entry = store.stat(store.resolve("runs/a/epoch_001.pt"))
    return verified_age(entry.modified)


def test_a_date_behind_drives_own_date_is_not_drives_clock(emulator, store):
    age = _aged(emulator, store, -HOUR, -2 * HOUR)
    assert HOUR - 60 < age.seconds < HOUR + 60, age
    assert age.note is not None and age.note.startswith(
        "age by this machine's clock: Drive's answers are dated 120 min behind it"), age


def test_a_date_ahead_with_drives_own_date_ahead_of_this_machine_is_drives_clock(emulator,
                                                                                 store):
    """This machine two hours behind (Drive's whole clock ahead), the checkpoint sent an hour
    ago by Drive's clock: later than this machine's now, so its clock is the wrong one."""
    from trainer.status_age import verified_age

    emulator.clock_offset = HOUR
    emulator.add_file("runs/a/epoch_001.pt", b"x" * 10)
    emulator.clock_offset = 2 * HOUR
    age = verified_age(store.stat(store.resolve("runs/a/epoch_001.pt")).modified)
    assert HOUR - 60 < age.seconds < HOUR + 60, age
    assert age.note == "age by Drive's clock: this machine's clock is 120 min behind it (and " \
                       "behind Drive's own date of this checkpoint)", age


def test_drives_own_date_later_than_both_clocks_is_an_age_unknown(emulator, store):
    age = _aged(emulator, store, HOUR, -2 * HOUR)
    assert age.seconds == 0.0
    assert age.note is not None and age.note.startswith("age unknown:"), age


@pytest.mark.parametrize("date", [-2 * HOUR, 2 * HOUR], ids=["behind", "ahead"])
def test_where_nothing_shows_which_clock_is_wrong_both_readings_are_said(emulator, store,
                                                                         date):
    """Sent three hours ago by this machine's clock; the Date two hours behind (one hour by
    it) or ahead (five hours): either is possible, the Date's is given, both are said."""
    age = _aged(emulator, store, -3 * HOUR, date)
    by_date = 3 * HOUR + date
    assert abs(age.seconds - by_date) < 60, age
    assert abs(age.low - min(by_date, 3 * HOUR)) < 60 and \
        abs(age.high - max(by_date, 3 * HOUR)) < 60, age
    assert age.note is not None and age.note.startswith("age uncertain:"), age
    assert "the two disagree by 120 min" in age.note, age


def test_clocks_that_agree_say_nothing_more(emulator, store):
    age = _aged(emulator, store, -HOUR, 0.0)
    assert HOUR - 60 < age.seconds < HOUR + 60 and age.note is None, age
    assert age.low == age.high == age.seconds
