"""clock51: an HTTP date with no zone of its own is UTC, not this machine's local time.

HTTP dates are UTC (RFC 9110 5.6.7), and a recipient must read all three of their forms:
IMF-fixdate (``… GMT``), RFC 850, and C's asctime (``Mon Dec  7 19:30:00 2026``), which names
no zone at all. RFC 5322's ``-0000`` (what Python's ``email.utils.formatdate()`` writes by
default: a proxy written in Python) is UTC too, its sender's own zone unsaid. Python's
``parsedate_to_datetime`` gives both as a naive datetime, and ``timestamp()`` read a naive
one in this machine's time zone: on a laptop eight hours west of UTC, every answer of a
proxy that wrote its ``Date`` so said Drive's clock ran eight hours ahead (the skew warning,
claims judged by sight, "in the future" and save times by that clock), and a
``Retry-After`` date so written asked for eight hours (the retry policy's cap, 120 s) where
the server asked for ten seconds. At the far end, a ``-0000`` date of 31 Dec 9999 read in a
zone east of UTC was past year 9999 and could not be read at all.

The real PyDrive2 stack through a small proxy (tests/_proxy.py) in front of the emulator,
whose rule writes each answer's ``Date`` in that form; this process's time zone eight hours
west of UTC (``TZ``, set for the test and put back)."""
from __future__ import annotations

import contextlib
import email.utils
import os
import time

import pytest

from _cli import run
from _proxy import Reply
from test_claim50_retry_after_age import waits   # noqa: F401  (a fixture)

FORMS = {
    "asctime": lambda t: time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(t)),
    "minus-0000": lambda t: email.utils.formatdate(t),
}


@contextlib.contextmanager
def _zone(tz: str):
    """This process in the POSIX time zone ``tz`` (no zone database needed), put back after."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = tz
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.fixture
def west():
    """This process eight hours west of UTC."""
    with _zone("PST+8"):
        yield


def _dated(form: str):
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        out = {k: v for k, v in headers.items() if k.lower() != "date"}
        out["Date"] = FORMS[form](email.utils.parsedate_to_datetime(headers["Date"]).timestamp())
        return Reply(status, out, [body])
    return mutate


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_date_without_a_zone_is_read_as_utc(emulator, through, west, form):
    from drivestage.drive import server_clock

    emulator.add_file("runs/a/x.bin", b"x" * 100)
    through.on("GET", "", _dated(form))
    code, out, err = run("ls", "drive:runs/a")
    assert code == 0, err
    assert "x.bin" in out
    assert through.count("GET") >= 2, through.requests      # (two answers: an offset taken)
    assert server_clock.skew() is None, server_clock.skew()
    assert server_clock.dated()
    assert "ahead of this machine" not in err, err


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_retry_after_date_without_a_zone_is_read_as_utc(emulator, through, west, waits,
                                                         form):
    from drivestage.drive import connect

    store = connect(api_root=through.url, token="test-token")
    folder = store.make_folders("exp")
    emulator.faults.inject("GET", r"/files", status=503,
                           headers={"Retry-After": FORMS[form](time.time() + 10)})
    assert store.list(folder) == []
    assert len(waits) == 1, waits
    assert 7.5 <= waits[0] <= 11.5, waits


def test_a_zoneless_date_at_the_end_of_year_9999_east_of_utc_is_heard():
    """An answer dated 31 Dec 9999, 23:59:59 ``-0000`` is heard as that instant in UTC, where
    this machine's zone is east of it (read as local time, it was in year 10000: no date,
    and Drive's clock not heard)."""
    import httplib2

    from drivestage.drive import server_clock

    answer = httplib2.Response({"status": "200", "date": "Fri, 31 Dec 9999 23:59:59 -0000"})
    with _zone("EST-14"):
        server_clock.heard(answer)
        server_clock.heard(answer)
        heard = server_clock.drive_clock()
    assert heard is not None and abs(heard - 253402300799.0) < 60, heard
