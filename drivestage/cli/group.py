"""The ``drivestage`` click group and the one place that turns exceptions into an
``Error: ...`` line and an exit code: 0 success, 1 a drivestage error, 2 a usage error,
130 interrupted. Set ``DRIVESTAGE_DEBUG=1`` to see tracebacks.
"""
from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Any

import click

from drivestage.stderr_tail import Tail, refuse_nul, say
from drivestage.stdout_sink import Sink, sunk
from drivestage.errors import DriveStageError, debug_on
from drivestage.lost_mounts import lost_mount_error
from drivestage.paths import printable, printable_lines

EPILOG = """\b
Examples:
  drivestage pull drive:VOC_datasets/VOC07+12+test.zip ./data --extract
  drivestage push logs/ drive:Models/yolov4-tiny/logs --keep-last 3 --keep-best 1 --metric map50 --mode max
  drivestage mirror logs/ drive:Models/yolov4-tiny/logs --every 300 --keep-last 3
  drivestage emulator --port 8765 --data-dir /tmp/drive

\b
Exit codes: 0 success, 1 error, 2 usage error, 130 interrupted (Ctrl-C; mirror: a second signal);
143 SIGTERM, 129 SIGHUP (ended as a Ctrl-C ends it; mirror: a final push, then 0).
"""


#: Set by the console script (:func:`drivestage.cli.main`): the command is the whole
#: process. Run any other way (a notebook, click's CliRunner, ``cli.main()`` in a program of
#: its own) it is a guest in the host's process, which it must never end (os._exit).
_AS_PROGRAM = False


def as_program() -> bool:
    """Whether this command runs as the ``drivestage`` program (its console script or
    ``python -m drivestage``), which may end the process itself."""
    return _AS_PROGRAM


def run_as_program() -> None:
    """Say that the command about to run is the whole process (the console script)."""
    global _AS_PROGRAM
    _AS_PROGRAM = True


class _Group(click.Group):
    """A group whose subcommands share one error handler."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        # A Ctrl-C while click reads the arguments (before invoke) ends as one during a
        # command does, not as click's "Aborted!" and exit code 1.
        refuse_nul(args[1] if len(args) > 1 else kwargs.get("args"))
        try:
            # (--help and --version print here, before invoke: on a full disk that was
            # click's OSError traceback, and with the reader gone, exit 1 and no word)
            with sunk():
                return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:
            say("Interrupted.", Tail(sys.stderr))
            raise click.exceptions.Exit(130) from None
        except DriveStageError as exc:   # (standard output failed: stdout_sink)
            say(error_line(exc), Tail(sys.stderr))
            raise click.exceptions.Exit(exc.exit_code) from None

    def invoke(self, ctx: click.Context) -> Any:
        tail = Tail(sys.stderr)
        sys.stderr = tail
        sink = sys.stdout = Sink(sys.stdout)
        try:
            return super().invoke(ctx)
        except DriveStageError as exc:
            if debug_on("DRIVESTAGE_DEBUG"):
                # The traceback asked for, and the exit code the error has without it (a
                # usage error's 2 was 1, Python's for any exception that ends a program).
                tail.end_line()
                traceback.print_exc()
            else:
                say(error_line(exc), tail)
            ctx.exit(exc.exit_code)
        except OSError as exc:
            # A FUSE mount (Colab's Drive) whose program ended under a command: one line
            # that says so, not a traceback of the first call that met it.
            lost = lost_mount_error(exc)
            if lost is None or debug_on("DRIVESTAGE_DEBUG"):
                tail.end_line()
                raise
            say(f"Error: {printable(lost)}", tail)
            ctx.exit(1)
        except KeyboardInterrupt as exc:
            from drivestage.stop_signals import Stopped   # (a SIGTERM, a SIGHUP: options)

            stopped = exc if isinstance(exc, Stopped) else None
            say(stopped.line() if stopped else "Interrupted.", tail)
            ctx.exit(stopped.exit_code if stopped else 130)
        except BaseException as exc:
            if not isinstance(exc, click.exceptions.Exit):   # (a traceback follows)
                tail.end_line()
            raise
        finally:
            if sys.stderr is tail:
                sys.stderr = tail.stream
            if sys.stdout is sink:
                sys.stdout = sink.stream


def error_line(exc: DriveStageError) -> str:
    """The ``Error: ...`` text a command prints for ``exc``: names from Drive are anybody's
    text, so control characters are escaped (kept as line breaks for a multi-line error)."""
    text = printable_lines(str(exc)) if exc.multiline else printable(str(exc))
    return f"Error: {text}"


class _Printable(logging.Formatter):
    """Log lines with control characters (newlines included) escaped: they name remote
    items, whose titles are anybody's text."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


def configure_logging(verbose: int) -> None:
    """Human status to stderr; WARNING by default so retries are visible."""
    level = logging.WARNING if verbose == 0 else (logging.INFO if verbose == 1 else logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Printable("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("drivestage")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


@click.group(cls=_Group, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="drivestage")
def cli(verbose: int) -> None:
    """Stage datasets from Google Drive and mirror checkpoints back, resumably and verified."""
    configure_logging(verbose)
