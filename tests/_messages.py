"""Every message docs/troubleshooting.md quotes, made to happen.

Each ``### `…``` heading of the troubleshooting page names a message a user sees. A test in
one of the ``tests/test_messages_*.py`` modules makes the real code print it (the failure
raised where it is raised and caught where the commands catch it, or the warning logged
where it is logged) and hands the rendered text to :func:`shown`. The test is declared with
:func:`renders`, naming the headings it shows; ``tests/test_docs.py`` checks that every
heading has such a test and that no test names a heading the page lacks. So the page quotes
what users see, not a string that merely occurs somewhere in the source.
"""
from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
TROUBLE_MD = REPO / "docs" / "troubleshooting.md"

#: heading -> the tests (``module.function``) that show it; filled as the modules import.
TRIGGERS: dict[str, list[str]] = {}

_shown: set[str] = set()


def quoted_messages() -> list[str]:
    """The messages the troubleshooting page quotes: its ``### `…``` headings."""
    return re.findall(r"^### `(.+?)`", TROUBLE_MD.read_text(encoding="utf-8"), re.M)


def renders(*headings: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a test that shows ``headings``: it fails unless it calls :func:`shown` for
    each of them."""
    def decorate(test: Callable[..., Any]) -> Callable[..., Any]:
        for heading in headings:
            TRIGGERS.setdefault(heading, []).append(f"{test.__module__}.{test.__name__}")

        @functools.wraps(test)  # pytest reads the fixtures from the wrapped signature
        def run(*args: Any, **kwargs: Any) -> None:
            _shown.clear()
            test(*args, **kwargs)
            missing = [h for h in headings if h not in _shown]
            assert not missing, f"{test.__name__} never showed {missing}"
        return run
    return decorate


def fragments(heading: str) -> list[str]:
    """The stable parts of a quoted message: ``…`` stands for what changes."""
    return [f.strip() for f in heading.split("…") if f.strip()]


def shown(heading: str, text: str) -> None:
    """Assert that ``text`` (what a user saw) holds the heading's fragments in order."""
    at = 0
    for fragment in fragments(heading):
        found = text.find(fragment, at)
        assert found >= 0, f"{fragment!r} (of {heading!r}) is not in what was shown:\n{text}"
        at = found + len(fragment)
    _shown.add(heading)


def error_line(stderr: str) -> str:
    """The one ``Error:`` line a command printed, last on stderr (on a line of its own after
    a progress bar), with no traceback anywhere."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error: "), stderr
    assert sum(line.startswith("Error:") for line in lines) == 1, stderr
    assert "Traceback" not in stderr, stderr
    return lines[-1]


def command_error(*args: str, code: int = 1) -> str:
    """``drivestage ARGS`` run in this process: its one ``Error:`` line, after checking that
    it exited with ``code``."""
    from click.testing import CliRunner

    from drivestage.cli import cli

    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    return error_line(result.stderr)


def error_text(exc: BaseException) -> str:
    """What a command prints for ``exc``: drivestage's and trainer's own handlers render it."""
    from drivestage.errors import DriveStageError

    if isinstance(exc, DriveStageError):
        from drivestage.cli.group import error_line
        return error_line(exc)
    from trainer.cli import error_line as trainer_line
    return trainer_line(exc)  # type: ignore[arg-type]


def log_text(records: list[logging.LogRecord]) -> str:
    """Log records as the commands' log handler prints them, one per line."""
    from drivestage.cli.group import _Printable

    fmt = _Printable("%(levelname)s %(name)s: %(message)s")
    return "\n".join(fmt.format(r) for r in records)
