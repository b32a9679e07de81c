"""Options and parameter types shared by the drivestage commands."""
from __future__ import annotations

import contextlib
import functools
import os
from typing import Any, Callable, Iterator, Optional, TypeVar

import click

from drivestage.errors import NotFoundError, PolicyError, UsageError
from drivestage.sizes import parse_size

F = TypeVar("F", bound=Callable[..., Any])

#: Appended to the help of every size option.
SIZE_HELP = "KB/MB/GB are powers of 1000; KiB/MiB/GiB and K/M/G powers of 1024"


class Size(click.ParamType):  # type: ignore[type-arg]  # generic only in click stubs
    """A byte size (:func:`drivestage.sizes.parse_size`): ``5GB``, ``512MiB``, ``1048576``."""

    name = "SIZE"

    def convert(self, value: Any, param: Optional[click.Parameter],
                ctx: Optional[click.Context]) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except PolicyError as exc:
            self.fail(str(exc), param, ctx)


def _credentials_given(ctx: click.Context, param: click.Parameter,
                       value: Optional[str]) -> Optional[str]:
    """``--credentials "$KEY"`` with the variable unset was taken as not given: the next
    source in README's order was used (a saved personal token, Colab's login, the
    emulator's token), and a CI job meant to act as its service account pushed into another
    account's Drive, exit 0 (attack52)."""
    from drivestage.paths import refuse_empty

    if value is not None:
        refuse_empty("--credentials", value, "the key or token file, or leave --credentials "
                     "out to use the next credentials in README's order")
    return value


def _api_root_given(ctx: click.Context, param: click.Parameter,
                    value: Optional[str]) -> Optional[str]:
    """``--api-root "$EMULATOR"`` with the variable unset was Google's own Drive, over a
    DRIVESTAGE_API_ROOT set to an emulator: a test's pushes went to the user's real Drive with
    their saved or Colab login (attack52). (An empty DRIVESTAGE_API_ROOT is as unset: click
    reads no value from it.)"""
    from drivestage.paths import refuse_empty

    if value is not None:
        refuse_empty("--api-root", value, "the Drive API address (an emulator's: "
                     "http://127.0.0.1:PORT/), or leave --api-root out for Google's")
    return value


def drive_options(fn: F) -> F:
    """``--api-root`` and ``--credentials``, shared by every command that talks to Drive."""
    fn = click.option("--credentials", metavar="FILE", envvar=None, callback=_credentials_given,
                      help="A service-account JSON key, or a token saved by "
                           "`drivestage auth login`.")(fn)
    fn = click.option("--api-root", metavar="URL", envvar="DRIVESTAGE_API_ROOT",
                      callback=_api_root_given,
                      help="Talk to this Drive API endpoint instead of Google's (e.g. "
                           "`drivestage emulator`); env DRIVESTAGE_API_ROOT.")(fn)
    return fn


@contextlib.contextmanager
def missing_is_usage(spec: str) -> Iterator[None]:
    """A local path the user typed (``spec``) that is not there is a usage error, exit 2, as
    README's exit-code table says of a bad path and click's ``Path(exists=True)`` makes it;
    the message is the store's. A ``drive:`` path or a link stays a not-found (exit 1):
    looked up on a server, where another machine's push may bring it."""
    from drivestage.paths import is_drive

    try:
        yield
    except NotFoundError as exc:
        if is_drive(spec) or os.path.lexists(os.path.abspath(os.path.expanduser(spec))):
            raise
        raise UsageError(str(exc)) from exc


def stops_as_ctrl_c(fn: F) -> F:
    """The command ends on SIGTERM or SIGHUP (left at their default) as on a Ctrl-C
    (:func:`drivestage.stop_signals.as_ctrl_c`): its clean-ups run, the push's md5 cache
    and records are saved, its lock files' holder records removed, and it says
    ``Interrupted by SIGTERM.`` (exit 143; SIGHUP: 129). Left at their default they ended
    the process at once, without a word (sigpush42). The whole command, its imports and its
    summary included. Not ``mirror`` (its own handlers: a final push) nor ``emulator``."""
    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        from drivestage.cli.group import as_program
        from drivestage.stop_signals import as_ctrl_c

        with as_ctrl_c(program=as_program()):
            return fn(*args, **kwargs)
    command.stops_as_ctrl_c = True  # type: ignore[attr-defined]  # (tests: each command)
    return command  # type: ignore[return-value]
