"""Who holds a push lock: the message of a push that waits names the other one.

``flock`` does not say who holds a lock. A push that waited said only "another push into …
is running on this machine": a user could not tell which process to look at, and a wait that
did not end (a mirror suspended with Ctrl-Z, in another terminal) could not be traced
(lock28). So each process that takes a lock also writes a small holder file beside it,
``<lock>.<namespace tag>-<pid>.who`` (one line of JSON: pid, host, since, command), removed
when it lets go. A waiter reads those of the lock; a file whose process is gone (SIGKILLed:
nothing removed it) is passed over, and removed by the next process that holds the lock
alone. Only for the message: a holder file never decides who may lock.
"""
from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
from typing import Any, Optional

from drivestage.interrupts import deferred
from drivestage.paths import printable
from drivestage.shell_words import shell_word
from drivestage.temps import namespace_tag

#: Longest command shown (an argv can be long: a notebook's kernel).
COMMAND_CHARS = 200
#: Most holders named in one message (shared holders: many training runs).
SHOWN = 3
_SUFFIX = ".who"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)   # (not on Windows)


def claim(folder: str, stem: str) -> Optional[str]:
    """Write this process's holder file of the lock ``stem`` in ``folder``; its path, or
    None when it cannot be written (a full disk: the message only loses its name)."""
    path = os.path.join(folder, f"{stem}.{namespace_tag()}-{os.getpid()}{_SUFFIX}")
    record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
              "start": _start(os.getpid()), "command": _command()}
    with deferred():   # (a Ctrl-C between the open and the close would leave it open)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW
                         | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError:
            return None
        try:
            os.write(fd, json.dumps(record).encode())
        except OSError:
            pass
        finally:
            os.close(fd)
    return path


def release(path: Optional[str]) -> None:
    """Remove a holder file :func:`claim` wrote (in this process: a forked child that goes
    on through its parent's lock block leaves the parent's alone)."""
    if path and path.endswith(f"-{os.getpid()}{_SUFFIX}"):
        try:
            os.unlink(path)
        except OSError:
            pass


def sweep(folder: str, stem: str, mine: Optional[str]) -> None:
    """Remove the holder files of ``stem`` but ``mine``: called by the one process that holds
    the lock alone, so every other one is a dead process's."""
    for name in _names(folder, stem):
        path = os.path.join(folder, name)
        if path != mine:
            try:
                os.unlink(path)
            except OSError:
                pass


def described(folder: str, stem: str) -> str:
    """`` (pid 4242 on host, since 2026-12-05 04:50:12 UTC: drivestage push ./runs
    drive:runs)``: who holds the lock ``stem``, as their holder files say; "" when none is
    known."""
    found = []
    for name in _names(folder, stem):
        record = _read(os.path.join(folder, name))
        if record is not None and _live(name, record):
            found.append(record)
    found.sort(key=lambda r: r["since"])
    shown = [_one(r) for r in found[:SHOWN]]
    more = f"; {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    return f" ({'; '.join(shown)}{more})" if shown else ""


def _one(record: dict[str, Any]) -> str:
    """One holder as said; its host and command escaped and cut (they are any process's
    text, shown on another terminal: an escape sequence in a folder name reached argv)."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record["since"]))
    stopped = ", stopped (Ctrl-Z: fg it, or end it)" if _state(record["pid"]) == "T" else ""
    return (f"pid {record['pid']} on {printable(_cut(record['host']))}, since {when}{stopped}: "
            f"{printable(_cut(record['command']))}")


def _cut(text: str) -> str:
    return text if len(text) <= COMMAND_CHARS else text[:COMMAND_CHARS - 1] + "…"


def _names(folder: str, stem: str) -> list[str]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(n for n in names if n.startswith(stem + ".") and n.endswith(_SUFFIX))


def _read(path: str) -> Optional[dict[str, Any]]:
    """A holder file's record, when it is one (a file of a few hundred bytes, not a link)."""
    with deferred():   # (as in claim)
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
                         | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        try:
            data = os.read(fd, 4096)
        except OSError:
            return None
        finally:
            os.close(fd)
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):   # (4 KiB of "[": was a traceback, mount52)
        return None
    ok = isinstance(record, dict) and type(record.get("pid")) is int and \
        0 < record["pid"] < 2 ** 31 and _a_time(record.get("since")) and \
        all(isinstance(record.get(k), str) for k in ("host", "command"))
    return record if ok else None


def _a_time(since: Any) -> bool:
    """A time a clock can show (a lying file's 1e300 or NaN ended the wait in a traceback
    from ``time.gmtime``)."""
    return type(since) in (int, float) and math.isfinite(since) and 0 <= since < 2 ** 33


def _live(name: str, record: dict[str, Any]) -> bool:
    """Whether the holder file's process still runs: asked of the kernel for one of this
    machine's pid namespace (the same pid, started at the same moment); one of another
    machine or container (an NFS home) cannot be asked: taken as live."""
    tag = name[:-len(_SUFFIX)].rsplit(".", 1)[-1].split("-", 1)[0]
    if tag != namespace_tag():
        return True
    pid = record["pid"]
    if pid == os.getpid():
        return False   # (a thread of this process: said as "in this process")
    start = _start(pid)
    if start is None and record.get("start") is None:   # no /proc (macOS): the pid alone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return True
    return start is not None and start == record.get("start")


def _stat(pid: int) -> Optional[list[str]]:
    """The fields of /proc/<pid>/stat after the command's name; None when gone or unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2:].decode("ascii", "replace").split()


def _start(pid: int) -> Optional[str]:
    """When the process started, in clock ticks since boot (a pid reused is another one)."""
    fields = _stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def _state(pid: int) -> str:
    fields = _stat(pid)
    return fields[0] if fields else ""


def _command() -> str:
    """This process's command line, as a user would type it (``drivestage push …``)."""
    argv = list(sys.argv) or [""]
    prog = os.path.basename(argv[0])
    if prog == "__main__.py":   # python -m drivestage
        prog = os.path.basename(os.path.dirname(argv[0]))
    # (each as a shell reads it back: a newline in a path was shown as ``'a\x0ab'``, another
    # path when copied; ``$'a\x0ab'`` is the path: mount52)
    return _cut(" ".join([prog or sys.executable] + [shell_word(a) for a in argv[1:]]))
