"""The ``trainer`` console script's entry point: its command modules load where a Ctrl-C
ends as it does during a command (see :mod:`drivestage.entry`)."""
from __future__ import annotations

import gc

from drivestage.entry import interruptible


def main() -> None:
    """``trainer``."""
    try:
        interruptible("trainer.cli")
    finally:
        _spare_the_last_collections()


def _spare_the_last_collections() -> None:
    """Collect this process's garbage now, then freeze what lives. The interpreter's end
    searched torch's 300,000 objects for cycles again and again as it took the modules apart:
    1.2 s of CPU after a run's last line, 2.5-2.8 s on a busy machine (more than a short run
    trained). What is collected here is what the end would have collected (finalizers run,
    files close); what lives is freed at the end as before, only not searched again."""
    gc.collect()
    gc.freeze()
