"""The retry policy: exact backoff schedules, Retry-After, classification and typed errors.

tenacity's sleep is replaced by a recorder (``drivestage.drive.retry._sleep``): no test waits.
"""
from __future__ import annotations

import http.client
import json
import logging
import socket

import httplib2
import pytest
from googleapiclient.errors import HttpError
from pydrive2.files import ApiRequestError

from drivestage import errors
from drivestage.drive import answers, retry
from drivestage.drive.answers import raise_for_status
from drivestage.drive.retry import Policy, retrying


@pytest.fixture
def sleeps(monkeypatch):
    recorded: list[float] = []
    monkeypatch.setattr(retry, "_sleep", recorded.append)
    return recorded


def _body(status: int, reason: str, message: str = "boom") -> bytes:
    return json.dumps({"error": {"errors": [{"domain": "global", "reason": reason,
                                             "message": message}],
                                 "code": status, "message": message}}).encode()


def _http_error(status: int, reason: str | None = None, message: str = "boom",
                headers: dict | None = None, body: bytes | None = None) -> HttpError:
    if body is None:
        body = _body(status, reason or "x", message)
    try:
        raise_for_status(status, body, headers or {})
    except HttpError as exc:
        return exc
    raise AssertionError("raise_for_status did not raise")


def _flaky(failures: list[BaseException], result="ok"):
    """A callable that raises each of ``failures`` once, in order, then returns ``result``."""
    pending = list(failures)
    calls = []

    def fn():
        calls.append(1)
        if pending:
            raise pending.pop(0)
        return result

    fn.calls = calls
    return fn


NO_JITTER = Policy(attempts=5, base=1.0, cap=32.0, jitter=0.0)


def test_exponential_schedule_and_log_lines(sleeps, caplog):
    fn = _flaky([_http_error(503, "backendError")] * 3)
    with caplog.at_level(logging.WARNING, logger="drivestage.drive.retry"):
        assert retrying("GET drive:a.zip", policy=NO_JITTER)(fn) == "ok"
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(fn.calls) == 4
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "GET drive:a.zip: 503 backendError; retry 1/4 in 1.0s",
        "GET drive:a.zip: 503 backendError; retry 2/4 in 2.0s",
        "GET drive:a.zip: 503 backendError; retry 3/4 in 4.0s",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_backoff_is_capped_and_jitter_bounded(sleeps):
    pol = Policy(attempts=9, base=1.0, cap=5.0, jitter=0.0)
    fn = _flaky([ConnectionResetError()] * 7)
    retrying("x", policy=pol)(fn)
    assert sleeps == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]
    jittery = Policy(attempts=3, base=2.0, cap=100.0, jitter=0.5)
    assert jittery.backoff(1, rng=lambda: 0.0) == 2.0
    assert jittery.backoff(1, rng=lambda: 1.0) == 3.0
    assert jittery.backoff(3, rng=lambda: 0.999) <= 12.0


def test_retry_after_is_honoured(sleeps, caplog):
    fn = _flaky([_http_error(503, "backendError", headers={"Retry-After": "7"}),
                 _http_error(429, "rateLimitExceeded", headers={"retry-after": "0.5"})])
    with caplog.at_level(logging.WARNING, logger="drivestage.drive.retry"):
        retrying("op", policy=NO_JITTER)(fn)
    # Retry-After wins when longer than the backoff, never shortens it.
    assert sleeps == [7.0, 2.0]
    assert "server asked for 7s" in caplog.records[0].getMessage()


def test_retry_after_http_date_and_cap():
    assert answers.retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"},
                                     now=1445412480.0) == pytest.approx(10.0)
    assert answers.retry_after_seconds({"Retry-After": "soon"}) is None
    assert answers.retry_after_seconds({}) is None


def test_retry_after_is_capped(sleeps):
    pol = Policy(attempts=3, base=1.0, cap=32.0, jitter=0.0, retry_after_max=3.0)
    retrying("op", policy=pol)(_flaky([_http_error(503, headers={"Retry-After": "3600"})]))
    assert sleeps == [3.0]


@pytest.mark.parametrize("exc", [
    _http_error(408, "requestTimeout"),
    _http_error(429, "rateLimitExceeded"),
    _http_error(500, "backendError"),
    _http_error(502, body=b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    _http_error(503, "backendError"),
    _http_error(504, "gatewayTimeout"),
    _http_error(403, "rateLimitExceeded"),
    _http_error(403, "userRateLimitExceeded"),
    ConnectionResetError(104, "Connection reset by peer"),
    ConnectionAbortedError(),
    BrokenPipeError(),
    socket.timeout("timed out"),
    TimeoutError(),
    http.client.IncompleteRead(b"abc", 10),
    http.client.RemoteDisconnected("closed"),
    retry.TransientError("short body"),
], ids=lambda e: type(e).__name__ + str(getattr(getattr(e, "resp", None), "status", "")))
def test_transient_failures_are_retried(sleeps, exc):
    fn = _flaky([exc])
    assert retrying("op", policy=NO_JITTER)(fn) == "ok"
    assert len(fn.calls) == 2 and sleeps == [1.0]


@pytest.mark.parametrize("status,reason,message,cls", [
    (401, "authError", "Invalid Credentials", errors.AuthError),
    (404, "notFound", "File not found: x", errors.NotFoundError),
    (403, "storageQuotaExceeded", "The user's Drive storage quota has been exceeded.",
     errors.QuotaExceededError),
    (403, "quotaExceeded", "quota", errors.QuotaExceededError),
    (403, "storageQuotaExceeded", "Service Accounts do not have storage quota.",
     errors.ServiceAccountStorageError),
    (403, "downloadQuotaExceeded", "The download quota for this file has been exceeded.",
     errors.DownloadQuotaError),
    (403, "cannotDownloadAbusiveFile", "abusive", errors.AbusiveFileError),
    (403, "insufficientPermissions", "Insufficient Permission", errors.ScopeError),
    (403, "dailyLimitExceeded", "Daily Limit Exceeded", errors.DailyLimitError),
    (403, "teamDriveFileLimitExceeded", "The file limit for this shared drive has been "
     "exceeded.", errors.ItemLimitError),
    (403, "numChildrenInNonRootLimitExceeded", "The limit for this folder's number of "
     "children (files and folders) has been exceeded.", errors.ItemLimitError),
    (403, "insufficientFilePermissions", "no", errors.PermissionDeniedError),
    (400, "badRequest", "Invalid query", errors.RemoteError),
])
def test_permanent_failures_raise_typed_errors_at_once(sleeps, status, reason, message, cls):
    fn = _flaky([_http_error(status, reason, message)])
    with pytest.raises(cls) as info:
        retrying("GET drive:a.zip", policy=NO_JITTER)(fn)
    assert len(fn.calls) == 1 and sleeps == []
    text = str(info.value)
    assert text.startswith("GET drive:a.zip: ")
    assert message in text
    assert isinstance(info.value, errors.DriveStageError)


def test_service_account_message_points_to_shared_drive(sleeps):
    exc = retry.translate(_http_error(403, "storageQuotaExceeded",
                                      "Service Accounts do not have storage quota."), "upload")
    assert "shared drive" in str(exc) and "delegation" in str(exc)
    assert isinstance(exc, errors.QuotaExceededError)  # callers may catch the parent


def test_pydrive2_api_request_error_and_its_html_trap(sleeps):
    # The real PyDrive2 class on a JSON body keeps the HttpError as args[0].
    api_err = ApiRequestError(_http_error(404, "notFound", "File not found: abc"))
    with pytest.raises(errors.NotFoundError, match="File not found: abc"):
        retrying("stat", policy=NO_JITTER)(_flaky([api_err]))
    # On an HTML 502 PyDrive2's constructor itself raises JSONDecodeError; still retryable.
    try:
        try:
            # Built by hand: raise_for_status (and every answer of our stack) hands the
            # libraries a JSON envelope instead (answers.well_formed_error).
            raise HttpError(httplib2.Response({"status": "502"}), b"<html>Bad Gateway</html>")
        except HttpError as inner:
            raise ApiRequestError(inner)
    except ValueError as exc:  # JSONDecodeError
        decode_error = exc
    assert type(decode_error).__name__ == "JSONDecodeError"
    assert retry.classify(decode_error).reason == "502"
    assert retrying("ls", policy=NO_JITTER)(_flaky([decode_error])) == "ok"


def test_exhausted_attempts_raise_remote_error_with_reason(sleeps):
    pol = Policy(attempts=3, base=1.0, cap=32.0, jitter=0.0)
    fn = _flaky([_http_error(500, "backendError", "Backend Error")] * 5)
    with pytest.raises(errors.RemoteError) as info:
        retrying("GET drive:a.zip", policy=pol)(fn)
    assert str(info.value) == ("GET drive:a.zip: still failing after 3 attempts "
                               "(500 backendError: Backend Error); try again later")
    assert info.value.status == 500 and info.value.reason == "backendError"
    assert sleeps == [1.0, 2.0]


def test_persistent_user_rate_limit_during_upload_is_the_daily_cap(sleeps):
    pol = Policy(attempts=2, base=1.0, cap=32.0, jitter=0.0)
    fn = _flaky([_http_error(403, "userRateLimitExceeded", "User Rate Limit Exceeded")] * 3)
    with pytest.raises(errors.DailyUploadCapError, match="Drive keeps answering"):
        retrying("upload a.pth", policy=pol, uploading=True)(fn)
    assert sleeps == [1.0]
    fn = _flaky([_http_error(403, "userRateLimitExceeded", "User rate limit exceeded.")] * 3)
    with pytest.raises(errors.RemoteError):
        retrying("list", policy=pol)(fn)


def test_drives_own_words_for_the_upload_cap_stop_an_upload_at_once(sleeps):
    """Drive spells the 750 GB/day cap "User rate limit exceeded." (the per-minute limit is
    "User Rate Limit Exceeded"): an upload stops at the first such answer."""
    pol = Policy(attempts=8, base=1.0, cap=32.0, jitter=0.0)
    fn = _flaky([_http_error(403, "userRateLimitExceeded", "User rate limit exceeded.")] * 9)
    with pytest.raises(errors.DailyUploadCapError, match="daily upload cap .750 GB"):
        retrying("upload a.pth", policy=pol, uploading=True)(fn)
    assert len(fn.calls) == 1 and sleeps == []


def test_on_retry_sees_lost_connections_and_iteration_style(sleeps):
    seen = []
    fn = _flaky([ConnectionResetError(), _http_error(503, "backendError")])
    for attempt in retrying("op", policy=NO_JITTER, on_retry=lambda e, i: seen.append(i)):
        with attempt:
            value = fn()
    assert value == "ok"
    assert [i.connection_lost for i in seen] == [True, False]
    with pytest.raises(errors.NotFoundError):
        for attempt in retrying("op", policy=NO_JITTER):
            with attempt:
                raise _http_error(404, "notFound", "gone")


def test_connection_refused_fails_at_once_with_a_hint(sleeps):
    with pytest.raises(errors.RemoteError, match="connection refused; is the server running"):
        retrying("GET drive:a", policy=NO_JITTER)(_flaky([ConnectionRefusedError(111, "no")]))
    assert sleeps == []


def test_programming_errors_pass_through_untouched(sleeps):
    with pytest.raises(KeyError):
        retrying("op", policy=NO_JITTER)(_flaky([KeyError("bug")]))
    assert sleeps == []


def test_policy_from_env(monkeypatch):
    monkeypatch.setenv("DRIVESTAGE_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("DRIVESTAGE_RETRY_BASE", "0.01")
    pol = Policy.from_env()
    assert (pol.attempts, pol.base) == (3, 0.01)
    assert Policy.from_env(attempts=6).attempts == 6
    monkeypatch.setenv("DRIVESTAGE_RETRY_CAP", "fast")
    with pytest.raises(errors.UsageError, match="DRIVESTAGE_RETRY_CAP='fast'"):
        Policy.from_env()
    with pytest.raises(errors.UsageError, match="at least 1"):
        Policy.from_env(attempts=0)


def test_error_body_parsing():
    assert answers.parse_error_body(_body(403, "rateLimitExceeded", "Rate")) == \
        ("rateLimitExceeded", "Rate")
    reason, message = answers.parse_error_body(b"<html><h1>502 Bad Gateway</h1></html>")
    assert reason is None and "502 Bad Gateway" in message
    assert answers.parse_error_body(b"") == (None, "")
