"""The emulator's JSON cost check (emul48) scanned a body in time quadratic in its length
where a string never closes (attackint48): its pattern for a string failed at each ``"`` of
``"\\"\\"\\"…`` only at the body's end, then began again at the next one. 80 KB of it took
~50 s of one request thread (the GIL held: the whole emulator stalled); 1 MiB, the most a
body may hold, hours. json.loads alone refuses such a body at once. Now a string never
closed runs to the body's end in one pass (JSON stops there too), so the check is linear."""
from __future__ import annotations

import time

import pytest

from drivestage.emulator.errors import EmulatorApiError
from drivestage.emulator.json_body import check_json_cost, parse_json

#: Twice the pattern's bytes per step; 64 KB took ~15 s of CPU before.
STEPS = 32 * 1024


@pytest.mark.parametrize("step", [b'"\\', b'\\"'])
def test_a_body_whose_string_never_closes_is_checked_in_one_pass(step):
    raw = b'{"a":' + step * STEPS
    spent = time.thread_time()   # (this thread's CPU: the machine's load does not count)
    with pytest.raises(EmulatorApiError) as refused:
        parse_json(raw)
    spent = time.thread_time() - spent
    assert (refused.value.status, refused.value.reason) == (400, "parseError")
    assert spent < 1.0, f"{spent:.1f} s of CPU to check {len(raw):,} bytes"


def test_strings_and_separators_are_counted_as_before():
    check_json_cost(b'{"a":"x\\"y", "b":[1,2], "c":"\\\\", "d":"[{,:}]"}')
    with pytest.raises(EmulatorApiError) as refused:   # (10,001 tokens: 5,000 "" , pairs + [)
        check_json_cost(b"[" + b'"",' * 5000 + b"]")
    assert refused.value.reason == "badRequest"
    with pytest.raises(EmulatorApiError):   # (a string closed after an escaped backslash)
        check_json_cost(b'["\\\\",' + b"[" * 33 + b"]" * 33 + b"]")
