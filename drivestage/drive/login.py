"""``drivestage auth login``: the console OAuth login for machines without a browser.

The user opens the printed URL anywhere, grants access, and pastes back the address the
browser lands on; the token is saved with mode 0600 where :mod:`drivestage.drive.auth` finds
it (and refreshes it) afterwards.
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import os
import secrets
import urllib.parse
from typing import Any, Callable, Optional

import httplib2

from drivestage.drive.auth import GOOGLE_AUTH_URI, GOOGLE_TOKEN_URI
from drivestage.drive.connections import build_http
from drivestage.drive.token_file import DRIVE_SCOPE, default_token_path, save_token
from drivestage.errors import AuthError, UsageError
from drivestage.small_files import JSON_FILE_MAX, read_at_most


def _refuse_special_token_file(token_file: Optional[str]) -> None:
    """Before the user is sent to log in: a token file that is a device or FIFO
    (``--token-file /dev/null``) was replaced by the token, a regular file, as root; one
    that is a link leading nowhere is refused too (the token is saved through a link)."""
    from drivestage.paths import refuse_empty
    from drivestage.special_files import special_kind, through_links

    if token_file is not None:   # ("$FILE" unset: the default token, another login's, replaced)
        refuse_empty("--token-file", token_file, "the file to save the token in, or leave "
                     "--token-file out for the default (~/.config/drivestage/token.json)")
    path = os.path.expanduser(token_file or default_token_path())
    what = special_kind(path)
    named = "--token-file" if token_file else "DRIVESTAGE_TOKEN_FILE"
    if what is not None:
        raise UsageError(f"{named} {path} is {what}, not a file: the login would replace it "
                         "with the token; give the file to save the token in (default "
                         "~/.config/drivestage/token.json)")
    if token_file or os.environ.get("DRIVESTAGE_TOKEN_FILE"):
        through_links(path, named)   # (the default path's link: said as the token file's)
    else:
        through_links(path, "the token file")


def login(client_secrets: str, *, token_file: Optional[str] = None,
          ask: Callable[[str], str] = input, say: Callable[[str], None] = print,
          scopes: tuple[str, ...] = (DRIVE_SCOPE,)) -> str:
    """Console OAuth login for machines without a browser; saves the token, returns its path.

    The user opens the printed URL anywhere, grants access, and pastes back the address the
    browser lands on (a localhost page that may fail to load) or just the code.
    """
    config = _client_config(client_secrets)
    _refuse_special_token_file(token_file)
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
        resp, content = build_http().request(
            config["token_uri"], "POST", body=body,
            headers={"content-type": "application/x-www-form-urlencoded"})
    except (OSError, httplib2.HttpLib2Error) as exc:
        raise AuthError(f"could not reach the token server {config['token_uri']}: {exc}") \
            from None
    try:
        payload = json.loads(content.decode("utf-8"))
    except (ValueError, RecursionError):   # (nested deep: was a traceback, mount52)
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
    # Asked again: the user took minutes to log in, and a node made at the path meanwhile
    # was replaced by the token all the same (attackstream40; what is left is the moment
    # between this look and the rename).
    _refuse_special_token_file(token_file)
    save_token(path, creds)
    say(f"Saved the token to {path} (mode 0600).")
    if os.path.abspath(os.path.expanduser(path)) != os.path.abspath(default_token_path()):
        # Commands look in one place only: a token saved elsewhere is found when named.
        say(f"Later commands look in {default_token_path()}: set DRIVESTAGE_TOKEN_FILE={path} "
            f"for them to find this one (or pass drivestage --credentials {path}).")
    return path


def _client_config(path: str) -> dict[str, Any]:
    try:
        raw = read_at_most(os.path.expanduser(path), JSON_FILE_MAX)
        data = json.loads(raw) if raw is not None else None
    except FileNotFoundError:
        raise UsageError(f"client secrets file {path!r} does not exist; download it from the "
                         "Google Cloud console (OAuth client ID, type Desktop app)") from None
    except (ValueError, RecursionError):   # (nested too deep: was a traceback, mount52)
        raise UsageError(f"client secrets file {path!r} is not JSON") from None
    except OSError as exc:  # a folder given (was a traceback), or unreadable
        why = "it is a folder" if isinstance(exc, IsADirectoryError) else \
            (exc.strerror or str(exc)).lower()
        raise UsageError(f"cannot read client secrets file {path!r}: {why}; give the JSON file "
                         "of an OAuth client ID (Google Cloud console, type Desktop app)") from None
    if raw is None:   # (/dev/zero, a big file: read to the end of memory, then killed)
        raise UsageError(f"client secrets file {path!r} holds more than 1 MiB: no OAuth client "
                         "secret is that large; give the JSON file of an OAuth client ID "
                         "(Google Cloud console, type Desktop app)")
    config = (data.get("installed") or data.get("web")) if isinstance(data, dict) else None
    if not isinstance(config, dict) or not config.get("client_id") \
            or not config.get("client_secret"):
        # A service-account key is the likely mix-up: say where it goes instead.
        kind = data.get("type") if isinstance(data, dict) else None
        what = {"service_account": "a service-account key, which needs no login",
                # (the token an earlier login saved, given for its client: ux35)
                "authorized_user": "a token saved by a login already"}.get(str(kind))
        raise UsageError(f"{path!r} is not an OAuth client secret (expected an 'installed' "
                         "entry with client_id and client_secret)" + (
                             f": it is {what}; pass it with --credentials (or "
                             "DRIVESTAGE_CREDENTIALS)" if what else ""))
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
