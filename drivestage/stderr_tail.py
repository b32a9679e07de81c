"""Standard error as the commands write to it, remembering whether a line is left open: a
progress bar ends without a newline (tqdm redraws it with ``\\r``), and the ``Error:`` line or
traceback after it must start on a line of its own, not read ``…100%|███| Error: …`` in a log
file or a notebook (drivestage's commands and trainer's share this).

It also outlives where it goes: once whatever read standard error is gone (``cmd 2>&1 |
head``, a ``tee`` or log collector that ended) or the disk of its file is full (``2>>
/var/log/mirror.log``), what follows is dropped, not raised. A progress bar's next redraw
or a status line raised ``BrokenPipeError`` or ``OSError`` (ENOSPC) where it was written: a
mirror skipped its final push at ``stopping: pushing once more`` or ended before its first,
a training run died at its bar's first update with nothing saved, and a push that was done
said 1 (attackcli40). Only the command's messages are lost, as they would be to a closed
terminal; its work, and its exit code, stay.
"""
from __future__ import annotations

import errno
import io
import os
import select
import sys
from typing import Any, Optional

import click


#: How long a write waits for a non-blocking standard error that is full to take more,
#: before its reader counts as gone (a terminal paused with Ctrl-S waits that long).
FULL_WAIT_S = 30.0


class Tail:
    """``sys.stderr``, remembering the last character written to it."""

    def __init__(self, stream: Any):
        self._stream = stream
        self.last = ""

    @property
    def stream(self) -> Any:
        """The stream it writes to."""
        return self._stream

    def write(self, text: str) -> int:
        if text:
            self.last = text[-1]
        try:
            fd = self._descriptor() if text else None
            if fd is None:
                return int(self._stream.write(text))
            self._write_fd(fd, text)
            return len(text)
        except OSError:
            self._lost()
            return len(text)

    def _descriptor(self) -> Optional[int]:
        """The descriptor under a text stream over bytes (a process's stderr), else None (a
        stream of its own: pytest's, a notebook's, click's test runner's)."""
        stream = self._stream
        if not isinstance(stream, io.TextIOWrapper):
            return None
        try:
            return int(stream.fileno())
        except (OSError, ValueError):
            return None

    def _write_fd(self, fd: int, text: str) -> None:
        """``text`` written to ``fd`` whole. A descriptor set non-blocking (by a CI runner or
        a shell sharing the terminal) answers EAGAIN while its reader is slow, not gone: the
        rest is written once it takes more, for up to :data:`FULL_WAIT_S` each time. That
        was taken for a reader gone, and every later line, the ``Error:`` line at the end
        too, went to the null device (attackstream40)."""
        stream = self._stream
        stream.flush()   # (what the text layer holds first, in order)
        data = memoryview(text.encode(stream.encoding or "utf-8",
                                      stream.errors or "backslashreplace"))
        while data:   # (bounded: each turn writes a byte or more, or waits its bound)
            try:
                data = data[os.write(fd, data):]
            except BlockingIOError:
                if not select.select([], [fd], [], FULL_WAIT_S)[1]:
                    raise OSError(errno.EAGAIN, f"standard error took nothing for "
                                  f"{FULL_WAIT_S:.0f} s") from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            self._lost()

    def _lost(self) -> None:
        """Send the rest to the null device: the pipe's reader is gone for good, or the
        disk cannot take more (see the module doc). The null device takes the descriptor's
        place, so that what the stream still holds, a child process's stderr and the
        interpreter's last flush (exit 120 where it failed) go there too, and the descriptor
        is never free for a file opened later to take."""
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, self._stream.fileno())
        except (AttributeError, OSError, ValueError):   # (no descriptor: a stream of its own)
            self._stream = open(os.devnull, "w", encoding="utf-8")
        finally:
            os.close(null)
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str) -> Any:  # isatty, encoding, fileno, buffer...
        return getattr(self._stream, name)

    def line_open(self) -> bool:
        """Whether the next message would continue someone else's line: anything but a
        newline last, except a carriage return on a terminal (a bar that cleared its line)."""
        if self.last in ("", "\n"):
            return False
        try:
            tty = bool(self._stream.isatty())
        except (AttributeError, ValueError):
            tty = False
        return not (tty and self.last == "\r")

    def end_line(self) -> None:
        """Finish a line left open (before a traceback Python prints)."""
        if self.line_open():
            try:
                self.write("\n")
                self.flush()
            except (OSError, ValueError):   # (a closed or broken stderr: nothing to mend)
                pass


def current() -> Optional[Tail]:
    """The :class:`Tail` that stands for ``sys.stderr`` now, if one does."""
    return sys.stderr if isinstance(sys.stderr, Tail) else None


def say(message: str, tail: Optional[Tail] = None) -> None:
    """``message`` (escaped by the caller: names from Drive are anybody's text) on stderr, on
    a line of its own."""
    tail = tail or current()
    click.echo(("\n" if tail is not None and tail.line_open() else "") + message, err=True)


def refuse_nul(args: Any) -> None:
    """Stop a command given an argument with a NUL byte, in one line, exit 2. No program
    gets one from a shell (execve ends each argument at it), but a notebook or program that
    runs the command in its own process may pass any string: each path met it as
    ``ValueError: embedded null byte``, a traceback (ux35)."""
    from drivestage.paths import printable

    for arg in args if isinstance(args, (list, tuple)) else ():
        if isinstance(arg, str) and "\0" in arg:
            say(f"Error: the argument '{printable(arg)}' holds a NUL byte (\\0): no path or "
                "name can; remove it")
            raise click.exceptions.Exit(2)
