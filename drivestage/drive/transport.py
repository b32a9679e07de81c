"""The connection to Drive: one authorized HTTP connection per thread, and the retry loop.

httplib2 is not thread-safe, so every thread gets its own connection (ours for raw byte
requests, and PyDrive2's own for metadata). A connection reset in the middle of a response
poisons that keep-alive connection for one more request, so :meth:`Transport.retrying` drops
the thread's connections before the next attempt: "drop after a lost connection" exists here
and nowhere else. Every Drive request of drivestage runs inside :meth:`Transport.retrying` or
:meth:`Transport.call`.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Optional, TypeVar

from drivestage.drive import answers, retry
from drivestage.drive.auth import AuthorizedHttp, DriveCredentials
from drivestage.drive.connections import build_http
from drivestage.drive.resources import ResourceKeys

T = TypeVar("T")


class Transport:
    """Per-thread connections and the retry loop for one Drive account.

    ``gauth`` is PyDrive2's ``GoogleAuth`` with ``credentials`` and ``service`` (the
    googleapiclient Drive v2 service) set; ``attempts`` overrides the retry attempts of every
    call (None: ``$DRIVESTAGE_RETRY_ATTEMPTS`` or 8); ``acknowledge_abuse`` asks Drive for
    files it flagged as malware or spam anyway (``pull --acknowledge-abuse``).

    Every request (PyDrive2's and ours) goes out on the credentials' connections, which add
    the ``X-Goog-Drive-Resource-Keys`` the request needs from :attr:`resource_keys`."""

    def __init__(self, gauth: Any, *, timeout: Optional[float] = None,
                 attempts: Optional[int] = None, acknowledge_abuse: bool = False):
        self.gauth = gauth
        self.service: Any = gauth.service
        self.timeout = timeout
        self.attempts = attempts
        self.acknowledge_abuse = acknowledge_abuse
        self._local = threading.local()

    @property
    def resource_keys(self) -> ResourceKeys:
        """The resource keys known in this run (sent where a request needs them)."""
        return self.credentials.resource_keys

    @property
    def credentials(self) -> DriveCredentials:
        """The credentials every request carries."""
        creds: DriveCredentials = self.gauth.credentials
        return creds

    def http(self) -> AuthorizedHttp:
        """This thread's authorized connection for raw requests (308 is not a redirect)."""
        http: Optional[AuthorizedHttp] = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = self.credentials.authorize(build_http(self.timeout))
        return http

    def files(self) -> Any:
        """``service.files()``, built once per thread: building it renders every method's
        documentation (milliseconds, which small files would pay each time)."""
        files = getattr(self._local, "files", None)
        if files is None:
            files = self._local.files = self.service.files()
        return files

    def drop(self) -> None:
        """Forget this thread's connections (ours and PyDrive2's) after a lost connection."""
        self._local.http = None
        self.gauth.thread_local.http = None

    def retrying(self, what: str, *, uploading: bool = False,
                 write: Optional[answers.Write] = None) -> retry.DriveRetrying:
        """The retry policy for one operation; a lost connection is dropped before the next
        attempt. ``what`` starts the messages; the rest goes to the error typing
        (:func:`drivestage.drive.answers.typed_error`)."""
        def on_retry(exc: BaseException, info: retry.Retryable) -> None:
            if info.connection_lost:
                self.drop()

        return retry.retrying(what, self.attempts, on_retry=on_retry, uploading=uploading,
                              write=write)

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` under :meth:`retrying`."""
        return self.retrying(what)(fn, *args, **kwargs)

    def request(self, uri: str, method: str = "GET", *, body: Any = None,
                headers: Optional[Mapping[str, str]] = None) -> tuple[Any, bytes]:
        """One raw request on this thread's connection: ``(response, body)``. An error answer
        (not 2xx or 308) is raised as googleapiclient's ``HttpError``, so that it is read
        like any other (:func:`drivestage.drive.answers.failure_of`)."""
        resp, content = self.http().request(uri, method, body=body, headers=dict(headers or {}))
        answers.raise_for_status(resp.status, content, resp, uri=uri)
        return resp, content
