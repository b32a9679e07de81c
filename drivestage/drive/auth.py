"""Where Drive credentials come from, and the adapter PyDrive2 needs for them.

Sources, first match wins (:func:`load_credentials`):

1. an explicit bearer ``token`` (tests, emulators);
2. ``--credentials FILE``: a service-account JSON key, or an OAuth token saved by
   ``drivestage auth login``;
3. with an emulator (``DRIVESTAGE_API_ROOT``): ``DRIVESTAGE_TOKEN``;
4. ``DRIVESTAGE_CREDENTIALS``: the same JSON inline (CI secrets);
5. inside Colab: the notebook user's login (``google.colab.auth``);
6. the token saved by ``drivestage auth login`` (``DRIVESTAGE_TOKEN_FILE`` or
   ``~/.config/drivestage/token.json``), refreshed automatically and saved back (mode 0600).

PyDrive2 expects oauth2client-style credentials (``access_token_expired``, ``authorize``,
``refresh``); google-auth gives something else. :class:`DriveCredentials` adapts one to the
other. Tokens never appear in reprs, logs or messages.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import sys
import threading
import weakref
from typing import Any, Callable, Mapping, Optional

import google.auth.exceptions
import httplib2

from drivestage.drive.answers import well_formed_error
from drivestage.drive.connections import (TokenRequest, bounded_connection, keys_stay_home,
                                          check_answer, no_httplib2_auth)
from drivestage.drive.resources import ResourceKeys
# (the token file login saves, and where: imported here for the callers of auth)
from drivestage.drive.token_file import (DRIVE_SCOPE, default_token_path,  # noqa: F401
                                         save_token, saving, token_info)
from drivestage.interrupts import lock_wait
from drivestage.errors import (AuthError, NoColabLoginError, NoCredentialsError,
                               ReauthRequiredError, TokenRevokedError, TokenServerError, UsageError)
from drivestage.small_files import JSON_FILE_MAX, read_at_most

log = logging.getLogger(__name__)

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"

NO_CREDENTIALS = """no Google Drive credentials found. Use one of:
  --credentials FILE            a service-account JSON key, or a token saved by `drivestage auth login`
  DRIVESTAGE_CREDENTIALS=JSON   the same JSON inline (CI secrets)
  drivestage auth login --client-secrets FILE   a console login for headless machines
  Colab                         run inside a notebook: its Google login is used
  DRIVESTAGE_API_ROOT + DRIVESTAGE_TOKEN        an emulator (`drivestage emulator`)"""


# --------------------------------------------------------------------------- the adapter

class DriveCredentials:
    """google-auth credentials dressed as the oauth2client credentials PyDrive2 expects.

    Refreshes itself when expired (PyDrive2 would otherwise start a browser flow) and once
    on a 401; after a refresh, ``on_refresh`` persists the new token (token files).
    """

    def __init__(self, creds: Any, *, source: str, refreshable: bool = True,
                 on_refresh: Optional[Callable[[Any], None]] = None):
        self.creds = creds
        self.source = source            # human description, e.g. "service account x@y"
        self._refreshable = refreshable
        self._on_refresh = on_refresh
        self._lock = threading.Lock()   # a refresh: held while the token server answers
        self._sent_lock = threading.Lock()   # (so a request never waits for a refresh here)
        #: Called for every request sent with these credentials (the transport counts them).
        self.on_request: Optional[Callable[[], None]] = None
        #: Resource keys every request made with these credentials may need to carry.
        self.resource_keys = ResourceKeys()
        #: Every access token sent so far (a server's error message may repeat one).
        self._sent: set[str] = set()
        _CREDENTIALS.add(self)

    def _forked(self) -> None:
        """In a forked child: the locks free. A thread of the parent that held one as the
        process forked (a refresh waiting for the token server) is not in the child, and
        the child's first refresh waited for it forever (edges40)."""
        self._lock = threading.Lock()
        self._sent_lock = threading.Lock()
        self.resource_keys._lock = threading.Lock()   # (the keys it sends: held as briefly)

    def __repr__(self) -> str:  # never the token
        return f"<DriveCredentials from {self.source}>"

    def headers_for(self, uri: str, headers: Mapping[str, str], body: Any = None
                    ) -> dict[str, str]:
        """``headers`` plus the bearer token and the resource keys a request to ``uri`` (with
        ``body``: its ``parents``) needs (every request path uses this)."""
        sent = dict(headers)
        self.apply(sent)
        keys = self.resource_keys.header(uri, body)
        if keys:
            sent["X-Goog-Drive-Resource-Keys"] = keys
        return sent

    @property
    def universe_domain(self) -> str:
        """The universe the credentials were made in (googleapiclient checks the service's)."""
        return str(getattr(self.creds, "universe_domain", None) or "googleapis.com")

    @property
    def can_refresh(self) -> bool:
        """False for a bare bearer token (nothing to refresh it with)."""
        return self._refreshable

    @property
    def access_token(self) -> Optional[str]:
        return getattr(self.creds, "token", None)

    @property
    def access_token_expired(self) -> bool:
        """Always False after making sure the token is fresh: PyDrive2 answers True by
        launching a local web-server login, which a training VM cannot do."""
        self.ensure_valid()
        return False

    def ensure_valid(self, http: Optional[httplib2.Http] = None) -> None:
        """Refresh the token if it is missing or expired."""
        if self.creds.valid or not self.can_refresh:
            return
        self.refresh(http)

    def refresh(self, http: Optional[httplib2.Http] = None,
                stale_token: Optional[str] = None) -> None:
        """Get a new access token (once, even when several threads ask together)."""
        lock_wait(self._lock)   # another thread's (a Ctrl-C ends it: interrupts.SLICE)
        with self._lock:
            if stale_token is not None and self.creds.token != stale_token:
                return  # another thread refreshed already
            if not self.can_refresh:
                raise AuthError(f"Drive refused the token from {self.source} and it cannot be "
                                "refreshed; get a new one")
            try:
                self.creds.refresh(TokenRequest())
            except google.auth.exceptions.RefreshError as exc:
                raise refresh_error(exc, self.source) from None
            except google.auth.exceptions.TransportError as exc:
                raise AuthError(f"could not reach the token server to refresh the "
                                f"credentials from {self.source} ({_short(exc)})") from None
            log.info("refreshed the access token from %s", self.source)
            if self._on_refresh is not None:
                self._on_refresh(self.creds)

    def apply(self, headers: dict[str, str]) -> None:
        """Add the Authorization header."""
        token = self.creds.token
        if token:
            with self._sent_lock:
                self._sent.add(str(token))
        headers["authorization"] = f"Bearer {token}"

    def redact(self, data: bytes) -> bytes:
        """``data`` (an error answer's body) with every token and secret these credentials
        hold or sent replaced: a server or proxy that repeats the request's Authorization
        header in its message must not get the token printed, logged or put in --json."""
        with self._sent_lock:
            secrets = set(self._sent)
        for name in ("token", "refresh_token", "client_secret"):
            value = getattr(self.creds, name, None)
            if isinstance(value, str):
                secrets.add(value)
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= 8:
                data = data.replace(secret.encode(), b"<redacted>")
        return data

    def authorize(self, http: httplib2.Http) -> "AuthorizedHttp":
        """Wrap ``http`` so every request carries the token (PyDrive2 calls this per thread)."""
        no_httplib2_auth(http)
        keys_stay_home(http)  # a redirect is followed without the resource keys
        return AuthorizedHttp(self, http)

    def set_store(self, storage: Any) -> None:
        """oauth2client API; persistence is done by ``on_refresh`` instead."""

    def revoke(self, http: Any = None) -> None:  # pragma: no cover - oauth2client API
        raise UsageError("revoking tokens is not supported; delete the token file instead")


#: Every :class:`DriveCredentials` of this process, for :func:`_unlocked_in_child`.
_CREDENTIALS: "weakref.WeakSet[DriveCredentials]" = weakref.WeakSet()


def _unlocked_in_child() -> None:
    for creds in list(_CREDENTIALS):
        creds._forked()


os.register_at_fork(after_in_child=_unlocked_in_child)


def _short(exc: BaseException) -> str:
    """The words of ``exc`` on one line, without the objects some libraries add to their
    arguments (cryptography: a list of OpenSSL errors; google-auth: a tuple with the HTTP
    response), cut to 200 characters."""
    text: object = exc
    for _ in range(5):  # an exception wrapping an exception wrapping a tuple ...
        if isinstance(text, OSError) and text.strerror:   # (its args[0] is the bare errno:
            text = text.strerror                           # "(111)" was all a user read)
            break
        if isinstance(text, BaseException) and text.args:
            text = text.args[0]
        elif isinstance(text, (tuple, list)) and text:
            text = text[0]
        else:
            break
    line = " ".join(str(text).split())
    # google-auth appends the raw answer ("Response: b'...'") and the token URL's scopes.
    line = re.sub(r"\?\S+", "", line.split(" Response:")[0])
    return line if len(line) < 200 else line[:200] + "..."


#: What Google's token endpoint answers when a Workspace session-length policy wants the
#: user to sign in again (google-auth turns it into "Reauthentication is needed").
_REAUTH_MARKS = ("invalid_rapt", "rapt_required", "Reauthentication is needed")


def refresh_error(exc: BaseException, source: str) -> AuthError:
    """The typed error for a refresh the token server refused (google-auth ``RefreshError``)."""
    data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
    text = " ".join([_short(exc), str(data.get("error_subtype") or "")])
    if any(mark in text for mark in _REAUTH_MARKS):
        return ReauthRequiredError(
            f"the credentials from {source} need a fresh sign-in: the Google Workspace "
            "administrator limits how long a sign-in lasts (session control, invalid_rapt). "
            "Run `drivestage auth login --client-secrets FILE` again, or use a service-account "
            "key, which session limits do not apply to.")
    if getattr(exc, "retryable", False):   # (500, 503, internal_failure...: google-auth's)
        return TokenServerError(
            f"Google's token server failed to refresh the credentials from {source} "
            f"({_short(exc)}), three times in a row: a failure of the server, not of the "
            "credentials. Try again in a few minutes.")
    if "invalid_grant" in text:
        return TokenRevokedError(
            f"the credentials from {source} could not be refreshed: Google refused the refresh "
            f"token ({_short(exc)}). It was revoked (or the password changed), or it expired: "
            "an OAuth app whose consent screen is in Testing mode gets refresh tokens that "
            "expire after 7 days (publish the app, In production, to keep them). Run "
            "`drivestage auth login --client-secrets FILE` again.")
    return AuthError(f"the credentials from {source} could not be refreshed "
                     f"({_short(exc)}). Run `drivestage auth login` again or pass "
                     "fresh --credentials.")


class AuthorizedHttp:
    """An ``httplib2.Http`` that adds the bearer token and refreshes once on a 401."""

    def __init__(self, credentials: DriveCredentials, http: httplib2.Http):
        self.credentials = credentials
        self.http = http

    def request(self, uri: str, method: str = "GET", body: Any = None,
                headers: Optional[dict[str, str]] = None,
                redirections: int = httplib2.DEFAULT_MAX_REDIRECTS,
                connection_type: Any = None) -> tuple[httplib2.Response, bytes]:
        creds = self.credentials
        creds.ensure_valid()
        connection_type = connection_type or bounded_connection(uri)
        sent = self._headers(uri, headers, body)
        used = creds.access_token
        if creds.on_request is not None:
            creds.on_request()
        resp, content = self.http.request(uri, method, body=body, headers=sent,
                                          redirections=redirections,
                                          connection_type=connection_type)
        if resp.status == 401 and creds.can_refresh:
            creds.refresh(stale_token=used)
            if hasattr(body, "seek"):
                body.seek(0)
            sent = self._headers(uri, headers, body)
            if creds.on_request is not None:
                creds.on_request()
            resp, content = self.http.request(uri, method, body=body, headers=sent,
                                              redirections=redirections,
                                              connection_type=connection_type)
        if resp.status >= 400:
            content = well_formed_error(resp.status, creds.redact(content))
        check_answer(uri, resp, content)
        return resp, content

    def _headers(self, uri: str, headers: Optional[dict[str, str]], body: Any = None
                 ) -> dict[str, str]:
        return self.credentials.headers_for(uri, headers or {}, body)

    def __getattr__(self, name: str) -> Any:  # timeout, redirect_codes, connections, close
        return getattr(self.http, name)


# --------------------------------------------------------------------------- sources

def pydrive_session(creds: Any, api_root: Optional[str], timeout: float) -> tuple[Any, Any]:
    """PyDrive2's ``GoogleAuth`` and ``GoogleDrive`` on ``creds`` for the API at
    ``api_root``: the googleapiclient service is built from the discovery document that
    ships with it, so no network is used."""
    from pydrive2.auth import GoogleAuth
    from pydrive2.drive import GoogleDrive

    from drivestage.drive import connections, services

    # An explicit settings dict: GoogleAuth would otherwise read ./settings.yaml if present.
    gauth = GoogleAuth(settings=dict(GoogleAuth.DEFAULT_SETTINGS), http_timeout=timeout)
    gauth.credentials = creds
    gauth.http = creds.authorize(connections.build_http(timeout))
    gauth.service = services.drive_service(api_root, services.ThreadConnection(gauth))
    return gauth, GoogleDrive(gauth)


def load_credentials(*, credentials: Optional[str] = None, token: Optional[str] = None,
                     api_root: Optional[str] = None,
                     env: Mapping[str, str] = os.environ) -> DriveCredentials:
    """Find credentials in the documented order; AuthError listing the options if none."""
    if token:
        return bearer(token, "the given token")
    if credentials:
        return from_file(credentials)
    if api_root:
        # Another endpoint (an emulator, a proxy) never receives the user's Google
        # credentials implicitly: only a token or a credentials file given on purpose.
        if env.get("DRIVESTAGE_TOKEN"):
            return bearer(env["DRIVESTAGE_TOKEN"], "DRIVESTAGE_TOKEN")
        raise AuthError(
            f"the Drive API root is {api_root} (--api-root / DRIVESTAGE_API_ROOT) "
            "but no token was given: set DRIVESTAGE_TOKEN (an emulator started without "
            "--token accepts any non-empty value) or pass --credentials FILE. "
            "Saved Google credentials are never sent to another endpoint implicitly.")
    if env.get("DRIVESTAGE_CREDENTIALS"):
        return from_json_text(env["DRIVESTAGE_CREDENTIALS"], "DRIVESTAGE_CREDENTIALS")
    if not api_root and _in_colab():
        return from_colab()
    saved = default_token_path(env)
    if os.path.exists(saved):
        return from_file(saved)
    # (the variable a user set was not named: the list read as if it had been ignored: ux35)
    named = (f"\nDRIVESTAGE_TOKEN_FILE is {env['DRIVESTAGE_TOKEN_FILE']}, where there is no "
             "file: a login saves its token there") if env.get("DRIVESTAGE_TOKEN_FILE") else ""
    raise NoCredentialsError(NO_CREDENTIALS + named)


def bearer(token: str, source: str) -> DriveCredentials:
    """A fixed access token (an emulator's, or one minted elsewhere); never refreshed."""
    import google.oauth2.credentials

    return DriveCredentials(google.oauth2.credentials.Credentials(token), source=source,
                            refreshable=False)


def from_file(path: str) -> DriveCredentials:
    """A service-account key or a token saved by ``drivestage auth login``."""
    try:
        raw = read_at_most(os.path.expanduser(path), JSON_FILE_MAX)
        text = raw.decode("utf-8") if raw is not None else ""
    except FileNotFoundError:
        raise UsageError(f"credentials file {path!r} does not exist") from None
    except OSError as exc:
        raise UsageError(f"cannot read credentials file {path!r}: {exc.strerror}") from None
    except UnicodeDecodeError:   # (a binary file given by mistake: was a traceback)
        raise UsageError(f"credentials file {path} is not JSON (it holds bytes that are not "
                         "UTF-8 text); expected a service-account key or a token saved by "
                         "`drivestage auth login`") from None
    if raw is None:   # (/dev/zero, a checkpoint: read to the end of memory, then killed)
        raise UsageError(f"credentials file {path} holds more than 1 MiB: no service-account "
                         "key or token is that large; give the JSON key file")
    return from_json_text(text, f"credentials file {path}", path=path)


def from_json_text(text: str, source: str, *, path: Optional[str] = None) -> DriveCredentials:
    """Parse a service-account key or an authorized-user token (the JSON itself)."""
    try:
        info = json.loads(text)
    except (ValueError, RecursionError):   # (nested too deep: was a traceback, mount52)
        # (DRIVESTAGE_CREDENTIALS=/path/key.json, a file's name where the JSON goes: ux35)
        named = source == "DRIVESTAGE_CREDENTIALS" and path is None and (
            text.strip()[:1] in ("/", "~", ".") or text.strip().endswith(".json"))
        raise UsageError(f"{source} is not JSON; expected a service-account key or a token "
                         "saved by `drivestage auth login`" + (
                             f"; it holds the JSON itself, not a file's name: pass "
                             f"--credentials {text.strip()}, or set "
                             f"DRIVESTAGE_CREDENTIALS=\"$(cat {text.strip()})\"" if named
                             else "")) from None
    if not isinstance(info, dict):
        raise UsageError(f"{source} is not a JSON object")
    kind = info.get("type")
    if kind == "service_account":
        return _service_account(info, source)
    if kind == "authorized_user" or "refresh_token" in info:
        return _authorized_user(info, source, path)
    if "installed" in info or "web" in info:
        raise UsageError(f"{source} is an OAuth client secret, not credentials; run "
                         "`drivestage auth login --client-secrets FILE` once to get a token")
    raise UsageError(f"{source}: unknown credentials type {kind!r}; expected a "
                     "service-account key or a token saved by `drivestage auth login`")


def _service_account(info: dict[str, Any], source: str) -> DriveCredentials:
    from google.oauth2 import service_account

    try:
        creds = service_account.Credentials.from_service_account_info(info,
                                                                       scopes=[DRIVE_SCOPE])
    except (ValueError, KeyError) as exc:
        raise UsageError(f"{source}: not a usable service-account key ({_short(exc)}); "
                         "download a new JSON key for the service account") from None
    subject = os.environ.get("DRIVESTAGE_SUBJECT")
    if subject:  # domain-wide delegation: act as a user of the domain
        creds = creds.with_subject(subject)
    email = info.get("client_email", "?")
    return DriveCredentials(creds, source=f"service account {email} ({source})")


def _authorized_user(info: dict[str, Any], source: str,
                     path: Optional[str]) -> DriveCredentials:
    import google.oauth2.credentials

    missing = [k for k in ("client_id", "client_secret", "refresh_token") if not info.get(k)]
    if missing:
        raise UsageError(f"{source}: token lacks {', '.join(missing)}; run "
                         "`drivestage auth login` again")
    expiry = None
    if info.get("expiry"):
        try:
            expiry = _dt.datetime.fromisoformat(str(info["expiry"]).rstrip("Z"))
            if expiry.tzinfo is not None:  # google-auth compares naive UTC datetimes
                expiry = expiry.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        except ValueError:
            expiry = None
    creds = google.oauth2.credentials.Credentials(
        info.get("token"), refresh_token=info["refresh_token"],
        token_uri=info.get("token_uri") or GOOGLE_TOKEN_URI, client_id=info["client_id"],
        client_secret=info["client_secret"], scopes=info.get("scopes") or [DRIVE_SCOPE],
        expiry=expiry)
    on_refresh = saving(path) if path else None
    return DriveCredentials(creds, source=source, on_refresh=on_refresh)


def _in_colab(env: Mapping[str, str] = os.environ) -> bool:
    """Inside a Colab runtime: its package is importable, or Colab's own variable is set
    (``COLAB_RELEASE_TAG``, in the kernel and in every ``!`` cell's process)."""
    if "google.colab" in sys.modules or env.get("COLAB_RELEASE_TAG"):
        return True
    try:
        import importlib.util

        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):
        return False


COLAB_LOGIN_HINT = ("inside Colab, run `from google.colab import auth; auth.authenticate_user()` "
                    "in a notebook cell first (once per runtime), then run this again. "
                    "`drive.mount()` is not a login for drivestage: it only mounts Drive as "
                    "files for the notebook")


def from_colab() -> DriveCredentials:
    """The Colab notebook user's login (asks once in the notebook, then cached by Colab).

    Inside the notebook kernel, ``authenticate_user()`` asks the user if needed. A ``!drivestage``
    cell runs in a child process that cannot show the prompt: there the login the notebook
    already made is found through Application Default Credentials. Without one, those are
    Colab's metadata server, which answers until the first token is asked for (404 on
    ``service-accounts/default``): so that token is asked for here, before any Drive call."""
    import google.auth
    from google.auth import compute_engine

    if _in_notebook_kernel():
        from google.colab import auth as colab_auth

        colab_auth.authenticate_user()
    try:
        creds, _project = google.auth.default(scopes=[DRIVE_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError:
        raise NoColabLoginError(f"no Colab login found: {COLAB_LOGIN_HINT}") from None
    if isinstance(creds, compute_engine.Credentials):
        try:
            creds.refresh(TokenRequest())
        except (google.auth.exceptions.RefreshError,
                google.auth.exceptions.TransportError) as exc:
            # google-auth says "Status: 404"; the bare digits could be in the server's port.
            if re.search(r"\bStatus: 404\b", str(exc)) or "service account info" in str(exc):
                raise NoColabLoginError(f"no Colab login found: {COLAB_LOGIN_HINT}") from None
            raise AuthError(f"could not get a token from Colab's metadata server "
                            f"({_short(exc)}); run the cell again, or "
                            f"{COLAB_LOGIN_HINT}") from None
    return DriveCredentials(creds, source="the Colab notebook login")


def _in_notebook_kernel() -> bool:
    """True in the notebook's own Python (which can show the login prompt), not in `!` cells."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    return bool(get is not None and get() is not None and "google.colab" in sys.modules)
