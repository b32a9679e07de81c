"""The ``drivestage`` click group and the one place that turns exceptions into an
``Error: ...`` line and an exit code: 0 success, 1 a drivestage error, 2 a usage error,
130 interrupted. Set ``DRIVESTAGE_DEBUG=1`` to see tracebacks.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from drivestage.errors import DriveStageError

EPILOG = """\b
Examples:
  drivestage pull drive:VOC_datasets/VOC07+12+test.zip ./data --extract
  drivestage push logs/ drive:Models/yolov4-tiny/logs --keep-last 3 --keep-best 1 --metric map50 --mode max
  drivestage mirror logs/ drive:Models/yolov4-tiny/logs --every 300 --keep-last 3
  drivestage emulator --port 8765 --data-dir /tmp/drive

\b
Exit codes: 0 success, 1 error, 2 usage error.
"""


class _Group(click.Group):
    """A group whose subcommands share one error handler."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DriveStageError as exc:
            if os.environ.get("DRIVESTAGE_DEBUG"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


def configure_logging(verbose: int) -> None:
    """Human status to stderr; WARNING by default so retries are visible."""
    level = logging.WARNING if verbose == 0 else (logging.INFO if verbose == 1 else logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
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
