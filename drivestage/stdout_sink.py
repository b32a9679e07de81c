"""Standard output as the commands write to it (drivestage's and trainer's): a write that
fails for want of room or of a working disk (``drivestage ls --json drive:x > listing.json``
on a full disk, ``> /dev/full``) is one error line, not the ``OSError`` traceback of click's
echo (attackcli40). What a reader that went away (``| head -c 10``, a ``tee`` that ended)
does not take is dropped, as standard error's is (:mod:`drivestage.stderr_tail`), and the
command's own exit code stands: click's convention, 1 and no word, said a pull that had
staged its files had failed (``pull --json | head``), and ``ls``/``prune | head`` likewise,
while ``trainer train | head`` said 0 (leftovers41). A failed command keeps its code.
"""
from __future__ import annotations

import errno
import io
import os
import select
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from drivestage.stderr_tail import FULL_WAIT_S

from drivestage.errors import LocalFileError


class Sink:
    """``sys.stdout``, whose write errors other than a broken pipe raise
    :class:`~drivestage.errors.LocalFileError` (exit 1); after a broken pipe, what is
    written is dropped (:attr:`reader_gone`)."""

    def __init__(self, stream: Any):
        self._stream = stream
        #: Whether the reader went away (a broken pipe): the output goes nowhere since.
        self.reader_gone = False

    @property
    def stream(self) -> Any:
        """The stream it writes to."""
        return self._stream

    def write(self, text: str) -> int:
        if self.reader_gone:
            return len(text)
        try:
            if text and self._bytes_under():
                self._write_bytes(text)
                return len(text)
            wrote = self._stream.write(text)   # (None from some notebooks' streams)
            return len(text) if wrote is None else int(wrote)
        except BrokenPipeError:
            self._gone()
            return len(text)
        except OSError as exc:
            if not text:   # (click's probe of the stream, ``write("")``: /dev/full refuses
                return 0   # even that, unbuffered; the output itself meets it next)
            raise self._failed(exc) from None

    def _bytes_under(self) -> bool:
        """Whether the stream is a text layer over a binary buffer, as a process's standard
        output is (a notebook's stream may be anything: it is written as it asks)."""
        stream = self._stream
        return (isinstance(stream, io.TextIOWrapper)
                and isinstance(stream.buffer, (io.BufferedIOBase, io.RawIOBase)))

    def _write_bytes(self, text: str) -> None:
        """``text`` through the stream's binary buffer, every byte or an ``OSError``. A
        text stream drops what its buffer did not take: a write larger than the buffer that
        fills the disk half-way is a short count (the kernel's), not an error, and the rest
        was lost without a word (``ls --json drive:x > listing.json``: the file cut at
        8 KiB, exit 0: attackstream40). The next write of the rest meets the disk's error.
        A descriptor left non-blocking (a CI runner, a program sharing the pipe) answers
        EAGAIN while its reader is slow, not gone: the rest is written once it takes more
        (:meth:`_until_writable`); it was taken for a failed disk, the output cut half-way
        (``ls --json drive:x | jq …``: exit 1, attackcli41)."""
        stream = self._stream
        self._waiting(stream.flush)   # (what the text layer holds first, in order)
        data = memoryview(text.encode(stream.encoding or "utf-8", stream.errors or "strict"))
        while data:   # (bounded: each turn takes a byte or more, waits its bound, or raises)
            try:
                took = stream.buffer.write(data)
            except BlockingIOError as exc:   # (a buffered writer: what it took, kept)
                took = exc.characters_written
                if not took:
                    self._until_writable()
            else:
                if took is None:   # (a raw stream, PYTHONUNBUFFERED: it took nothing)
                    self._until_writable()
                elif not took:
                    raise OSError(errno.EIO, "the stream took none of the output")
            data = data[took or 0:]
        if getattr(stream, "line_buffering", False) and "\n" in text:
            self._waiting(stream.buffer.flush)

    def _until_writable(self) -> None:
        """Wait until standard output, non-blocking and full, takes more: up to
        :data:`~drivestage.stderr_tail.FULL_WAIT_S` (standard error's bound too), after which
        its reader counts as gone."""
        if not select.select([], [self._stream.fileno()], [], FULL_WAIT_S)[1]:
            raise OSError(errno.EAGAIN, f"it took nothing for {FULL_WAIT_S:.0f} s")

    def _waiting(self, flush: Callable[[], Any]) -> None:
        """``flush()``, again each time a non-blocking descriptor that was full takes more
        (a buffered writer writes what it can each time, keeping the rest)."""
        while True:   # (bounded: each turn flushes, waits its bound, or raises)
            try:
                flush()
                return
            except BlockingIOError:
                self._until_writable()

    def flush(self) -> None:
        if self.reader_gone:
            return
        try:
            if self._bytes_under():
                self._waiting(self._stream.flush)
            else:
                self._stream.flush()
        except BrokenPipeError:
            self._gone()
        except OSError as exc:
            raise self._failed(exc) from None

    def _gone(self) -> None:
        """The reader went away: from now on the output is dropped; the null device takes
        the descriptor, so that the interpreter's last flush of what the stream still
        holds does not fail again (an ``Exception ignored`` paragraph, exit 120)."""
        self.reader_gone = True
        _onto_null(self._stream)

    def __getattr__(self, name: str) -> Any:  # isatty, encoding, fileno, buffer...
        return getattr(self._stream, name)

    def _failed(self, exc: OSError) -> LocalFileError:
        """The error line for ``exc``. What the stream still holds is lost: the null device
        takes its descriptor's place, so the interpreter's last flush does not fail again
        (an ``Exception ignored`` paragraph, exit 120)."""
        where = ""
        try:
            where = f" ({os.readlink(f'/proc/self/fd/{self._stream.fileno()}')})"
        except (AttributeError, OSError, ValueError):   # (no descriptor, no /proc)
            pass
        _onto_null(self._stream)
        return LocalFileError(f"cannot write to standard output{where}: "
                              f"{exc.strerror or exc}; {_ADVICE.get(exc.errno or 0, _ELSEWHERE)}")


@contextmanager
def sunk() -> Iterator[Sink]:
    """``sys.stdout`` a :class:`Sink` within the block; the stream from before put back."""
    sink = sys.stdout = Sink(sys.stdout)
    try:
        yield sink
    finally:
        if sys.stdout is sink:
            sys.stdout = sink.stream


def _onto_null(stream: Any) -> None:
    """The null device onto ``stream``'s descriptor (none: nothing to mend), and what the
    stream holds flushed there."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
        stream.flush()
    except (OSError, ValueError):
        pass
    finally:
        os.close(null)


_ELSEWHERE = "send it elsewhere"
#: What to do, by the write's errno: "make room" was said of every error, a descriptor
#: opened for reading (``1< file``: EBADF) and a file-size limit included (attackstream40).
_ADVICE = {
    errno.ENOSPC: "make room where it goes, or send it elsewhere",
    errno.EDQUOT: "make room where it goes (a disk quota is reached), or send it elsewhere",
    errno.EFBIG: "raise the file-size limit (ulimit -f) or send it elsewhere",
    errno.EBADF: "it is not open for writing (1< where 1> was meant?); send it elsewhere",
}
