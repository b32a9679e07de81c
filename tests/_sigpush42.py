"""What the sigpush42 tests share: a drivestage command in a child process stopped by a
signal at a real moment of its work, and what a stopped command must not leave behind."""
from __future__ import annotations

import hashlib
import os
import signal
import time
from typing import Callable

from _child_waits import ended, repeated, until
from _cli import child_env
from _forkcli import PIPE, cli_server

#: (signal, exit code, the line the command ends with)
STOPS = [(signal.SIGTERM, 143, "Interrupted by SIGTERM."),
         (signal.SIGHUP, 129, "Interrupted by SIGHUP.")]

#: ``python -m drivestage`` under ``nohup`` (SIGHUP ignored from the start).
NOHUP = ("import signal, runpy, sys\n"
         "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
         "sys.argv = ['drivestage', *sys.argv[1:]]\n"
         "runpy.run_module('drivestage', run_name='__main__', alter_sys=True)\n")


def child(emulator, *args: str, script=None):
    """``drivestage ARGS`` in a child (forked with the CLI imported), against ``emulator``,
    with this process's DRIVESTAGE_STATE_DIR (the ``local_state`` fixture's)."""
    return cli_server().popen(list(args), env=child_env(emulator), stdout=PIPE, stderr=PIPE,
                              script=script)


def stale(state, locked: bool = True) -> list[str]:
    """What a command that ended left in the state folder that is no record: its locks'
    holder files (``*.who``, removed as it lets go of a lock) and atomic writes' temporary
    files (``*.tmp``). ``locked``: the command took locks there (else this looks at
    nothing)."""
    assert not locked or any(p.name.endswith(".lock") for p in state.rglob("*")), "no locks"
    return sorted(str(p.relative_to(state)) for p in state.rglob("*")
                  if p.name.endswith((".who", ".tmp")))


def live(emulator, under: str = "") -> list[tuple[str, str]]:
    """(name, md5) of every file on the emulator's Drive not in the trash, sorted (names
    repeat where copies do)."""
    return sorted((f["title"], f.get("md5Checksum", "")) for f in emulator.files()
                  if not f["labels"]["trashed"] and not f["mimeType"].endswith(".folder"))


def settled(emulator, seen: int) -> None:
    """Wait (bounded) until the emulator has answered, or given up on, every request since
    ``seen``: one the stopped command left held (a latency rule) is done on Drive after it
    ended, and done beside the rerun it could race it. Its latency is cut short: what it
    held the request for, the stop, is over."""
    emulator.faults.hurry()
    deadline = time.monotonic() + 30
    while any(not (r.status or r.error or r.duration) for r in emulator.requests[seen:]):
        assert time.monotonic() < deadline, "a request of the stopped command never ended"
        time.sleep(0.01)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def uploading(emulator, seen: int, size: int) -> Callable[[], bool]:
    """Whether, since request ``seen``, a chunk past the first of an upload of ``size`` bytes
    reached the emulator (the first is committed: the upload is half done)."""
    def ready() -> bool:
        for r in emulator.requests[seen:]:
            span = {k.lower(): v for k, v in r.headers.items()}.get("content-range", "")
            if r.method == "PUT" and span.endswith(f"/{size}") and \
                    not span.startswith("bytes 0-"):
                return True
        return False
    return ready


__all__ = ["NOHUP", "STOPS", "child", "ended", "live", "md5", "repeated", "settled", "stale",
           "until", "uploading"]
