"""The one retry policy: what is worth retrying, how long to wait, and what to raise otherwise.

Every Drive call in drivestage (metadata through PyDrive2, byte transfers through
googleapiclient) runs inside :func:`retrying`. This module is the only place that decides
whether a failure is transient:

* retryable: HTTP 408, 429, 500, 502, 503, 504, 403 ``rateLimitExceeded`` /
  ``userRateLimitExceeded``, connection resets/aborts, broken pipes, timeouts, short bodies;
* everything else becomes a typed :mod:`drivestage.errors` error with a message for the user
  (:func:`translate`; an HTTP answer is typed by :func:`drivestage.drive.answers.typed_error`).

Waits grow exponentially with jitter up to a cap; a server's ``Retry-After`` is honoured (an
HTTP date read by the server's clock: :func:`drivestage.drive.server_clock.drive_clock`).
Every retry is logged at WARNING with ``retry n/max``. Knobs (for users on flaky links, and
for tests that must not sleep): ``DRIVESTAGE_RETRY_ATTEMPTS`` (default 8),
``DRIVESTAGE_RETRY_BASE`` (first wait, seconds, default 1), ``DRIVESTAGE_RETRY_CAP``
(longest backoff, default 32), ``DRIVESTAGE_RETRY_JITTER`` (extra random wait as a fraction
of the backoff, default 0.5) and ``DRIVESTAGE_RETRY_AFTER_MAX`` (longest ``Retry-After``
honoured, default 120).
"""
from __future__ import annotations

import http.client
import logging
import os
import random
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, TypeVar

import tenacity

from drivestage import errors, interrupts, stream_lines
from drivestage.drive import answers, connections, lookups, proxies, server_clock
from drivestage.pool import check

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Where tenacity sleeps; tests replace it to record the schedule instead of waiting.
#: (In slices in the main thread, so that a Ctrl-C given to another thread ends it.)
_sleep: Callable[[float], None] = interrupts.sleep


class TransientError(Exception):
    """A transfer problem worth another attempt that is not an HTTP status or a socket error
    (a body shorter than promised, a Content-Range that does not match the request)."""


class InsecureRedirect(Exception):
    """A download over https was redirected to a plain-http address (not followed)."""


@dataclass(frozen=True)
class Retryable:
    """Why a failure is worth another attempt."""

    reason: str                          # short, for the log line ("503 backendError")
    retry_after: Optional[float] = None  # seconds the server asked us to wait
    connection_lost: bool = False        # the keep-alive connection may be unusable now


@dataclass(frozen=True)
class Policy:
    """Backoff settings; :meth:`from_env` reads the ``DRIVESTAGE_RETRY_*`` variables."""

    attempts: int = 8
    base: float = 1.0
    cap: float = 32.0
    jitter: float = 0.5
    retry_after_max: float = 120.0

    @classmethod
    def from_env(cls, attempts: Optional[int] = None) -> "Policy":
        env = os.environ

        def num(name: str, default: float) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                raise errors.UsageError(f"{name}={raw!r} is not a number") from None
            # nan passed "< 0": a cap of nan waited nan seconds (a ValueError from sleep, or
            # no wait at all), and inf or 1e300 overflowed the wait.
            if not value < 1e9:
                raise errors.UsageError(f"{name}={raw!r} is not a number of at most 1e9")
            if value < 0:
                raise errors.UsageError(f"{name}={raw!r} must not be negative")
            return value

        if attempts is None:
            tries = num("DRIVESTAGE_RETRY_ATTEMPTS", cls.attempts)
            attempts = int(tries)
            if attempts >= 1 and tries != attempts:   # (2.5 was read as 2, unsaid: attack51)
                raise errors.UsageError(
                    f"DRIVESTAGE_RETRY_ATTEMPTS={env['DRIVESTAGE_RETRY_ATTEMPTS']!r} is not a "
                    f"whole number (attempts per Drive request, {cls.attempts} by default)")
            if attempts < 1:   # (named: "retry attempts must be..." named no setting)
                raise errors.UsageError(
                    f"DRIVESTAGE_RETRY_ATTEMPTS={env['DRIVESTAGE_RETRY_ATTEMPTS']!r} must be at "
                    f"least 1 (attempts per Drive request, {cls.attempts} by default)")
        if attempts < 1:
            raise errors.UsageError(f"retry attempts must be at least 1, got {attempts}")
        return cls(attempts=attempts, base=num("DRIVESTAGE_RETRY_BASE", cls.base),
                   cap=num("DRIVESTAGE_RETRY_CAP", cls.cap),
                   jitter=num("DRIVESTAGE_RETRY_JITTER", cls.jitter),
                   retry_after_max=num("DRIVESTAGE_RETRY_AFTER_MAX", cls.retry_after_max))

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), before Retry-After."""
        wait = min(self.cap, self.base * (2.0 ** (attempt - 1)))
        return float(min(self.cap, wait * (1 + self.jitter * rng())))


# --------------------------------------------------------------------------- classification

_CONNECTION_ERRNOS = {"ETIMEDOUT", "EPIPE", "ECONNABORTED", "ECONNRESET",
                      "ENETUNREACH", "EHOSTUNREACH", "ENETRESET"}


def classify(exc: BaseException) -> Optional[Retryable]:
    """Why ``exc`` is worth retrying, or None when it is not a transient failure."""
    if isinstance(exc, errors.DriveStageError):
        return None
    if isinstance(exc, TransientError):
        return Retryable(str(exc) or "transfer interrupted", connection_lost=True)
    failure = answers.failure_of(exc)
    if failure is not None:
        if not answers.transient(failure):
            return None
        # (A date's wait by the server's clock, the answer's Date: one hours off this
        # machine's, a proxy's, made 5 s hours or none, skewlefts44. An answer a cache kept
        # (its Age) was made that long ago, and so much of its wait is spent: claim50. An
        # Age not read takes nothing off: the longer wait.)
        kept = server_clock.age_of(failure.headers.get("age")) or 0.0
        base = server_clock.drive_clock(failure.headers.get("date"), kept)
        return Retryable(failure.label, retry_after=answers.retry_after_seconds(
            failure.headers, now=base, kept=kept))
    if isinstance(exc, (lookups.LookupTimeout, proxies.ProxyDownError)):
        return Retryable(str(exc), connection_lost=True)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return Retryable("timed out", connection_lost=True)
    if isinstance(exc, ConnectionRefusedError):
        # Nothing listens there (a wrong --api-root, an emulator not started): waiting a
        # minute of backoff would only hide the mistake.
        return None
    if isinstance(exc, ConnectionError):  # reset, aborted, broken pipe
        return Retryable(f"connection lost ({type(exc).__name__})", connection_lost=True)
    if isinstance(exc, connections.AnswerCutShort):
        return Retryable(str(exc), connection_lost=True)
    if isinstance(exc, http.client.HTTPException):  # IncompleteRead, BadStatusLine, ...
        return Retryable(f"connection lost ({type(exc).__name__})", connection_lost=True)
    if isinstance(exc, OSError) and exc.errno is not None:
        if _errno_name(exc.errno) in _CONNECTION_ERRNOS:
            return Retryable(f"connection lost ({_errno_name(exc.errno)})", connection_lost=True)
    return None


def _errno_name(num: int) -> str:
    import errno

    return errno.errorcode.get(num, "")


def is_retryable(exc: BaseException) -> bool:
    """True when :func:`classify` finds ``exc`` transient."""
    return classify(exc) is not None


def translate(exc: BaseException, what: str, *, uploading: bool = False,
              write: Optional[answers.Write] = None) -> BaseException:
    """The typed drivestage error for a failure that will not be retried (or ``exc`` itself
    when it is not a failure this module knows, e.g. a programming error). An HTTP answer is
    typed by :func:`drivestage.drive.answers.typed_error` (``uploading`` and ``write`` go to
    it)."""
    if isinstance(exc, errors.DriveStageError):
        return exc
    failure = answers.failure_of(exc)
    if failure is not None:
        return answers.typed_error(failure, what, uploading=uploading, write=write)
    if isinstance(exc, ConnectionRefusedError):
        return errors.RemoteError(f"{what}: connection refused; is the server running? "
                                  "(check --api-root / DRIVESTAGE_API_ROOT)")
    retry = classify(exc)
    if retry is not None:  # a transient failure seen once too often
        return errors.RemoteError(f"{what}: {retry.reason}")
    try:
        import httplib2

        if isinstance(exc, httplib2.ServerNotFoundError):
            return errors.RemoteError(f"{what}: cannot reach the server ({exc}); check the "
                                      f"network or --api-root / DRIVESTAGE_API_ROOT")
        if isinstance(exc, (httplib2.RedirectLimit, httplib2.RedirectMissingLocation)):
            # httplib2 (and drivestage's download streams) follow a GET's redirects and give
            # up after five, or on one without a Location: a loop that would end in a
            # traceback. Not retried: Drive redirects a download once, to a signed address
            # that serves it; a server that loops is not Drive and will loop again.
            return errors.RemoteError(
                f"{what}: the server answered with redirects that lead nowhere (a loop, or "
                f"one without a web address: {exc}); Drive redirects at most a download, once. "
                "Check --api-root / DRIVESTAGE_API_ROOT and any proxy between you and Drive")
    except ImportError:  # pragma: no cover - httplib2 is a dependency
        pass
    if isinstance(exc, connections.WebPageAnswer):
        # Not retried: a captive portal answers so until someone logs in to the network.
        return errors.WebPageRefusalError(
            f"{what}: the answer is a web page ('{exc}'), not Drive's: something between here "
            "and Drive answers in its place, a network filter (a company's or school's proxy) "
            "or a captive portal (the login page of a hotel's or café's Wi-Fi). Open a web "
            "page in a browser to see it (and log in to the network), or try another network; "
            "or check --api-root / DRIVESTAGE_API_ROOT")
    if isinstance(exc, InsecureRedirect):
        # Drive's signed download addresses are https; the address itself grants the bytes,
        # so following one in clear would hand it (and the data) to anyone on the path.
        return errors.RemoteError(
            f"{what}: the download was redirected from https to an unencrypted address "
            f"({exc}); not followed: the link and the bytes would cross the network in clear. "
            "Something between you and Drive rewrites its answers (a proxy, a captive portal, "
            "a hotel or company network): pull again on another network, or check --api-root "
            "/ DRIVESTAGE_API_ROOT")
    auth = _auth_failure(exc, what)
    if auth is not None:
        return auth
    return exc


def _auth_failure(exc: BaseException, what: str) -> Optional[errors.AuthError]:
    """Token refresh failures from google-auth / oauth2client / PyDrive2 as AuthError."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"RefreshError", "AccessTokenRefreshError", "AuthenticationError",
                "HttpAccessTokenRefreshError"}:
        return errors.AuthError(f"{what}: the credentials could not be refreshed ({exc}). "
                                "Run `drivestage auth login` again or pass fresh --credentials.")
    return None


# --------------------------------------------------------------------------- tenacity policy

class _Wait(tenacity.wait.wait_base):
    """Exponential backoff with jitter and a cap; a server's Retry-After wins when longer."""

    def __init__(self, policy: Policy, rng: Callable[[], float]):
        self.policy, self.rng = policy, rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        wait = self.policy.backoff(retry_state.attempt_number, self.rng)
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        info = classify(exc) if exc is not None else None
        if info is not None and info.retry_after is not None:
            wait = max(wait, min(info.retry_after, self.policy.retry_after_max))
        return wait


class DriveRetrying(tenacity.Retrying):
    """tenacity ``Retrying`` that turns a failure it will not retry into a typed error.

    Use as ``retrying(what)(fn, *args)`` or ``for attempt in retrying(what): with attempt: ...``.
    """

    def __init__(self, *args: Any, what: str, uploading: bool = False,
                 write: Optional[answers.Write] = None,
                 on_interrupt: Optional[Callable[[], None]] = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.what, self.uploading, self.write = what, uploading, write
        self.on_interrupt = on_interrupt

    def copy(self, *args: Any, **kwargs: Any) -> "DriveRetrying":  # tenacity copies on wraps()
        new = super().copy(*args, **kwargs)
        assert isinstance(new, DriveRetrying)
        new.what, new.uploading, new.write = self.what, self.uploading, self.write
        new.on_interrupt = self.on_interrupt
        return new

    def _interrupted(self) -> None:
        # A request cut off by Ctrl-C may have left its connection mid-exchange (a request
        # half sent, an answer unread): the next one on it would wait for an answer that
        # never comes, until the connection's timeout.
        if self.on_interrupt is not None:
            self.on_interrupt()

    def typed(self, exc: BaseException) -> BaseException:
        """``exc`` as the typed error this operation raises."""
        return translate(exc, self.what, uploading=self.uploading, write=self.write)

    @contextmanager
    def _ending(self) -> Iterator[None]:
        """What ends the retries leaves as this operation's: its typed error, or a
        KeyboardInterrupt after :meth:`_interrupted`."""
        try:
            yield
        except KeyboardInterrupt:
            self._interrupted()
            raise
        except Exception as exc:
            typed = self.typed(exc)
            if typed is exc:
                raise
            raise typed from exc

    def __call__(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._ending():
            return super().__call__(fn, *args, **kwargs)

    def __iter__(self) -> Iterator[tenacity.AttemptManager]:  # type: ignore[override]
        # Each step under _ending, not one generator holding it open across the caller's
        # attempts: a loop left by a return or an error left that generator to be closed
        # from its dealloc, and a Ctrl-C arriving in its _ending was "Exception ignored":
        # lost, the command going on (flakes34).
        return _Attempts(self, super().__iter__())


class _Attempts:
    """:class:`DriveRetrying`'s attempts: tenacity's, each step under its ``_ending``."""

    def __init__(self, owner: DriveRetrying, steps: Iterator[tenacity.AttemptManager]):
        self.owner, self.steps = owner, steps

    def __iter__(self) -> "_Attempts":
        return self

    def __next__(self) -> tenacity.AttemptManager:
        with self.owner._ending():
            try:
                return next(self.steps)
            except StopIteration:
                pass   # (not a failure to type: the retries are over)
        raise StopIteration


def retrying(what: str, attempts: Optional[int] = None, *,
             on_retry: Optional[Callable[[BaseException, Retryable], None]] = None,
             on_interrupt: Optional[Callable[[], None]] = None, uploading: bool = False, write: Optional[answers.Write] = None,
             policy: Optional[Policy] = None,
             rng: Callable[[], float] = random.random) -> DriveRetrying:
    """A tenacity ``Retrying`` for one Drive operation described by ``what``.

    ``on_retry(exc, info)`` runs before each wait (e.g. to drop a keep-alive connection a
    reset has poisoned); ``on_interrupt()`` when a KeyboardInterrupt ends it (likewise). Transient failures are retried up to ``attempts`` times in all; then
    a :class:`~drivestage.errors.RemoteError` (or, with ``uploading``, a
    :class:`~drivestage.errors.DailyUploadCapError` for a persistent user rate limit) is raised.
    Anything else is raised at once as its typed error (:func:`translate`, which receives
    ``uploading`` and ``write``)."""
    pol = policy or Policy.from_env(attempts)
    if attempts is not None and policy is not None:
        pol = Policy(attempts, pol.base, pol.cap, pol.jitter, pol.retry_after_max)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        # A thread told to stop (a Ctrl-C in the caller of pool.each) tries no more: a
        # folder pull whose stream stalled waited through every retry, each a read
        # timeout (7 x 120 s), "waiting for the transfers under way to stop".
        check()
        stream_lines.check()   # (a download's stream whose connection its stop cut)
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:  # pragma: no cover - we only retry on exceptions
            return
        info = classify(exc) or Retryable(type(exc).__name__)
        wait = state.upcoming_sleep
        hint = f" (server asked for {info.retry_after:g}s)" if info.retry_after is not None else ""
        log.warning("%s: %s; retry %d/%d in %.1fs%s", what, info.reason,
                    state.attempt_number, pol.attempts - 1, wait, hint)
        if on_retry is not None:
            on_retry(exc, info)

    def give_up(state: tenacity.RetryCallState) -> Any:
        exc = state.outcome.exception() if state.outcome else None
        assert exc is not None
        failure = answers.failure_of(exc)
        if uploading and failure is not None and answers.daily_cap(failure):
            raise answers.typed_error(failure, what, uploading=True) from exc
        if failure is not None and answers.google_sorry(failure):  # a 429 "Sorry..." page
            raise answers.typed_error(failure, what) from exc
        info = classify(exc)
        reason = info.reason if info else str(exc)
        detail = f": {failure.message}" if failure is not None and failure.message else ""
        # (a connection lost each time, through a proxy: the proxy may be what cut it)
        via = proxies.through() if info is not None and info.connection_lost \
            and not isinstance(exc, proxies.ProxyDownError) else ""
        raise errors.RetriesExhaustedError(
            f"{what}: still failing after {state.attempt_number} attempts "
            f"({reason}{detail}){via}; try again later",
            status=failure.status if failure else None,
            reason=failure.reason if failure else None) from exc

    def worth_retrying(exc: BaseException) -> bool:
        if uploading:  # Drive's own answer for the daily upload cap: hours of retries in vain
            failure = answers.failure_of(exc)
            if failure is not None and answers.upload_cap(failure):
                return False
        return is_retryable(exc)

    return DriveRetrying(
        what=what, uploading=uploading, write=write, on_interrupt=on_interrupt,
        sleep=lambda seconds: _sleep(seconds),
        stop=tenacity.stop_after_attempt(pol.attempts),
        wait=_Wait(pol, rng),
        retry=tenacity.retry_if_exception(worth_retrying),
        before_sleep=before_sleep,
        retry_error_callback=give_up,
    )
