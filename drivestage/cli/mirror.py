"""``drivestage mirror``: push SRC to DEST every period until stopped, then once more
(registered on the drivestage group; its options and helpers are :mod:`drivestage.cli.push`'s)."""
from __future__ import annotations

import logging
import signal
import time
from typing import TYPE_CHECKING, Any, Optional

import click

from drivestage.cli.group import cli
from drivestage.cli.options import drive_options
from drivestage.cli.push import _chunk, _policy, _policy_options, _push_refusing, \
    _refuse_a_file, _summary, _target, _transfer_options
from drivestage.errors import UsageError

if TYPE_CHECKING:
    from drivestage.upload_tree import PushResult

log = logging.getLogger("drivestage.cli.push")  # the name its lines always had


def _push_and_say(stop: Any, *args: Any, force: bool = False, **kwargs: Any) -> "PushResult":
    """One period of ``mirror``: :func:`_push_refusing`, then a line on stderr when it sent,
    pruned or deleted something (a mirror left running says what it does; an unchanged
    period says nothing, and the final push has a line of its own)."""
    # Asked before the push: a period under way when the stop came is no final push, and
    # its line is the only one that says what it sent (the final push finds it unchanged).
    final = stop.is_set()
    result = _push_refusing(*args, force=force, **kwargs)
    if not final and (result.uploaded or result.pruned or result.deleted):
        click.echo(f"{time.strftime('%H:%M:%S')} pushed: {_summary(result)}", err=True)
    return result


@cli.command("mirror")
@click.argument("src", type=click.Path())
@click.argument("dest")
@click.option("--every", type=float, required=True, metavar="SECONDS",
              help="Seconds between two pushes.")
@_transfer_options
@_policy_options
@drive_options
def mirror_cmd(src: str, dest: str, every: float, include: tuple[str, ...],
               exclude: tuple[str, ...], delete: bool, delete_permanently: bool,
               max_delete: Optional[int], follow_symlinks: bool, chunk_size: Optional[str],
               jobs: int, force: bool,
               use_trash: bool, protect: tuple[str, ...], api_root: Optional[str],
               credentials: Optional[str], **policy_opts: Any) -> None:
    """Push SRC to DEST every SECONDS (and prune) until stopped.

    Prunes only with a policy (--keep-last, --keep-best, --keep-every, --keep-runs,
    --max-bytes), as push does.

    On SIGTERM, SIGINT or SIGHUP (even one before the first push, or while the program
    starts; SIGHUP unless it is ignored, as under nohup) it pushes once more (a flush), then exits 0; a failing final
    push exits 1. A second signal abandons the
    final push at once: "Interrupted: ..." and exit 130 (an upload it cut resumes on
    the next push). Failures in between are logged and retried next period; so is a period
    that left another run's checkpoints (the rest is pushed; see --force). A usage error
    (a --metric no sidecar has but for its case) stops it at once: exit 2.
    """
    import functools
    import os

    from drivestage import held_signals
    from drivestage.cli.group import as_program
    from drivestage.errors import DriveStageError, NotFoundError
    from drivestage.mirror import Mirror
    from drivestage.interrupts import Flag
    from drivestage.state import Md5Cache

    # Installed first: a SIGTERM while DEST is opened (seconds, with retries) killed the
    # process without a word or a push; now it stops the mirror after one push.
    stop = Flag()  # set by a signal handler: drivestage.interrupts
    ended = Flag()  # the final push is over: a signal now changes nothing
    # SIGHUP: the terminal it was started from went away (an SSH session that dropped),
    # which killed it without a final push; under nohup it is ignored, and stays so.
    signals = (signal.SIGTERM, signal.SIGINT) + (
        () if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN else (signal.SIGHUP,))
    # The program ends its process at once on a second signal. Run inside another process
    # (a notebook, CliRunner) the command must not end it: the second signal raises
    # KeyboardInterrupt in the main thread instead, which leaves mirror.stop() at once, and
    # the mirror is abandoned below.
    program = as_program()
    abandoned = Flag()

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set() and not ended.is_set() and not abandoned.is_set():
            if program:
                _abandon()
            abandoned.set()
            raise KeyboardInterrupt
        stop.set()

    mirror: Optional[Mirror] = None
    # Put back when it ends: the handler from before the console script held the signal.
    previous = {s: held_signals.original(s) for s in signals}
    for s in signals:
        signal.signal(s, on_signal)
    # A SIGTERM or SIGHUP while the process started (before the handlers above): held by
    # the console script, it stops the mirror now, after its final push, as one later does.
    if held_signals.take():
        stop.set()
    try:
        if every <= 0:
            raise UsageError(f"--every {every:g} is invalid; give a period in seconds > 0")
        policy = _policy(policy_opts)
        _refuse_a_file(src, dest)
        if not os.path.isdir(src):
            raise NotFoundError(f"{src} is not a local folder; give the folder to mirror")
        # A bad DEST fails now, not at the first period.
        cache = Md5Cache()
        target = _target(dest, api_root, credentials, cache)
        # A folder shared read-only too: every period would fail the same way, for good.
        target[0].check_writable(target[1])
        mirror = Mirror(src, target, policy, every=every, include=include, exclude=exclude,
                        delete=delete, delete_permanently=delete_permanently,
                        max_delete=max_delete, follow_symlinks=follow_symlinks,
                        chunk_size=_chunk(chunk_size), protect=protect,
                        use_trash=use_trash, jobs=jobs, label=dest, md5_cache=cache,
                        push_fn=functools.partial(_push_and_say, stop, force=force))
        mirror.start()  # (named first: an abandon below finds its thread)
        mirror.sync_now()  # a first push right away
        click.echo(f"mirroring {src} -> {dest} every {every:g}s; stop with Ctrl-C or SIGTERM",
                   err=True)
        while not stop.wait(0.5):
            failed = mirror.last_error
            if isinstance(failed, DriveStageError) and failed.exit_code == 2:
                # A usage error (a --metric typo) fails every period alike: the mirror ran
                # on, "will try again", while nothing reached Drive.
                mirror.stop(flush=False)
                raise failed
        click.echo("stopping: pushing once more (a second Ctrl-C or SIGTERM abandons it)...",
                   err=True)
        started = time.monotonic()
        result = mirror.stop()
        ended.set()
        if result is not None:
            click.echo(f"final push in {time.monotonic() - started:.1f}s: {_summary(result)}",
                       err=True)
    except KeyboardInterrupt:
        if not abandoned.is_set():
            raise
        # The host process lives on: the push under way stops between two chunks, and the
        # mirror thread ends; waited for a moment only (a chunk on a slow link takes long).
        if mirror is not None and not mirror.abandon(ABANDON_WAIT):
            log.warning("the upload under way stops once its current chunk is sent")
        click.echo(ABANDONED, err=True)
        click.get_current_context().exit(130)
    finally:
        ended.set()  # a signal from here on changes nothing
        for s, handler in previous.items():
            signal.signal(s, handler)


#: What a second signal during the final push prints (then exit code 130).
ABANDONED = "Interrupted: the final push was abandoned (a cut upload resumes on the next push)."
#: Seconds a mirror run inside another process waits for its abandoned push to stop.
ABANDON_WAIT = 3.0


def _abandon() -> None:
    """End the process now, its final push unfinished (a second signal to the program).
    Not by raising: the interpreter's exit would wait for the upload threads to finish
    their files, as long as the push itself. What was cut is what a kill cuts: each upload
    resumes on the next push, and a checkpoint is verified only once its sidecar is on
    Drive."""
    import os
    import sys

    click.echo(ABANDONED, err=True)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(130)
