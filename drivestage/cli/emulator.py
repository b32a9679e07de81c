"""CLI commands: emulator (registered on the drivestage group)."""
from __future__ import annotations

import errno
import signal
import socket
import sys
from typing import Any, Callable, Optional, TypeVar

import click

from drivestage.cli.group import cli
from drivestage.cli.options import SIZE_HELP, Size
from drivestage.errors import DriveStageError, UsageError
from drivestage.finite_range import FiniteRange
from drivestage.interrupts import Flag

EMULATOR_EPILOG = """\b
Point drivestage at it:
  export DRIVESTAGE_API_ROOT=http://127.0.0.1:8765/ DRIVESTAGE_TOKEN=anything
\b
Control API (not part of Drive), e.g. make the next upload chunk fail:
  curl -X POST http://127.0.0.1:8765/_emulator/faults \\
       -d '{"kind": "inject", "method": "PUT", "path": "/upload/", "status": 503}'
  curl http://127.0.0.1:8765/_emulator/requests
"""


F = TypeVar("F", bound=Callable[..., Any])

#: The emulator's own bounds, an option each, named for the :class:`Emulator` attribute it
#: sets (dashes for underscores): (name, type, metavar, help). Left out (None), an option
#: keeps the Emulator's default.
BOUNDS: tuple[tuple[str, click.ParamType[Any], str, str], ...] = (
    ("min_free_bytes", Size(), "SIZE",
     "Keep this much free on the --data-dir disk: an upload that would leave less gets 403 "
     "storageQuotaExceeded, as on a full Drive (default: 1 GiB or a tenth of the disk, "
     f"whichever is less; 0: none). {SIZE_HELP}."),
    ("upload_session_ttl", FiniteRange(min=0, min_open=True), "SECONDS",
     "Forget a resumable upload session unused this long, with its bytes; its next request "
     "gets 404, as on Drive (default: 604800, Drive's week)."),
    ("max_upload_sessions", click.IntRange(min=1), "N",
     "Keep at most N resumable upload sessions; opening one more forgets the least recently "
     "used (its next request gets 404) (default: 10000)."),
    ("max_upload_session_bytes", Size(), "SIZE",
     "Keep at most this much of the resumable upload sessions' metadata and content types; "
     "past it the least recently used are forgotten (404), and a session holding more alone "
     f"gets 413 (default: 64MiB). {SIZE_HELP}."),
    ("refusal_drain_bytes", Size(), "SIZE",
     "Read at most this much more of a body the answer does not need (a refused upload, an "
     f"injected fault), then answer and close the connection (default: 1GiB). {SIZE_HELP}."),
    ("refusal_drain_seconds", FiniteRange(min=0, min_open=True), "SECONDS",
     "Spend at most this long reading such a body (default: 60)."),
    ("max_connections", click.IntRange(min=1), "N",
     "Serve at most N connections at once; the next wait to be accepted (default: 256)."),
    ("idle_timeout", FiniteRange(min=0), "SECONDS",
     "Close a connection idle this long between requests, as Google's front end does "
     "(default: 120; 0: never)."),
    ("request_log_bytes", Size(), "SIZE",
     "Keep the newest requests in the log (/_emulator/requests) up to this much of their "
     f"paths, queries and headers (default: 128MiB). {SIZE_HELP}."),
)


def bound_options(fn: F) -> F:
    """An option for each of :data:`BOUNDS`, in its order."""
    for name, kind, metavar, text in reversed(BOUNDS):   # (the last added shows first)
        fn = click.option("--" + name.replace("_", "-"), type=kind, default=None,
                          metavar=metavar, help=text)(fn)
    return fn


@cli.command("emulator", epilog=EMULATOR_EPILOG)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; one other machines reach (0.0.0.0) needs --token.")
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="Port to bind (0: any free port).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Keep files and metadata here across restarts (default: a temporary folder).")
@click.option("--quota-bytes", type=click.IntRange(min=0), default=None,
              help="Storage quota in bytes (default: unlimited). Trashed files count until deleted.")
@click.option("--token", default=None,
              help="Accept only this bearer token, on the control API too (default: any "
                   "non-empty token, and the control API without one).")
@click.option("--service-account", is_flag=True,
              help="Behave like a service account: no storage in My Drive, shared drives work.")
@click.option("--latency", type=FiniteRange(min=0), default=0.0, metavar="SECONDS",
              help="Every request waits this long before the first byte of its answer, like "
                   "Drive's time to first byte (about 0.1-0.3 s for media).")
@click.option("--link", type=FiniteRange(min=0, min_open=True), default=None,
              metavar="MB/S",
              help="Hold each connection to this many MB/s, as Drive does (default: unlimited).")
@click.option("--api-quota", type=click.IntRange(min=1), default=None, metavar="UNITS",
              help="Quota units per user per minute, beyond which calls get 403 "
                   "userRateLimitExceeded (Drive's: 325000; default: no limit).")
@click.option("--api-project-quota", type=click.IntRange(min=1), default=None, metavar="UNITS",
              help="Quota units per minute over every user together (the Cloud project's), "
                   "beyond which calls get 403 rateLimitExceeded (Drive's: 1000000; default: "
                   "no limit).")
@click.option("--upload-cap", type=click.IntRange(min=0), default=None, metavar="BYTES",
              help="Bytes each user may upload per day (Drive's: 750 GB), beyond which uploads get "
                   "403 userRateLimitExceeded (default: no cap).")
@click.option("--ignore-if-match", is_flag=True,
              help="Apply writes that name an etag (If-Match) whatever it names, never 412: "
                   "a proxy that drops the header, to test a client's compare-and-swap.")
@bound_options
def emulator_command(host: str, port: int, data_dir: Optional[str], quota_bytes: Optional[int],
                     token: Optional[str], service_account: bool, latency: float,
                     link: Optional[float], api_quota: Optional[int],
                     api_project_quota: Optional[int], upload_cap: Optional[int],
                     ignore_if_match: bool, **bounds: Optional[float]) -> None:
    """Serve a local Google Drive API v2 emulator until interrupted.

    The first line on stdout is exactly ``Drive API emulator at http://HOST:PORT/``.
    Ctrl-C or SIGTERM stop it cleanly (exit 0); the state stays in --data-dir. --latency
    and --link make it behave like a Drive reached over a real network, to test a pipeline's
    timings offline; --api-quota and --upload-cap add Drive's per-user limits,
    --api-project-quota its per-project one (the control API can change all of them while
    it runs).
    """
    from drivestage.emulator import Emulator
    from drivestage.emulator.errors import DataDirError
    from drivestage.emulator.hosts import is_loopback_host
    from drivestage.paths import refuse_empty

    # ("": a TypeError traceback for --data-dir; for --host the socket's every interface, an
    # emulator that takes any token open to the network, announced as http://:PORT/.)
    if data_dir is not None:
        refuse_empty("--data-dir", data_dir, "a folder to keep the emulator's files in, or "
                     "leave --data-dir out for a temporary one")
    refuse_empty("--host", host, "the address to listen on, e.g. 127.0.0.1 (0.0.0.0 for "
                 "every interface)")
    if token is not None:
        # ("" or a line end: no client can send it, so every request was refused with 401
        # while the emulator said it served, and "" passed the --host check above: attack52)
        refuse_empty("--token", token, "the bearer token clients send, or leave --token out "
                     "to accept any")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in token):
            raise UsageError("--token holds a control character (a line end?), which no "
                             "client can send in a header; give the bearer token clients send")
    if token is None and not is_loopback_host(host):
        # Any token is taken then, the control API with none: whoever reaches the port
        # reads and changes every file and fault (attackemu45).
        raise UsageError(f"--host {host} is reachable from other machines, and without --token "
                         "anyone who reaches it may read and change its files and its control "
                         "API; give --token TOKEN too, or --host 127.0.0.1")
    emu = Emulator(data_dir=data_dir, quota_bytes=quota_bytes, token=token, host=host, port=port,
                   service_account=service_account)
    if latency:
        emu.faults.latency(latency)
    if link:
        emu.faults.throttle(per_connection=link * 1e6)
    emu.ignores_if_match = ignore_if_match
    if api_quota is not None or upload_cap is not None or api_project_quota is not None:
        emu.set_api_quota(api_quota, upload_bytes_per_day=upload_cap,
                          project_units_per_minute=api_project_quota)
    # The emulator's own bounds (BOUNDS): those not given keep the Emulator's defaults.
    for name, value in bounds.items():
        if value is not None:
            setattr(emu, name, value)
    if bounds["idle_timeout"] == 0:
        emu.idle_timeout = None   # (never; a socket timeout of 0 would make it non-blocking)
    try:
        emu.start()
    except DataDirError as exc:   # (in use by another emulator, or its state unreadable)
        raise DriveStageError(str(exc)) from None
    except OSError as exc:
        if exc.filename is not None and data_dir is not None:
            # The state folder, not the socket (a socket's error names no file): it said
            # "cannot listen on ...: Read-only file system. Choose another --port".
            raise UsageError(f"cannot use --data-dir {data_dir}: "
                             f"{(exc.strerror or str(exc)).lower()} ({exc.filename}); give a "
                             "folder this user can write") from None
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            # (no interface has that address: "Choose another --port" named the wrong one)
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; give "
                             "--host an address of this machine, e.g. 127.0.0.1") from None
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}. "
                         "Choose another --port (0 picks a free one).") from exc
    stop = Flag()  # set by a signal handler: drivestage.interrupts

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        click.echo(f"Drive API emulator at {emu.url}")
        sys.stdout.flush()
        assert emu.store is not None  # started above
        click.echo(f"data: {emu.store.data_dir}", err=True)
        while not stop.wait(0.5):
            pass
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        emu.stop()
    click.echo("emulator stopped", err=True)
