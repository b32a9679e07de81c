"""The drivestage CLI run in-process, as most tests run it."""
from __future__ import annotations

from click.testing import CliRunner

from drivestage.cli import cli


def run(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr
