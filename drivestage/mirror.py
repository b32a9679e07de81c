"""``Mirror``: push + prune in a background thread, periodically and on request.

Failures are reported on :meth:`Mirror.flush`, never raised into the host process's thread.
The push itself is :func:`drivestage.upload_tree.push`; pruning :mod:`drivestage.pruning`.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterable, Optional, Sequence

from drivestage.errors import MirrorError, UsageError
from drivestage.lost_mounts import said
from drivestage.pruning import prune
from drivestage.remote import Where, open_store
from drivestage.retention import RetentionPolicy
from drivestage.state import Md5Cache
from drivestage.paths import StorePath, patterns
from drivestage.store import RemoteStore
from drivestage.upload_tree import PushResult, push
from drivestage import mirror_claim, pool
from drivestage.interrupts import BackgroundThread, Flag, Monitor

log = logging.getLogger(__name__)

__all__ = ["Mirror", "push", "prune", "PushResult", "Dest", "open_dest", "FlushTimeout"]


#: Longest single wait of the caller's thread in stop(): it handles signals in between.
_SLICE = 0.2

class FlushTimeout(MirrorError):
    """A flush (or stop) whose run did not end within its timeout; it goes on in the
    background (``drivestage mirror --grace`` tells it from a run that failed)."""

#: Periods between two walks of DEST's path from the top (see :meth:`Mirror._run_once`).
WALK_EVERY = 10

#: A destination: a spec (``drive:a/b``, ``/mnt/nas/logs``) or ``(store, path)``.
Dest = Where


def open_dest(dest: Where, store: Optional[RemoteStore] = None,
              md5_cache: Optional[Md5Cache] = None) -> tuple[RemoteStore, StorePath]:
    """0.1.0's name for the one door (:func:`drivestage.remote.open_store`); with ``store``,
    ``dest`` is a path inside it. Kept for callers written against it."""
    return open_store((store, str(dest)) if store is not None else dest, md5_cache=md5_cache)


class Mirror:
    """Push + prune in a background thread: every ``every`` seconds and on request.

    ``sync_now()`` only hands over a request (bursts coalesce into one run);
    ``flush(timeout)`` waits for a run that started after the call and raises
    :class:`~drivestage.errors.MirrorError` if it failed; ``stop()`` flushes once
    more and ends the thread. A failing run is logged and retried next period:
    the host process never sees an exception from the thread.
    """

    def __init__(self, src: str, dest: Dest, policy: Optional[RetentionPolicy] = None, *,
                 every: Optional[float] = None, store: Optional[RemoteStore] = None,
                 include: Sequence[str] = (), exclude: Sequence[str] = (),
                 delete: bool = False, delete_permanently: bool = False,
                 max_delete: Optional[int] = None, follow_symlinks: bool = False,
                 chunk_size: Optional[int] = None,
                 protect: Iterable[str] = (), use_trash: bool = False, jobs: int = 4,
                 md5_cache: Optional[Md5Cache] = None, label: Optional[str] = None,
                 push_fn: Optional[Callable[..., PushResult]] = None):
        # not (> 0): nan passes "<= 0" and made the mirror push without a pause, for good.
        if every is not None and not (0 < every < threading.TIMEOUT_MAX):
            raise UsageError(f"every={every!r} is invalid; give a period in seconds > 0")
        self.src, self.dest, self.policy, self.every = src, dest, policy, every
        self.label = label or (str(dest[1]) if isinstance(dest, tuple) else str(dest))
        self._store = store
        self._target: Optional[tuple[RemoteStore, StorePath]] = None
        self._options: dict[str, Any] = dict(
            include=patterns(include), exclude=patterns(exclude), delete=delete,
            delete_permanently=delete_permanently, max_delete=max_delete,
            follow_symlinks=follow_symlinks, chunk_size=chunk_size, use_trash=use_trash,
            jobs=jobs)
        self._protect = set(patterns(protect))
        self._push = push_fn or push
        self._cond = Monitor()  # a Ctrl-C cannot leave it held
        self._requested = 0     # generation of the latest request
        self._started_gen = 0   # generation the running/last run picked up
        self._done_gen = 0      # generation of the last finished run
        self._last_error: Optional[BaseException] = None
        self._last_result: Optional[PushResult] = None
        self._stopping = False
        self._final_gen: Optional[int] = None  # the run stop() flushes with: it raises its failure
        self._thread: Optional[BackgroundThread] = None
        self._start_cut = False   # a Ctrl-C came as its thread started (see start)
        self._abandoned = Flag()  # abandon(): the run under way stops between two chunks
        self._cache: Optional[Md5Cache] = md5_cache
        self.runs = 0
        self._periods = 0  # runs started (the path is walked again every WALK_EVERY)
        # The failure the last periods logged, and how many in a row: one alike is not
        # logged again (a mount that stopped said the same line every period, for hours).
        self._failing: Optional[str] = None
        self._failed_runs = 0
        self._claim: Optional[mirror_claim.MirrorClaim] = None   # (on DEST: dedupe reads it)

    # -- control
    def start(self) -> "Mirror":
        """Start the background thread (idempotent)."""
        with self._cond:
            if self._start_cut:
                # (its thread was told to end: started again, it returned as if running, and
                # nothing was pushed, not even by stop(): attacknet36)
                raise MirrorError("this mirror was stopped: a Ctrl-C came as it started; "
                                  "make a new one (Mirror(...).start())")
            if self._thread is None:
                self._thread = BackgroundThread(self._claimed_loop, "drivestage-mirror")
                try:
                    self._thread.start()
                except BaseException:
                    # A Ctrl-C as it started (raised once it runs): the caller never got
                    # the mirror (``m = Mirror(...).start()``, a CheckpointSync being made),
                    # and its thread pushed every period for the process's life, out of
                    # reach of any stop. Told to end before its first push.
                    self._abandoned.set()
                    self._stopping = self._start_cut = True
                    self._cond.notify_all()
                    raise
        return self

    def protect(self, name: str) -> None:
        """Never let the policy delete ``name`` (e.g. the checkpoint a run resumed from)."""
        with self._cond:
            self._protect.add(name)

    def sync_now(self) -> int:
        """Ask for a run as soon as possible; returns at once (a request generation)."""
        with self._cond:
            if self._stopping:
                raise MirrorError("the mirror is stopped; start a new one")
            self._requested += 1
            self._cond.notify_all()
            return self._requested

    def flush(self, timeout: Optional[float] = None) -> Optional[PushResult]:
        """Run once more and wait for it; raise MirrorError if that run failed."""
        if self._thread is None:
            self.start()
        gen = self.sync_now()
        return self._wait(gen, timeout)

    def stop(self, timeout: Optional[float] = None, *, flush: bool = True
             ) -> Optional[PushResult]:
        """Flush (unless ``flush=False``), then end the thread. Raises like :meth:`flush`.
        Called again after a stop that was interrupted once its flush was done (a Ctrl-C
        while it waited for the thread), it waits for the thread again and returns that
        flush's result. After :meth:`abandon` it only waits for the thread, and returns None
        (no final push was made)."""
        result, error = None, None
        # One deadline for the flush and the thread's end: a caller bounding its stop
        # (``mirror --grace``) waited up to twice its timeout.
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            # abandon() stopped it without a final push: there is no result to give.
            abandoned = self._abandoned.is_set()
            flushed = self._stopping  # an earlier stop() got as far as its flush's end
            if flushed and not abandoned:
                result = self._last_result
        try:
            if flush and self._thread is not None and not flushed and not abandoned:
                with self._cond:
                    self._final_gen = self.sync_now()
                result = self._wait(self._final_gen, timeout)
        except MirrorError as exc:
            error = exc
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        while self._thread is not None and not isinstance(error, FlushTimeout) \
                and self._thread.is_alive():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            self._thread.join(_SLICE if left is None else min(left, _SLICE))  # (see _wait)
        if error is not None:
            raise error
        return result

    def abandon(self, timeout: Optional[float] = None) -> bool:
        """Stop without a flush: the run under way stops at its next safe point (an upload
        between two chunks; a cut upload resumes on the next push) and no other starts.
        Waits at most ``timeout`` seconds for the thread to end; returns whether it has."""
        self._abandoned.set()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        return self._thread is None or self._thread.join(timeout)

    @property
    def last_error(self) -> Optional[BaseException]:
        """The failure of the last finished run, or None when it succeeded."""
        with self._cond:
            return self._last_error

    # -- internals
    def _wait(self, gen: int, timeout: Optional[float]) -> Optional[PushResult]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._done_gen < gen:
                if self._abandoned.is_set() and self._started_gen < gen:
                    raise self._abandoned_error()  # no run starts any more
                if self._thread is None or not self._thread.is_alive():
                    raise MirrorError("the mirror thread is not running")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise FlushTimeout(f"mirror of {self.src} did not finish within "
                                      f"{timeout:g}s; it goes on in the background")
                # In slices: the main thread runs a signal's handler only between two
                # waits (a second Ctrl-C that abandons the final push waited for its end).
                self._cond.wait(_SLICE if left is None else min(left, _SLICE))
            if self._last_error is not None:
                err = self._last_error
                if isinstance(err, KeyboardInterrupt) and self._abandoned.is_set():
                    # abandon() cut it (pool.check): a KeyboardInterrupt says nothing
                    raise self._abandoned_error() from err
                final = self._final_gen is not None and gen >= self._final_gen
                raise MirrorError(f"mirror of {self.src} to {self.label} failed: "
                                  f"{_said(err, final=final)}") from err
            return self._last_result

    def _abandoned_error(self) -> MirrorError:
        return MirrorError(f"mirror of {self.src} to {self.label} was abandoned (abandon()) "
                           "before this flush's push was done; a cut upload resumes on the "
                           "next push")

    def _claimed_loop(self) -> None:
        """:meth:`_loop`, its claim on DEST (dedupe refuses to merge under it) released at
        its end (:mod:`drivestage.mirror_claim`: the removal waited for
        :data:`~drivestage.mirror_claim.RELEASE_WAIT_S` at most)."""
        try:
            self._loop()
        finally:
            if self._claim is not None:
                self._claim.release()

    def _loop(self) -> None:
        next_due = None if self.every is None else time.monotonic() + self.every
        while True:
            with self._cond:
                while not self._stopping and self._requested <= self._started_gen:
                    if next_due is not None and time.monotonic() >= next_due:
                        break
                    wait = None if next_due is None else max(0.0, next_due - time.monotonic())
                    self._cond.wait(wait)
                if self._stopping and (self._requested <= self._done_gen
                                       or self._abandoned.is_set()):
                    self._cond.notify_all()  # a flush waiting for a run that never comes
                    return
                gen = self._requested
                self._started_gen = gen
                protect = set(self._protect)
                final = self._final_gen is not None and gen >= self._final_gen
            error, result = None, None
            try:
                with pool.stoppable(self._abandoned):
                    result = self._run_once(protect)
            except BaseException as exc:  # the host process must never see it here
                error = exc
                if final or self._abandoned.is_set() or _usage(exc):
                    # stop() raises it (no second line), or abandon() cut it: no retry;
                    # a usage error fails every period alike: the caller stops on it
                    log.debug("mirror of %s to %s failed: %s", self.src, self.label, exc)
                else:
                    self._say_failed(exc)
            if error is None:
                self._say_back()
            with self._cond:
                self.runs += 1
                self._last_error, self._last_result = error, result
                self._done_gen = max(self._done_gen, gen)
                self._cond.notify_all()
            if self.every is not None:
                next_due = time.monotonic() + self.every

    def _say_failed(self, exc: BaseException) -> None:
        """A period's failure, logged once while the periods fail alike (said again when it
        changes, and :meth:`_say_back` says when a period pushes again)."""
        said = _said(exc, final=False)
        self._failed_runs += 1
        if said == self._failing:
            log.debug("mirror of %s to %s failed again: %s", self.src, self.label, said)
            return
        self._failing = said
        log.error("mirror of %s to %s failed (will try again): %s", self.src, self.label, said)

    def _say_back(self) -> None:
        """A period pushed after periods that failed: said once."""
        if self._failing is not None:
            n, self._failing, self._failed_runs = self._failed_runs, None, 0
            log.warning("mirror of %s to %s pushes again (after %d failed period%s)",
                        self.src, self.label, n, "" if n == 1 else "s")

    def _run_once(self, protect: set[str]) -> PushResult:
        if self._cache is None:
            self._cache = Md5Cache()
        if self._target is None:
            where = (self._store, str(self.dest)) if self._store is not None else self.dest
            self._target = open_store(where, md5_cache=self._cache)
        self._periods += 1
        if self._periods % WALK_EVERY == 0:
            # Each period checks DEST's own folder (one files.get: trashed, renamed, moved),
            # not the folders above it: one of them renamed (`runs` -> `runs_old`) kept
            # every period going into runs_old/logs, while a resume reads runs/logs. Walked
            # from the top again now and then: about a request per level, in WALK_EVERY
            # periods; a check of each level every period would cost that every period.
            self._target[0].forget_folders(walk=True)
        if self._claim is None:   # (its requests run in its own thread: none here)
            self._claim = mirror_claim.start(*self._target)
        result = self._push(self.src, self._target, self.policy, protect=protect,
                            md5_cache=self._cache, **self._options)
        if self._claim is not None:   # (where the push wrote: DEST made anew, claimed now)
            self._claim.point(self._target[0].known_folder(self._target[1]))
        return result


def _said(exc: BaseException, *, final: bool) -> str:
    """A run's failure in words: a FUSE mount that stopped (Colab's Drive mount) named
    without the file the push met it at (one line for every period it lasts)."""
    return said(exc, then="run the same command again" if final else
                "this mirror pushes again by itself")


def _usage(exc: BaseException) -> bool:
    """A usage error (a ``--metric`` typo): the same at every period, never worth a retry."""
    return isinstance(exc, UsageError) or getattr(exc, "exit_code", None) == 2
