"""``drivestage mirror`` run in this process (a notebook, CliRunner) and sent SIGTERM at a
chosen moment: once its first push has put ``results.csv`` on Drive (so its handlers are in
place), a test's ``act()`` runs, then the signal comes."""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Callable, Sequence

from click.testing import CliRunner, Result

from drivestage.cli import cli

from test_signals_cli import _live


def invoke_then_sigterm(args: Sequence[str], adversary: Callable[[], None]) -> Result:
    """``drivestage ARGS`` run in this process (CliRunner) while ``adversary()`` runs on a
    thread; once that ends (raised or not), a SIGTERM to this process. What the adversary
    raised fails the test; else the command's result."""
    failed: list[BaseException] = []

    def run_adversary() -> None:
        try:
            adversary()
        except BaseException as exc:
            failed.append(exc)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=run_adversary)
    thread.start()
    try:
        result = CliRunner().invoke(cli, list(args))
    finally:
        thread.join()
    assert not failed, failed
    return result


def mirror_signalled(emulator, src, act: Callable[[], None], *args: str) -> Result:
    """The mirror of ``src`` into drive:Models/logs (``--every 3600 --chunk-size 256KiB`` and
    ``args``), SIGTERMed after ``act()``; the emulator's throttle is cleared after it."""

    def adversary() -> None:
        deadline = time.monotonic() + 30
        while "results.csv" not in _live(emulator):   # pushed: the handler is in place
            assert time.monotonic() < deadline, "the first push never sent results.csv"
            time.sleep(0.01)
        act()

    try:
        return invoke_then_sigterm(["mirror", str(src), "drive:Models/logs", "--every", "3600",
                                    "--chunk-size", "256KiB", *args], adversary)
    finally:
        emulator.faults.throttle(None)
