"""A float option's range that refuses ``nan`` and ``inf``, for drivestage's and trainer's
commands.

``click.FloatRange(min=0)`` takes ``nan``: each of its bound checks is a comparison, and every
comparison with nan is false. ``trainer predict --nms nan`` then kept every box (NMS off,
twice the detections), ``--conf nan`` none, exit 0; ``drivestage emulator --latency nan``
held every request for good, ``--idle-timeout nan`` dropped every connection and
``--upload-session-ttl nan`` forgot every upload session at once (attack52). ``inf`` is no
number of seconds or share either (``--latency inf``: every request held for good).
"""
from __future__ import annotations

import math
from typing import Any, Optional

import click


class FiniteRange(click.FloatRange):
    """``click.FloatRange`` whose value must also be finite; the help shows the same range."""

    def convert(self, value: Any, param: Optional[click.Parameter],
                ctx: Optional[click.Context]) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number in the range {self._describe_range()}",
                      param, ctx)
        return number
