"""attack50: an ``Age`` no cache could mean (clock49's reading of it, claim50's use in a
``Retry-After``).

``server_clock.age_of`` took any run of ASCII digits: an ``Age`` of 400 nines (a broken or
hostile proxy) is ``float`` infinity, and the first answer heard with it set Drive's clock
"inf min ahead" (the warning said so), so ``server_clock.now()`` was infinity: a mirror's
claim was written ``…|inf|inf|…``, which every other machine reads as no one's (a dedupe
merged under the live mirror). RFC 9111 1.2.2 caps delta-seconds at 2^31 (68 years); an
answer said to be kept longer says nothing of Drive's clock now: unreadable, as an ``Age``
of ``soon`` is (its ``Date`` unheard; a ``Retry-After`` waited in full).

The real PyDrive2 stack (the CLI in this process) through a small proxy in front of the
emulator whose rule adds the ``Age`` to every answer."""
from __future__ import annotations

import pytest

from _cli import run
from _proxy import Reply


@pytest.mark.parametrize("age", ["9" * 400, str(2**31 + 1)], ids=["inf", "past-2^31"])
def test_an_age_past_what_a_cache_can_mean_dates_nothing(emulator, through, age):
    from drivestage.drive import server_clock

    def mutate(status: int, headers: dict, body: bytes) -> Reply:
        return Reply(status, {**headers, "Age": age}, [body])

    emulator.add_file("runs/a/x.bin", b"x" * 100)
    through.on("GET", "", mutate)
    code, out, err = run("ls", "drive:runs/a")
    assert code == 0, err
    assert "x.bin" in out and "ahead of this machine's clock" not in err, err
    assert server_clock.skew() is None and server_clock.drive_clock() is None
    assert server_clock.now() < 4e9
