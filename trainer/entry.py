"""The ``trainer`` console script's entry point: its command modules load where a Ctrl-C
ends as it does during a command (see :mod:`drivestage.entry`)."""
from __future__ import annotations

from drivestage.entry import interruptible


def main() -> None:
    """``trainer``."""
    interruptible("trainer.cli")
