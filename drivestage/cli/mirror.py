"""``drivestage mirror``: push SRC to DEST every period until stopped, then once more, within
``--grace`` (registered on the drivestage group; its options and helpers are
:mod:`drivestage.cli.push`'s)."""
from __future__ import annotations

import logging
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, Optional

import click

from drivestage.cli.group import cli
from drivestage.command import doing
from drivestage.cli.options import drive_options
from drivestage.cli.push import _chunk, _policy, _policy_options, _push_refusing, \
    _refuse_a_file, _summary, _target, _transfer_options
from drivestage.errors import UsageError
from drivestage.fork_drop import free_in_forks

if TYPE_CHECKING:
    from drivestage.errors import MirrorError
    from drivestage.push_result import Outstanding
    from drivestage.upload_tree import PushResult

log = logging.getLogger("drivestage.cli.push")  # the name its lines always had

#: The longest --every / --grace: 30 days. A wait on a thread cannot be longer than
#: threading.TIMEOUT_MAX; --grace 1e300 (or inf) killed the grace's watchdog with an
#: OverflowError traceback, and --grace nan ended the program at the first signal, before
#: its final push (nan passes every "> 0" check; a wait of nan seconds returns at once).
MAX_SECONDS = 30 * 86400.0


class _Seconds(click.ParamType):  # type: ignore[type-arg]  # generic only in click stubs
    """A number of seconds: finite, > 0 and at most :data:`MAX_SECONDS`."""

    name = "seconds"

    def convert(self, value: Any, param: Optional[click.Parameter],
                ctx: Optional[click.Context]) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not 0 < seconds <= MAX_SECONDS:  # nan fails both comparisons
            self.fail(f"{value} is not a number of seconds > 0 and at most "
                      f"{MAX_SECONDS:.0f} (30 days)", param, ctx)
        return seconds


def _push_and_say(stop: Any, running: "list[Outstanding]", *args: Any, force: bool = False,
                  **kwargs: Any) -> "PushResult":
    """One period of ``mirror``: :func:`_push_refusing`, then a line on stderr when it sent,
    pruned or deleted something (a mirror left running says what it does; an unchanged
    period says nothing, and the final push has a line of its own). ``running`` holds what
    the period has still to send (named when ``--grace`` runs out)."""
    from drivestage.push_result import Outstanding, pushed_of, went

    # Asked before the push: a period under way when the stop came is no final push, and
    # its line is the only one that says what it sent (the final push finds it unchanged).
    final = stop.is_set()
    running[:] = [Outstanding(final=final)]
    try:
        with doing("mirror"):   # (in the period's thread: a stop says "the mirror stopped")
            result = _push_refusing(*args, force=force, outstanding=running[0], **kwargs)
    except BaseException as exc:
        # What went before it failed (a guard, Drive mid-pass, another run's checkpoint
        # left at its end): its line, before the failure's (guards41: only the failure was
        # said, and the next period found those files unchanged: said by no line at all).
        got = pushed_of(exc)
        if not final and got is not None and went(got):
            click.echo(f"{time.strftime('%H:%M:%S')} pushed, then failed: {_summary(got)}",
                       err=True)
        raise
    if not final and went(result):
        click.echo(f"{time.strftime('%H:%M:%S')} pushed: {_summary(result)}", err=True)
    return result


def _warn_nothing_chosen(src: str, include: tuple[str, ...], exclude: tuple[str, ...],
                         follow_symlinks: bool) -> None:
    """Globs that choose none of the files SRC holds at the start: said once. push stops on
    them (exit 1); the mirror goes on without a word, each period sending nothing, and its
    final push said ``0 uploaded (0 B), 0 unchanged``, exit 0 (attack52). Not refused: a
    mirror may start before the files its globs choose are written (``--include '*.pt'``
    beside a run's first ``results.csv``)."""
    from drivestage.cli.push import _refuse_nothing_chosen
    from drivestage.errors import NothingChosenError

    if not include and not exclude:
        return
    try:
        _refuse_nothing_chosen(src, include, exclude, follow_symlinks, verb="mirror")
    except NothingChosenError as exc:
        log.warning("%s; the mirror goes on, and sends the files they choose once there are "
                    "some", exc)


@cli.command("mirror")
@click.argument("src", type=click.Path())
@click.argument("dest")
@click.option("--every", type=_Seconds(), required=True, metavar="SECONDS",
              help="Seconds between two pushes.")
@click.option("--grace", type=_Seconds(), default=25.0,
              show_default=True, metavar="SECONDS",
              help="Once stopped: seconds the final push may take. Then it stops, names what "
                   "it did not send and exits 1 (a VM or Colab kills a process about 30 s "
                   "after its SIGTERM); the same command run again sends it.")
@_transfer_options
@_policy_options
@drive_options
def mirror_cmd(src: str, dest: str, every: float, grace: float, include: tuple[str, ...],
               exclude: tuple[str, ...], delete: bool, delete_permanently: bool,
               max_delete: Optional[int], follow_symlinks: bool, chunk_size: Optional[str],
               jobs: int, force: bool,
               use_trash: bool, protect: tuple[str, ...], api_root: Optional[str],
               credentials: Optional[str], **policy_opts: Any) -> None:
    """Push SRC to DEST every SECONDS (and prune) until stopped.

    Prunes only with a policy (--keep-last, --keep-best, --keep-every, --keep-runs,
    --max-bytes), as push does.

    On SIGTERM, SIGINT or SIGHUP (even one before the first push, and a SIGTERM or SIGHUP
    even while the program starts; SIGHUP unless it is ignored, as under nohup) it pushes
    once more (a flush), then exits 0; a failing final push exits 1, and so does one not
    done within --grace seconds (it names what it did not send; the same command run again
    sends it). A second signal abandons the final push at once: "Interrupted: ..." and exit
    130 (an upload it cut resumes on the next push); a SIGHUP is never that second one, nor
    a SIGTERM right after a SIGHUP (systemd sends both when it stops a login session). Failures in between are logged and
    retried next period; so is a period that left another run's checkpoints (the rest is
    pushed; see --force). A usage error (a --metric no sidecar has but for its case) stops
    it at once: exit 2.
    """
    import functools
    import os

    from drivestage import held_signals
    from drivestage.cli.group import as_program
    from drivestage.errors import DriveStageError, MirrorError
    from drivestage.push_result import pushed_of, went
    from drivestage.mirror import FlushTimeout, Mirror
    from drivestage.interrupts import Flag, start_thread
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

    mirror: Optional[Mirror] = None
    running: list[Outstanding] = []  # what the push under way has still to send
    deadline: list[float] = []  # the grace's end, from the first signal

    def watch() -> None:
        # The program's own bound on the grace, wherever the main thread is (DEST opened
        # while Drive is down waits through the retry schedule: 103 s); the final push's
        # wait below normally ends first, by the margin. Started before any signal: a
        # thread started in a signal handler could wait for good for a lock the main
        # thread held when the signal came (Thread.start's).
        stop.wait()
        if not ended.wait(grace + WATCHDOG_MARGIN):
            _leave(_out_of_grace(grace, src, dest, running[0] if running else None))

    first: list[int] = []  # the signal that stopped it

    def on_signal(signum: int, frame: Any) -> None:
        if stop.is_set() and not ended.is_set() and not abandoned.is_set() and \
                _abandons(first, signum):
            if program:
                _abandon()
            abandoned.set()
            raise KeyboardInterrupt
        if not stop.is_set():
            deadline.append(time.monotonic() + grace)
            first.append(signum)
        stop.set()

    if program:
        start_thread(threading.Thread(target=watch, name="drivestage-grace", daemon=True))
    # Put back when it ends: the handler from before the console script held the signal.
    previous = {s: held_signals.original(s) for s in signals}
    for s in signals:
        signal.signal(s, on_signal)
    # A SIGTERM or SIGHUP while the process started (before the handlers above): held by
    # the console script, it stops the mirror now, after its final push, as one later does;
    # as what it was: systemd's SIGHUP held, replayed as a SIGTERM, made its SIGTERM right
    # after the second signal (attackds32). More held at once are one stop, the pair noted.
    held = held_signals.take()
    if held:
        on_signal(held[0], None)
        for signum in held[1:]:
            _abandons(first, signum)
    try:
        if every <= 0:
            raise UsageError(f"--every {every:g} is invalid; give a period in seconds > 0")
        policy = _policy(policy_opts)
        _refuse_a_file(src, dest, "mirror")
        if not (delete or delete_permanently):   # (there such globs are how Drive's go, as push)
            _warn_nothing_chosen(src, include, exclude, follow_symlinks)
        # A bad DEST fails now, not at the first period.
        cache = Md5Cache()
        target = _target(dest, api_root, credentials, cache, pushing=True)
        # A folder shared read-only too: every period would fail the same way, for good.
        target[0].check_writable(target[1])
        mirror = Mirror(src, target, policy, every=every, include=include, exclude=exclude,
                        delete=delete, delete_permanently=delete_permanently,
                        max_delete=max_delete, follow_symlinks=follow_symlinks,
                        chunk_size=_chunk(chunk_size), protect=protect,
                        use_trash=use_trash, jobs=jobs, label=dest, md5_cache=cache,
                        push_fn=functools.partial(_push_and_say, stop, running, force=force))
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
        click.echo(f"stopping: pushing once more (for {grace:g}s at most, --grace; a second "
                   "Ctrl-C or SIGTERM abandons it)...", err=True)
        started = time.monotonic()
        try:
            result = mirror.stop(max(0.0, deadline[0] - time.monotonic()))
        except FlushTimeout:
            # A kill comes soon (a VM's, Colab's): say now what is not on Drive, and leave.
            late = _out_of_grace(grace, src, dest, running[0] if running else None)
            if program:
                _leave(late)
            abandoned.set()
            if not mirror.abandon(ABANDON_WAIT):
                log.warning("the upload under way stops once its current chunk is sent")
            raise late
        except MirrorError as exc:   # (its Error line follows: what went before it failed)
            got = pushed_of(exc)
            if got is not None and went(got):
                click.echo(f"final push in {time.monotonic() - started:.1f}s, then failed: "
                           f"{_summary(got)}", err=True)
            raise
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
        from drivestage.stderr_tail import say

        say(ABANDONED)
        click.get_current_context().exit(130)
    finally:
        ended.set()  # a signal from here on changes nothing
        for s, handler in previous.items():
            signal.signal(s, handler)


def _out_of_grace(grace: float, src: str, dest: str,
                  running: "Optional[Outstanding]") -> "MirrorError":
    """What ``mirror`` says when ``--grace`` ran out before its final push was done: what
    was not sent (``running``: the push under way, None before the first; its list is None
    while it had not compared SRC with DEST yet). The default, 25 s as
    ``train.grace_seconds``: a VM or Colab kills a process about 30 s after its SIGTERM, and
    the rest is left for this line and the exit."""
    from drivestage.errors import MirrorError
    from drivestage.paths import printable

    head = f"--grace ({grace:g} s) ran out before the final push to {dest} was done"
    again = "run the same drivestage mirror command again to"
    left = None if running is None else running.left()
    if running is None or left is None:
        what = (f"it had not compared {src} with {dest} yet (Drive did not answer): what "
                f"changed since the last push may not be there; {again} send it")
        return MirrorError(f"{head}; {what}")
    shown = ", ".join(printable(rel) for rel in left[:5])
    more = f" and {len(left) - 5} more" if len(left) > 5 else ""
    if not running.final:
        # A period's push, begun before the stop: its list holds nothing written since (the
        # checkpoint saved right before the SIGTERM), which it named as all not sent.
        sent = f"had not sent {shown}{more}, and" if left else "had sent its files, but"
        what = (f"it had not begun: the push under way since before the stop {sent} what "
                f"changed in {src} since that push began is not there either; {again} send "
                "it (a cut upload resumes)")
    elif not left:
        what = f"every file was sent, not its pruning or --delete; {again} finish it"
    else:
        what = f"not sent: {shown}{more}; {again} send them (a cut upload resumes)"
    return MirrorError(f"{head}; {what}")


#: Seconds past ``--grace`` the program's watchdog waits for the main thread to say it.
WATCHDOG_MARGIN = 1.0
_LEAVING = free_in_forks(threading.Lock())  # one line, from the main thread or the watchdog


def _abandons(first: list[int], signum: int) -> bool:
    """Whether ``signum``, after the signal that stopped the mirror (``first``: it, then
    the SIGTERM of systemd's pair once seen), is the user's second one, which abandons the
    final push. A SIGHUP never is, nor the one SIGTERM after a hang-up: systemd sends each
    process of a login session it stops (a VM's shutdown, a mirror started over SSH) a
    SIGHUP right after its SIGTERM, and Linux may deliver the SIGHUP first; taken for the
    second, they abandoned the final push (attackstop32). Its pair holds one SIGTERM: the
    next is the user's (``kill <pid>`` with no terminal left to Ctrl-C in was never one
    after a hang-up: attackds32)."""
    hangup = getattr(signal, "SIGHUP", None)
    if signum == hangup:
        return False
    if signum == signal.SIGTERM and first == [hangup]:
        first.append(signum)  # (systemd's; the pair is complete)
        return False
    return True


def _leave(error: "MirrorError") -> None:
    """The program's end once ``--grace`` ran out: its ``Error:`` line, exit 1, at once
    (the upload under way is cut as a kill cuts it: it resumes on the next push). A second
    caller waits here for the end."""
    import os
    import sys

    from drivestage.cli.group import error_line
    from drivestage.stderr_tail import say

    _LEAVING.acquire()
    say(error_line(error))
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(error.exit_code)


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

    from drivestage.stderr_tail import say

    say(ABANDONED)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(130)
