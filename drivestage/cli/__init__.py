"""The ``drivestage`` command line.

Commands are thin over library calls: :mod:`~drivestage.cli.pull` (pull, ls, quota, auth),
:mod:`~drivestage.cli.push` (push, prune, dedupe), :mod:`~drivestage.cli.runs` (runs forget),
:mod:`~drivestage.cli.unread` (unread list, unread forget), :mod:`~drivestage.cli.mirror` and
:mod:`~drivestage.cli.emulator`, each registered on the group in
:mod:`~drivestage.cli.group`, the one place that turns exceptions into an ``Error: ...``
line and an exit code (0 success, 1 a drivestage error, 2 a usage error, 130 interrupted;
``DRIVESTAGE_DEBUG=1`` shows tracebacks).
"""
from __future__ import annotations

# Importing the command modules registers their commands on ``cli``.
from drivestage.cli import emulator as _emulator  # noqa: F401
from drivestage.cli import mirror as _mirror  # noqa: F401
from drivestage.cli import pull as _pull  # noqa: F401
from drivestage.cli import push as _push  # noqa: F401
from drivestage.cli import runs as _runs  # noqa: F401
from drivestage.cli import unread as _unread  # noqa: F401
from drivestage.cli.group import cli, configure_logging, run_as_program
from drivestage.heap import collect_less_often, skip_last_collection, tune_for_transfers
from drivestage.lost_interrupts import kept as lost_interrupts_kept

__all__ = ["cli", "configure_logging", "main"]


def main() -> None:
    """Console-script entry point."""
    # This process is ours: peak memory is the chunks in flight, and freed blocks are reused
    # rather than faulted in again (see heap.py).
    tune_for_transfers()
    collect_less_often()  # members' objects: far fewer collections (heap.py)
    run_as_program()  # and a command may end it at once (mirror's abandoned final push)
    try:
        with lost_interrupts_kept():  # a Ctrl-C raised in a finalizer (an import's) is not dropped
            cli(prog_name="drivestage")
    finally:  # (cli() ends by raising SystemExit): the process ends next
        skip_last_collection()
