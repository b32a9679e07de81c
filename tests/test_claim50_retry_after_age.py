"""claim50: a ``Retry-After`` in an answer a cache kept (its ``Age``).

A cache that serves an answer it stored says how long it kept it (``Age``, RFC 9111 4.2.3);
its ``Date`` is when Drive made it. A wait Drive asked for then is partly spent by the time
the answer arrives: ``Retry-After: 60`` kept 50 s leaves 10 s (RFC 9110 10.2.3 counts the
delay from the answer; the answer is 50 s old), and a ``Retry-After`` date is read against
Drive's clock *now*, the ``Date`` plus the ``Age`` (clock49 reads Drive's clock so), not the
``Date`` alone. Before, both waited the whole 60 s (the retry policy's cap 120 s). An ``Age``
that cannot be read takes nothing off (the longer wait: the safe side); an ``Age`` past the
wait leaves none but the policy's own backoff.

The real PyDrive2 stack through a small proxy (tests/_proxy.py) in front of the emulator,
whose rule makes each refusal a cache's replay (``Date`` back by the ``Age``); the emulator
answers 503 with the ``Retry-After``. The waits recorded, not slept."""
from __future__ import annotations

import email.utils
import time

import pytest

from _proxy import Reply
from drivestage.drive import retry, server_clock

KEPT = 50


def _cached(age: str, back: int):
    """A cache's replay of a refusal: its ``Date`` ``back`` s earlier, its ``Age`` ``age``."""
    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        if status < 400:
            return Reply(status, headers, [body])
        out = {k: v for k, v in headers.items() if k.lower() != "date"}
        date = email.utils.parsedate_to_datetime(headers["Date"]).timestamp() - back
        out["Date"] = email.utils.formatdate(date, usegmt=True)
        out["Age"] = age
        return Reply(status, out, [body])
    return mutate


@pytest.fixture
def waits(monkeypatch):
    """The retry waits, recorded (not slept); Drive's clock as heard put back after."""
    for name in ("_dated", "_behind", "_warned", "_pending_reading"):
        monkeypatch.setattr(server_clock, name, getattr(server_clock, name))
    recorded: list[float] = []
    monkeypatch.setattr(retry, "_sleep", recorded.append)
    monkeypatch.setenv("DRIVESTAGE_RETRY_JITTER", "0")
    return recorded


def _date_in(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


@pytest.mark.parametrize("form", ["seconds", "date"])
@pytest.mark.parametrize("age, left", [(str(KEPT), 10.0), ("75", 0.0), ("soon", 60.0)],
                         ids=["kept-50s", "kept-past-it", "age-unread"])
def test_a_cached_refusals_wait_is_less_what_the_cache_kept(emulator, through, waits, form,
                                                           age, left):
    from drivestage.drive import connect

    store = connect(api_root=through.url, token="test-token")
    folder = store.make_folders("exp")
    # Drive asked, KEPT s ago, for 60 s (as seconds; as a date: 60 s after the answer's Date).
    asked = "60" if form == "seconds" else _date_in(60 - KEPT)
    through.on("GET", "", _cached(age, KEPT))
    emulator.faults.inject("GET", r"/files", status=503, headers={"Retry-After": asked})
    assert store.list(folder) == []
    assert len(waits) == 1, waits
    assert abs(waits[0] - left) <= 1.5 or (left == 0.0 and waits[0] < 1.5), waits
