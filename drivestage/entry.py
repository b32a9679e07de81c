"""The console scripts' entry points (``drivestage``, ``python -m drivestage``; ``trainer``
uses :func:`interruptible` too).

A command's modules load inside :func:`interruptible`, not before it: a Ctrl-C while they
load (40-80 ms after the interpreter starts) then ends as one at any later moment does,
``Interrupted.`` and exit code 130, not a traceback. ``drivestage mirror`` also holds a
SIGTERM or SIGHUP that comes meanwhile, until its handlers take it
(:mod:`drivestage.held_signals`): it then makes its final push, where the signal used to
kill it. Nothing else of the package is imported here.
"""
from __future__ import annotations

import importlib
import sys
from typing import Sequence

from drivestage import held_signals


def interruptible(module: str, *, hold: bool = False) -> None:
    """Import ``module`` and run its ``main()``; a Ctrl-C during the import prints
    ``Interrupted.`` and exits 130 (the command's own handler takes over once it runs).
    ``hold``: SIGTERM and SIGHUP are held for the command (:mod:`drivestage.held_signals`)."""
    if hold:
        held_signals.hold()
    try:
        try:
            run = importlib.import_module(module).main
        except KeyboardInterrupt:
            sys.stderr.write("Interrupted.\n")
            sys.exit(130)
        run()
    finally:
        held_signals.release()


def _command(args: Sequence[str]) -> str:
    """The command ``drivestage ARGS`` runs: the first argument that is no option (the
    group's options, -v, --version, --help, take no value)."""
    return next((a for a in args if not a.startswith("-")), "")


def main() -> None:
    """``drivestage``."""
    # Only mirror: a SIGTERM must end it after a final push, even one in its first 0.3 s;
    # every other command dies of it as it always did.
    interruptible("drivestage.cli", hold=_command(sys.argv[1:]) == "mirror")
