"""``drivestage mirror`` run in this process (a notebook, CliRunner) and sent SIGTERM at a
chosen moment: once its first push has put ``results.csv`` on Drive (so its handlers are in
place), a test's ``act()`` runs, then the signal comes."""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Callable

from click.testing import CliRunner, Result

from drivestage.cli import cli

from test_signals_cli import _live


def mirror_signalled(emulator, src, act: Callable[[], None], *args: str) -> Result:
    """The mirror of ``src`` into drive:Models/logs (``--every 3600 --chunk-size 256KiB`` and
    ``args``), SIGTERMed after ``act()``; the emulator's throttle is cleared after it."""
    failed: list[BaseException] = []

    def adversary() -> None:
        try:
            deadline = time.monotonic() + 30
            while "results.csv" not in _live(emulator):   # pushed: the handler is in place
                assert time.monotonic() < deadline, "the first push never sent results.csv"
                time.sleep(0.01)
            act()
        except BaseException as exc:
            failed.append(exc)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=adversary)
    thread.start()
    try:
        result = CliRunner().invoke(cli, ["mirror", str(src), "drive:Models/logs", "--every",
                                          "3600", "--chunk-size", "256KiB", *args])
    finally:
        thread.join()
        emulator.faults.throttle(None)
    assert not failed, failed
    return result
