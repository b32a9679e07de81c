"""A request's JSON body (metadata, a control call's arguments), parsed at a bounded cost.

The body's bytes are bounded already (:data:`wire.MAX_JSON_BODY`, 1 MiB), but parsing
multiplies them: 1 MiB of ``[[],[],...]`` became 25 MB of Python objects, per request
being served (attack47, emul48). Before :func:`json.loads` the body is counted: its strings
and structural characters (``[]{},:``), at most :data:`MAX_JSON_TOKENS` of them, nested at
most :data:`MAX_JSON_DEPTH` deep. Drive's own metadata never comes near either: a file holds
at most 100 custom properties of 124 bytes (key and value together), each about 14 tokens
(1,400 in all), its ``indexableText`` is one string of at most 128 KB, and the deepest
field of a v2 File resource is 3 levels down (``imageMediaMetadata.location.altitude``).
A body past a bound is answered 400 ``badRequest``, the reason Drive's error guide gives
for a value it cannot take, without being parsed.
"""
from __future__ import annotations

import json
import re
from typing import Any

from drivestage.emulator.errors import EmulatorApiError

#: The most strings and structural characters a JSON body may hold: with each string or
#: container then of a few hundred bytes of Python objects at most, parsing 1 MiB costs a
#: few MB, not 25.
MAX_JSON_TOKENS = 10_000
#: The deepest a JSON body may nest arrays and objects.
MAX_JSON_DEPTH = 32

# A whole string (escapes included), or one structural character. What neither matches
# (numbers, literals, white space) is skipped over in C. A string never closed runs to the
# body's end (JSON stops there too): failing instead, it was tried again from each later
# ``"``, each try to the end, and ``"\"\"…`` took hours of a request thread (attackint48).
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)|[][{},:]', re.DOTALL)
_OPEN, _CLOSE = frozenset(b"[{"), frozenset(b"]}")

TOO_DEEP = "The request is nested too deeply."


def check_json_cost(raw: bytes) -> None:
    """Refuse (400 ``badRequest``) a body holding more than :data:`MAX_JSON_TOKENS` strings
    and structural characters or nested deeper than :data:`MAX_JSON_DEPTH`; looks at no
    more than ``MAX_JSON_TOKENS + 1`` of them, whatever the body."""
    tokens = depth = 0
    for m in _TOKEN.finditer(raw):
        tokens += 1
        if tokens > MAX_JSON_TOKENS:
            raise EmulatorApiError(
                400, "badRequest", f"The request's JSON holds more than {MAX_JSON_TOKENS:,} "
                                   "strings, brackets and separators (Drive metadata holds a "
                                   "few hundred: at most 100 properties of 124 bytes).")
        first = raw[m.start()]
        if first in _OPEN:
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise EmulatorApiError(400, "badRequest", TOO_DEEP)
        elif first in _CLOSE:
            depth -= 1


def parse_json(raw: bytes, what: str = "Parse Error") -> Any:
    """``raw`` parsed, once its cost is checked (:func:`check_json_cost`); 400
    ``parseError`` ``what`` when it is not JSON."""
    check_json_cost(raw)
    try:
        return json.loads(raw)
    except ValueError:   # (UnicodeDecodeError and int digits past Python's limit too)
        raise EmulatorApiError(400, "parseError", what)
