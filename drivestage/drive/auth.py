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

import base64
import datetime as _dt
import hashlib
import json
import logging
import os
import secrets
import sys
import threading
import urllib.parse
from typing import Any, Callable, Mapping, Optional

import httplib2

from drivestage.localfs import atomic_write
from drivestage.errors import AuthError, UsageError

log = logging.getLogger(__name__)

DRIVE_SCOPE = "https://www.googleapis.com/auth/drive"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"

NO_CREDENTIALS = """no Google Drive credentials found. Use one of:
  --credentials FILE            a service-account JSON key, or a token saved by `drivestage auth login`
  DRIVESTAGE_CREDENTIALS=JSON   the same JSON inline (CI secrets)
  drivestage auth login --client-secrets FILE   a console login for headless machines
  Colab                         run inside a notebook: its Google login is used
  DRIVESTAGE_API_ROOT + DRIVESTAGE_TOKEN        an emulator (`drivestage emulator`)"""


def default_token_path(env: Mapping[str, str] = os.environ) -> str:
    """Where ``drivestage auth login`` saves its token."""
    if env.get("DRIVESTAGE_TOKEN_FILE"):
        return os.path.expanduser(env["DRIVESTAGE_TOKEN_FILE"])
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "drivestage", "token.json")


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
        self._lock = threading.Lock()
        #: Called for every request sent with these credentials (the transport counts them).
        self.on_request: Optional[Callable[[], None]] = None

    def __repr__(self) -> str:  # never the token
        return f"<DriveCredentials from {self.source}>"

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
        from google.auth.exceptions import RefreshError, TransportError
        import google_auth_httplib2

        with self._lock:
            if stale_token is not None and self.creds.token != stale_token:
                return  # another thread refreshed already
            if not self.can_refresh:
                raise AuthError(f"Drive refused the token from {self.source} and it cannot be "
                                "refreshed; get a new one")
            try:
                self.creds.refresh(google_auth_httplib2.Request(_plain_http()))
            except RefreshError as exc:
                raise AuthError(f"the credentials from {self.source} could not be refreshed "
                                f"({_short(exc)}). Run `drivestage auth login` again or pass "
                                "fresh --credentials.") from None
            except TransportError as exc:
                raise AuthError(f"could not reach the token server to refresh the "
                                f"credentials from {self.source} ({_short(exc)})") from None
            log.info("refreshed the access token from %s", self.source)
            if self._on_refresh is not None:
                self._on_refresh(self.creds)

    def apply(self, headers: dict[str, str]) -> None:
        """Add the Authorization header."""
        headers["authorization"] = f"Bearer {self.creds.token}"

    def authorize(self, http: httplib2.Http) -> "AuthorizedHttp":
        """Wrap ``http`` so every request carries the token (PyDrive2 calls this per thread)."""
        return AuthorizedHttp(self, http)

    def set_store(self, storage: Any) -> None:
        """oauth2client API; persistence is done by ``on_refresh`` instead."""

    def revoke(self, http: Any = None) -> None:  # pragma: no cover - oauth2client API
        raise UsageError("revoking tokens is not supported; delete the token file instead")


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."


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
        sent = dict(headers or {})
        creds.apply(sent)
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
            sent = dict(headers or {})
            creds.apply(sent)
            if creds.on_request is not None:
                creds.on_request()
            resp, content = self.http.request(uri, method, body=body, headers=sent,
                                              redirections=redirections,
                                              connection_type=connection_type)
        return resp, content

    def __getattr__(self, name: str) -> Any:  # timeout, redirect_codes, connections, close
        return getattr(self.http, name)


def build_http(timeout: Optional[float] = None) -> httplib2.Http:
    """A fresh ``httplib2.Http`` that leaves 308 (resumable upload) alone."""
    if timeout is None:
        timeout = float(os.environ.get("DRIVESTAGE_HTTP_TIMEOUT", "120"))
    http = httplib2.Http(timeout=timeout)
    http.redirect_codes = set(http.redirect_codes) - {308}
    return http


def _plain_http() -> httplib2.Http:
    return build_http()


# --------------------------------------------------------------------------- sources

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
    raise AuthError(NO_CREDENTIALS)


def bearer(token: str, source: str) -> DriveCredentials:
    """A fixed access token (an emulator's, or one minted elsewhere); never refreshed."""
    import google.oauth2.credentials

    return DriveCredentials(google.oauth2.credentials.Credentials(token), source=source,
                            refreshable=False)


def from_file(path: str) -> DriveCredentials:
    """A service-account key or a token saved by ``drivestage auth login``."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise UsageError(f"credentials file {path!r} does not exist") from None
    except OSError as exc:
        raise UsageError(f"cannot read credentials file {path!r}: {exc.strerror}") from None
    return from_json_text(text, f"credentials file {path}", path=path)


def from_json_text(text: str, source: str, *, path: Optional[str] = None) -> DriveCredentials:
    """Parse a service-account key or an authorized-user token (the JSON itself)."""
    try:
        info = json.loads(text)
    except ValueError:
        raise UsageError(f"{source} is not JSON; expected a service-account key or a token "
                         "saved by `drivestage auth login`") from None
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
        raise UsageError(f"{source}: not a usable service-account key ({exc})") from None
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
    on_refresh = (lambda c: save_token(path, c)) if path else None
    return DriveCredentials(creds, source=source, on_refresh=on_refresh)


def _in_colab() -> bool:
    if "google.colab" in sys.modules:
        return True
    try:
        import importlib.util

        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):
        return False


COLAB_LOGIN_HINT = ("inside Colab, run `from google.colab import auth; auth.authenticate_user()` "
                    "in a notebook cell first (once per runtime), then run this again")


def from_colab() -> DriveCredentials:
    """The Colab notebook user's login (asks once in the notebook, then cached by Colab).

    Inside the notebook kernel, ``authenticate_user()`` asks the user if needed. A ``!drivestage``
    cell runs in a child process that cannot show the prompt: there the login the notebook
    already made is found through Application Default Credentials."""
    import google.auth
    import google.auth.exceptions

    if _in_notebook_kernel():
        from google.colab import auth as colab_auth

        colab_auth.authenticate_user()
    try:
        creds, _project = google.auth.default(scopes=[DRIVE_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError:
        raise AuthError(f"no Colab login found: {COLAB_LOGIN_HINT}") from None
    return DriveCredentials(creds, source="the Colab notebook login")


def _in_notebook_kernel() -> bool:
    """True in the notebook's own Python (which can show the login prompt), not in `!` cells."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    return bool(get is not None and get() is not None and "google.colab" in sys.modules)


# --------------------------------------------------------------------------- token files

def token_info(creds: Any) -> dict[str, Any]:
    """The JSON we save for an authorized-user credential (google-auth's own format)."""
    expiry = getattr(creds, "expiry", None)
    return {
        "type": "authorized_user",
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
        "refresh_token": creds.refresh_token,
        "token": creds.token,
        "token_uri": creds.token_uri,
        "scopes": list(creds.scopes or [DRIVE_SCOPE]),
        "expiry": expiry.replace(microsecond=0).isoformat() + "Z" if expiry else None,
    }


def save_token(path: str, creds: Any) -> None:
    """Write the token atomically with mode 0600 (its folder 0700 when we create it)."""
    path = os.path.expanduser(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    atomic_write(path, (json.dumps(token_info(creds), indent=1) + "\n").encode(), mode=0o600)


def login(client_secrets: str, *, token_file: Optional[str] = None,
          ask: Callable[[str], str] = input, say: Callable[[str], None] = print,
          scopes: tuple[str, ...] = (DRIVE_SCOPE,)) -> str:
    """Console OAuth login for machines without a browser; saves the token, returns its path.

    The user opens the printed URL anywhere, grants access, and pastes back the address the
    browser lands on (a localhost page that may fail to load) or just the code.
    """
    config = _client_config(client_secrets)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    redirect = _redirect_uri(config)
    query = urllib.parse.urlencode({
        "client_id": config["client_id"], "redirect_uri": redirect, "response_type": "code",
        "scope": " ".join(scopes), "access_type": "offline", "prompt": "consent",
        "code_challenge": challenge, "code_challenge_method": "S256", "state": state,
    })
    say("Open this URL in a browser (on any machine) and grant access:\n\n"
        f"  {config['auth_uri']}?{query}\n\n"
        "The browser then goes to a localhost address that may fail to load; that is "
        "expected.\nCopy that whole address (or just its code=... value) and paste it here.")
    answer = ask("Address or code: ").strip()
    code = _code_from_answer(answer, state)
    body = urllib.parse.urlencode({
        "grant_type": "authorization_code", "code": code, "client_id": config["client_id"],
        "client_secret": config["client_secret"], "redirect_uri": redirect,
        "code_verifier": verifier,
    })
    try:
        resp, content = _plain_http().request(
            config["token_uri"], "POST", body=body,
            headers={"content-type": "application/x-www-form-urlencoded"})
    except (OSError, httplib2.HttpLib2Error) as exc:
        raise AuthError(f"could not reach the token server {config['token_uri']}: {exc}") \
            from None
    try:
        payload = json.loads(content.decode("utf-8"))
    except ValueError:
        payload = {}
    if resp.status != 200 or "access_token" not in payload:
        detail = payload.get("error_description") or payload.get("error") or f"HTTP {resp.status}"
        raise AuthError(f"the login was refused: {detail}. Run `drivestage auth login` "
                        "again and paste the newest address")
    if not payload.get("refresh_token"):
        raise AuthError("the token server gave no refresh token; remove this app's access "
                        "at https://myaccount.google.com/permissions and log in again")
    import google.oauth2.credentials

    expiry = None
    if payload.get("expires_in"):
        expiry = _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None) + _dt.timedelta(seconds=int(payload["expires_in"]))
    creds = google.oauth2.credentials.Credentials(
        payload["access_token"], refresh_token=payload["refresh_token"],
        token_uri=config["token_uri"], client_id=config["client_id"],
        client_secret=config["client_secret"], scopes=list(scopes), expiry=expiry)
    path = token_file or default_token_path()
    save_token(path, creds)
    say(f"Saved the token to {path} (mode 0600).")
    return path


def _client_config(path: str) -> dict[str, Any]:
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise UsageError(f"client secrets file {path!r} does not exist; download it from the "
                         "Google Cloud console (OAuth client ID, type Desktop app)") from None
    except ValueError:
        raise UsageError(f"client secrets file {path!r} is not JSON") from None
    config = (data.get("installed") or data.get("web")) if isinstance(data, dict) else None
    if not isinstance(config, dict) or not config.get("client_id") \
            or not config.get("client_secret"):
        raise UsageError(f"{path!r} is not an OAuth client secret (expected an 'installed' "
                         "entry with client_id and client_secret)")
    config = dict(config)
    config.setdefault("auth_uri", GOOGLE_AUTH_URI)
    config.setdefault("token_uri", GOOGLE_TOKEN_URI)
    return config


def _redirect_uri(config: dict[str, Any]) -> str:
    for uri in config.get("redirect_uris") or []:
        if isinstance(uri, str) and uri.startswith(("http://localhost", "http://127.0.0.1")):
            return uri
    return "http://localhost"


def _code_from_answer(answer: str, state: str) -> str:
    if not answer:
        raise AuthError("no code was pasted; run `drivestage auth login` again")
    if "://" in answer or answer.startswith("?") or "code=" in answer:
        query = urllib.parse.urlparse(answer).query if "://" in answer else answer.lstrip("?")
        params = urllib.parse.parse_qs(query)
        if params.get("error"):
            raise AuthError(f"the login was refused: {params['error'][0]}")
        if params.get("state") and params["state"][0] != state:
            raise AuthError("the pasted address belongs to another login attempt; paste the "
                            "address from this one")
        if not params.get("code"):
            raise AuthError("the pasted address has no code=...; paste the whole address")
        return params["code"][0]
    return answer
