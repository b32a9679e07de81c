"""The drivestage CLI run in-process, as most tests run it."""
from __future__ import annotations

import os
from typing import Any

from click.testing import CliRunner

from drivestage.cli import cli


def run(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def ok(*args: str) -> str:
    """Run the CLI in-process; it must exit 0. Returns its stdout."""
    code, out, err = run(*args)
    assert code == 0, err
    return out


def child_env(emulator: Any) -> dict[str, str]:
    """The environment of a drivestage child process against ``emulator`` (retries of a
    millisecond, without jitter)."""
    return dict(os.environ, DRIVESTAGE_API_ROOT=emulator.url, DRIVESTAGE_TOKEN="test-token",
                DRIVESTAGE_RETRY_BASE="0.001", DRIVESTAGE_RETRY_JITTER="0")


def summed(data: bytes) -> str:
    """What a pull's summary names for ``data`` it verified, downloaded here from the emulator
    (Drive's md5 and SHA-256 both right): the checksum this machine verifies with
    (:func:`drivestage.checksums.choose`) and its value, as in ``sha256 9a07…``."""
    import hashlib

    from drivestage.checksums import choose
    from drivestage.store import RemoteEntry

    check = choose(RemoteEntry(id="-", name="-", is_dir=False, size=len(data),
                               md5=hashlib.md5(data).hexdigest(),
                               sha256=hashlib.sha256(data).hexdigest()))
    assert check is not None
    return f"{check.name} {check.expected}"


def warning_lines(err: str, word: str) -> list:
    """The ``WARNING`` lines of ``err`` that hold ``word``."""
    return [line for line in err.splitlines() if line.startswith("WARNING") and word in line]
