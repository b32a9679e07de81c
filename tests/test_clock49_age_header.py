"""clock49: a caching proxy's ``Age`` header is part of Drive's clock as its answers say it.

A cache that serves an answer it stored keeps the answer's ``Date`` (when Drive made it) and
says how long it kept it in ``Age`` (RFC 9111 4.2.3: the answer's age is ``Age`` plus its time
on the way). Read without ``Age``, a stored answer's ``Date`` said Drive's clock ran two hours
behind this machine's: the skew warning, claims judged by sight, a save dated by that clock,
``trainer status`` by it ("0 s ago" for a state an hour old). Read with it, the ``Date`` plus
``Age`` is Drive's clock now. A proxy that moves the ``Date`` back without an ``Age`` (its own
clock, behind) is still heard as it is: the control.

The real PyDrive2 stack (the CLI in this process) through a small proxy (tests/_proxy.py) in
front of the emulator, whose rule replays each answer as a cache would: ``Date`` two hours
back, ``Age`` two hours."""
from __future__ import annotations

import email.utils

import pytest

from _cli import run
from _proxy import Reply

HOURS = 2 * 3600


def _kept(age: int, said: bool = True):
    """A cache's answer: Drive's, as it was ``age`` seconds ago (its ``Date``), with ``Age``
    where ``said`` (else a proxy that dates answers by its own clock, ``age`` behind)."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        out = {k: v for k, v in headers.items() if k.lower() != "date"}
        date = email.utils.parsedate_to_datetime(headers["Date"]).timestamp() - age
        out["Date"] = email.utils.formatdate(date, usegmt=True)
        if said:
            out["Age"] = str(age)
        return Reply(status, out, [body])
    return mutate


@pytest.mark.parametrize("said, skew", [(True, None), (False, -HOURS)], ids=["age", "no-age"])
def test_an_answer_a_cache_kept_two_hours_is_dated_by_its_date_and_age(emulator, through,
                                                                        said, skew):
    from drivestage.drive import server_clock

    emulator.add_file("runs/a/x.bin", b"x" * 100)
    through.on("GET", "", _kept(HOURS, said))
    code, out, err = run("ls", "drive:runs/a")
    assert code == 0, err
    assert "x.bin" in out
    assert through.count("GET") >= 2, through.requests      # (two answers: an offset taken)
    got = server_clock.skew()
    if skew is None:
        assert got is None, got
        assert server_clock.dated()
    else:
        assert got is not None and abs(got - skew) < 60, got


@pytest.mark.parametrize("age", ["-5", "soon", "1.5"])
def test_an_answer_whose_age_cannot_be_read_does_not_date_drives_clock(emulator, through, age):
    """An ``Age`` that is no delta-seconds: how long the answer was kept is not known, so its
    ``Date`` says nothing of Drive's clock now (as an unreadable ``Date``)."""
    from drivestage.drive import server_clock

    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        out = {k: v for k, v in headers.items() if k.lower() != "date"}
        date = email.utils.parsedate_to_datetime(headers["Date"]).timestamp() - HOURS
        out["Date"] = email.utils.formatdate(date, usegmt=True)
        out["Age"] = age
        return Reply(status, out, [body])

    emulator.add_file("runs/a/x.bin", b"x" * 100)
    through.on("GET", "", mutate)
    code, out, err = run("ls", "drive:runs/a")
    assert code == 0, err
    assert server_clock.skew() is None
    assert server_clock.drive_clock() is None    # (nothing heard: this machine's clock)
