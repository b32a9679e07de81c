"""The console scripts' entry points (``drivestage``, ``python -m drivestage``; ``trainer``
uses :func:`interruptible` too).

A command's modules load inside :func:`interruptible`, not before it: a Ctrl-C while they
load (40-80 ms after the interpreter starts) then ends as one at any later moment does,
``Interrupted.`` and exit code 130, not a traceback. ``drivestage mirror`` also holds a
SIGTERM or SIGHUP that comes meanwhile, until its handlers take it
(:mod:`drivestage.held_signals`): it then makes its final push, where the signal used to
kill it. Nothing else of the package is imported here, and nothing at all before that
``try`` (its own helpers load inside it; ``drivestage/__main__.py`` guards this module's
import): what is left outside is the interpreter's own start.

A standard stream closed when the process starts (``2>&-``, ``>&-``, a launcher that closes
them) is opened on the null device first (:func:`open_closed_streams`).
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # (typing loads in 5-10 ms, outside interruptible's try: not at run time)
    from types import ModuleType
    from typing import Sequence


def interruptible(module: str, *, hold: bool = False) -> None:
    """Import ``module`` and run its ``main()``; a Ctrl-C during the import prints
    ``Interrupted.`` and exits 130 (the command's own handler takes over once it runs), as
    does one that comes before that handler or after it (the command's own start, its
    modules' and this module's helpers loading, its end). ``hold``: SIGTERM and SIGHUP are
    held for the command (:mod:`drivestage.held_signals`)."""
    # Everything from here on is inside the try: a Ctrl-C in the first 100 ms of a
    # `python -m drivestage` that landed as the helpers below loaded (typing, threading,
    # contextlib: this module imported them before the try), or in the command's own start
    # before its handler (cli.main's heap tuning), ended in a KeyboardInterrupt traceback.
    held: ModuleType | None = None
    try:
        open_closed_streams()
        from drivestage import held_signals, lost_interrupts

        held = held_signals
        if hold:
            held_signals.hold()
        with lost_interrupts.kept():   # (a Ctrl-C raised in a finalizer as the command loads)
            run = importlib.import_module(module).main
            run()
    except KeyboardInterrupt:
        interrupted()
    except SystemExit as end:
        if end.code == 130:   # (the command said "Interrupted.")
            exit_code_kept()
        raise
    finally:
        if held is not None:
            held.release()


def interrupted() -> None:
    """Say ``Interrupted.`` and exit 130: a Ctrl-C before the command's handler took it (or
    once it ended). Standard error may be closed (``2>&-``) that early."""
    if sys.stderr is not None:
        try:
            sys.stderr.write("Interrupted.\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    exit_code_kept()
    sys.exit(130)


def exit_code_kept() -> None:
    """Have the process end with exit code 130 as said, not by SIGINT. CPython 3.11 kills
    itself by SIGINT after its finalization when it noted a KeyboardInterrupt leaving the
    ``-m`` module run (``_Py_UnhandledKeyboardInterrupt``); about 1 in 50 real ``python -m
    drivestage pull`` runs given a Ctrl-C 100-250 ms in had it noted while SystemExit(130)
    left runpy (no traceback, ``sys.last_value`` unset): ``Interrupted.`` then death by
    SIGINT (-2 to ``subprocess``: sigexit52). An exit callback (they run before that look)
    clears the note. A shell shows 130 either way; Python and CI
    runners saw a signal death for a Ctrl-C the command had handled."""
    import atexit

    atexit.register(_clear_unhandled_note)


def _clear_unhandled_note() -> None:
    try:
        import ctypes

        ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt").value = 0
    except (ImportError, ValueError, AttributeError, OSError):   # (3.12+: not exported)
        pass


def open_closed_streams() -> None:
    """Open the null device on each of descriptors 0, 1 and 2 that is closed, and give
    Python a stream for it. Started with standard error closed (``2>&-``), Python's
    ``sys.stderr`` was None and every command died at its first status line, exit 1 and
    no word (a push, a pull, a mirror before its first push, a training run: attackcli40);
    and the first file a command opened took the free descriptor, where a child process's
    or a C library's messages for standard error would have been written into it."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)   # (the lowest free descriptor: this one)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:
            stream = open(fd, "r" if fd == 0 else "w", buffering=1 if fd == 2 else -1,
                          encoding="utf-8", errors="backslashreplace", closefd=False)
            setattr(sys, name, stream)
            if getattr(sys, f"__{name}__") is None:
                setattr(sys, f"__{name}__", stream)


def _command(args: Sequence[str]) -> str:
    """The command ``drivestage ARGS`` runs: the first argument that is no option (the
    group's options, -v, --version, --help, take no value)."""
    return next((a for a in args if not a.startswith("-")), "")


def main() -> None:
    """``drivestage``."""
    # Only mirror: a SIGTERM must end it after a final push, even one in its first 0.3 s;
    # every other command dies of one that comes while it loads, with nothing begun (each
    # takes them from its function's start on: drivestage.cli.options.stops_as_ctrl_c).
    try:
        mirror = _command(sys.argv[1:]) == "mirror"
    except KeyboardInterrupt:   # (before interruptible's try: as one inside it)
        interrupted()
    interruptible("drivestage.cli", hold=mirror)
