"""The ``trainer`` command line: one error handler, subcommands in sibling modules.

Exit codes: 0 success, 1 error, 2 usage or config error. ``TRAINER_DEBUG=1`` shows tracebacks.
"""
from __future__ import annotations

import logging
import sys
import traceback

import click

from drivestage.stderr_tail import Tail, refuse_nul, say
from drivestage.stdout_sink import Sink, sunk
from drivestage.errors import DriveStageError, debug_on
from drivestage.paths import printable, printable_lines
from trainer.errors import TrainerError


def error_line(exc: TrainerError | DriveStageError) -> str:
    """The ``Error: ...`` text ``trainer`` prints for ``exc``. Escaped as drivestage's own
    commands escape theirs: an error from Drive quotes its titles and ids, anybody's text,
    and a control character or ANSI escape in one reached the terminal raw through here."""
    one_line = isinstance(exc, DriveStageError) and not exc.multiline
    return f"Error: {printable(str(exc)) if one_line else printable_lines(str(exc))}"


class _BesideBars(logging.StreamHandler):
    """A line logged while a progress bar is drawn goes on a line of its own (``tqdm.write``:
    the bar cleared, the line written, the bar drawn again below it). The bar ends without a
    newline, and a log file (``trainer train 2> log``) or a notebook read ``…it/s,
    loss=…]INFO trainer…``: ``train.log_period``'s lines glued to the bar's end (attacktr29)."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        if not getattr(tqdm, "_instances", None):   # (no bar: as any handler)
            super().emit(record)
            return
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:   # (as StreamHandler: said on stderr, never raised into training)
            self.handleError(record)


class _Printable(logging.Formatter):
    """Log lines with control characters, newlines included, escaped: they name Drive titles
    and ids, anybody's text, and a title's newline made a line of its own choosing. (No
    trainer log line spans lines; a traceback is formatted apart and kept as it is.)"""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


class _Group(click.Group):
    def make_context(self, *args, **kwargs) -> click.Context:
        refuse_nul(args[1] if len(args) > 1 else kwargs.get("args"))
        # A Ctrl-C while click reads the arguments ends as one during a command does.
        try:
            with sunk():   # (--help, --version on a full disk: drivestage.cli.group's)
                return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            raise click.exceptions.Exit(130) from None
        except DriveStageError as exc:   # (standard output failed: stdout_sink)
            say(error_line(exc), Tail(sys.stderr))
            raise click.exceptions.Exit(exc.exit_code) from None

    def invoke(self, ctx: click.Context):
        # (stderr remembers its last character: a progress bar leaves its line open, and the
        # Error: line after it read `…100%|███| Error: …` in a log file or notebook: ux35)
        tail = Tail(sys.stderr)
        sys.stderr = tail
        sink = sys.stdout = Sink(sys.stdout)   # (a full disk: one line, drivestage.stdout_sink)
        try:
            return super().invoke(ctx)
        except (TrainerError, DriveStageError) as exc:
            if debug_on("TRAINER_DEBUG"):
                # The traceback asked for, with the error's own exit code (a ConfigError's
                # 2 was 1, Python's for any exception that ends a program: ux35).
                tail.end_line()
                traceback.print_exc()
            else:
                say(error_line(exc), tail)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            from drivestage.stop_signals import Stopped   # (a SIGTERM, a SIGHUP: status's)

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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output.")
@click.version_option(package_name="drivestage")
def cli(verbose: int) -> None:
    """Train YOLOv4-tiny on VOC-format data; checkpoints mirrored to Drive; automatic resume."""
    level = logging.INFO if verbose == 0 else logging.DEBUG
    handler = _BesideBars(sys.stderr)
    handler.setFormatter(_Printable("%(levelname)s %(name)s: %(message)s"))
    for name in ("trainer", "drivestage"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(level if name == "trainer" else max(level, logging.WARNING))
        log.propagate = False


#: Whether the command runs as the ``trainer`` program (:func:`main`), the whole process: a
#: command stopped by SIGTERM ignores a repeat from then on, as it says its line and exits
#: (:func:`drivestage.stop_signals.as_ctrl_c`'s ``program``).
_AS_PROGRAM = False


def main() -> None:
    """Console-script entry point."""
    global _AS_PROGRAM
    _AS_PROGRAM = True
    cli(prog_name="trainer")


from trainer.cli import data as _data  # noqa: E402,F401
from trainer.cli import infer as _infer  # noqa: E402,F401
from trainer.cli import train as _train  # noqa: E402,F401
