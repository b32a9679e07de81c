"""``drivestage mirror`` run in this process (a notebook, CliRunner) and sent SIGTERM at a
chosen moment: once its first push has put ``results.csv`` on Drive (so its handlers are in
place), a test's ``act()`` runs, then the signal comes. And what Drive holds, and the upload
chunks the emulator is sent, as the signal tests watch them."""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Callable, Sequence

from click.testing import CliRunner, Result

from drivestage.cli import cli


def live_files(emu) -> dict[str, str]:
    """Title -> md5 of every file on the emulator's Drive that is not trashed (a title
    twice would be a duplicate: it fails here)."""
    files = [f for f in emu.files()
             if not f["labels"]["trashed"] and not f["mimeType"].endswith(".folder")]
    titles = [f["title"] for f in files]
    assert len(titles) == len(set(titles)), titles
    return {f["title"]: f["md5Checksum"] for f in files}


def chunks_watched(emulator, monkeypatch, nth: int) -> tuple[threading.Event, threading.Event]:
    """Two events: set as the emulator is sent an upload's first chunk, and its ``nth``
    (every request watched as it arrives, before the emulator's own fault plan)."""
    first, reached = threading.Event(), threading.Event()
    chunk_puts: list[str] = []
    plan = emulator.faults.plan

    def observed(method, target):
        if method == "PUT" and "upload_id=" in target:
            chunk_puts.append(target)
            first.set()
            if len(chunk_puts) == nth:
                reached.set()
        return plan(method, target)

    monkeypatch.setattr(emulator.faults, "plan", observed)
    return first, reached


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
        while "results.csv" not in live_files(emulator):   # pushed: the handler is in place
            assert time.monotonic() < deadline, "the first push never sent results.csv"
            time.sleep(0.01)
        act()

    try:
        return invoke_then_sigterm(["mirror", str(src), "drive:Models/logs", "--every", "3600",
                                    "--chunk-size", "256KiB", *args], adversary)
    finally:
        emulator.faults.throttle(None)
