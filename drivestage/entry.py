"""The console scripts' entry points (``drivestage``, ``python -m drivestage``; ``trainer``
uses :func:`interruptible` too).

A command's modules load inside :func:`interruptible`, not before it: a Ctrl-C while they
load (40-80 ms after the interpreter starts) then ends as one at any later moment does,
``Interrupted.`` and exit code 130, not a traceback. Nothing else of the package is imported
here.
"""
from __future__ import annotations

import importlib
import sys


def interruptible(module: str) -> None:
    """Import ``module`` and run its ``main()``; a Ctrl-C during the import prints
    ``Interrupted.`` and exits 130 (the command's own handler takes over once it runs)."""
    try:
        run = importlib.import_module(module).main
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)
    run()


def main() -> None:
    """``drivestage``."""
    interruptible("drivestage.cli")
